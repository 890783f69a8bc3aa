/**
 * A debounce run's lock: runs of one key never overlap. It is a plain lock on the acquisition core,
 * whose fence counter (the `fenceTtl` option every lock has) expires with the rest of the key's state.
 */
import { Duration, type Effect, Schedule } from "effect"
import { InvalidOptions, type LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import type { Redis } from "../../Redis.js"
import * as Core from "../core/acquire.js"
import { resourceOf } from "../lock/lock.js"
import { checkAcquisition } from "../lock/options.js"

/** Where run locks live, under the debounce's prefix. */
export const RUN_LOCK_PREFIX = "debounce:"

/**
 * The run lock's id for `key` of debounce `id`: length-prefixed (`<id length>:<id>:<key>`), so that no
 * two pairs share one and the separator is printable (no control character of ours reaches a key name,
 * a span or a log).
 */
export const runLockId = (id: string, key: string): string => `${id.length}:${id}:${key}`

/** The longest run lock id: a debounce id of 512 characters and a key of 511, with their separators. */
const MAX_RUN_LOCK_ID = 4 + 512 + 1 + 511

export interface RunLock {
  readonly id: string
  readonly key: string
  readonly prefix: string
  /** The debounce window, in ms: a waiting run looks again every tenth of it (1 to 100 ms). */
  readonly wait: number
  /** The run lock's lease, in ms. */
  readonly lease: number
  /** The fence counter's TTL, in ms. */
  readonly fenceTtl: number
}

/** Runs `self` holding the run lock of `options.key`, waiting for a run still going. */
export const withRunLock = (options: RunLock) =>
<A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> => {
  const input = {
    id: runLockId(options.id, options.key),
    prefix: `${options.prefix}${RUN_LOCK_PREFIX}`,
    lease: options.lease,
    fenceTtl: options.fenceTtl,
    retry: Schedule.spaced(Duration.millis(Math.max(1, Math.min(100, Math.floor(options.wait / 10)))))
  }
  return Core.withHeld((redis) => {
    const acq = checkAcquisition(input, MAX_RUN_LOCK_ID)
    if (acq instanceof InvalidOptions) return acq
    const resource = resourceOf(acq, redis)
    return resource instanceof InvalidOptions ? resource : { resource, policy: acq.policy }
  }, () => self)
}
