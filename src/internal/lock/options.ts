/**
 * The lock's options, checked once per call: every bad value is an `InvalidOptions` before anything is
 * sent, and the rest is resolved into the plain values the hot path reads.
 */
import { Effect, Schedule } from "effect"
import { InvalidOptions, type LockNotAcquired } from "../../LockError.js"
import { DEFAULT_PREFIX, type LockKeys, lockKeys } from "../keys.js"
import * as validate from "../validate.js"

export const DEFAULT_LEASE = 10_000
export const DEFAULT_ATTEMPTS = 3
export const DEFAULT_DELAY = 100

export interface Retry {
  readonly attempts: number
  readonly delay: number
}

export interface Base {
  readonly id: string
  readonly lease: number
  readonly prefix: string
}

export const parseLease = (u: unknown, fallback: number) =>
  validate.orDefault(u, fallback, (u) => validate.millis("lease", u, 1))

export const parseRetry = (u: unknown, fallback: Retry): Effect.Effect<Retry, InvalidOptions> => {
  if (u === undefined) return Effect.succeed(fallback)
  if (typeof u !== "object" || u === null) {
    return Effect.fail(
      new InvalidOptions({ option: "retry", expected: "{ attempts, delay } or a Schedule", received: validate.render(u) })
    )
  }
  const retry = u as { readonly attempts?: unknown; readonly delay?: unknown }
  return Effect.zipWith(
    validate.orDefault(retry.attempts, fallback.attempts, (u) => validate.integer("retry.attempts", u, 1)),
    validate.orDefault(retry.delay, fallback.delay, (u) => validate.millis("retry.delay", u, 0)),
    (attempts, delay) => ({ attempts, delay })
  )
}

export const parseBase = (options: {
  readonly id?: unknown
  readonly lease?: unknown
  readonly prefix?: unknown
}): Effect.Effect<Base, InvalidOptions> =>
  Effect.gen(function*() {
    const id = yield* validate.text("id", options?.id)
    const lease = yield* parseLease(options?.lease, DEFAULT_LEASE)
    const prefix = yield* validate.orDefault(options?.prefix, DEFAULT_PREFIX, (u) => validate.prefix("prefix", u))
    return { id, lease, prefix }
  })

/** `attempts` tries `delay` apart, as a schedule fed each failed try. */
export const retrySchedule = ({ attempts, delay }: Retry): Schedule.Schedule<unknown, unknown> =>
  Schedule.spaced(delay).pipe(Schedule.intersect(Schedule.recurs(attempts - 1)))

export type KeepAlive =
  | false
  | { readonly every: number; readonly schedule?: undefined }
  | { readonly every?: undefined; readonly schedule: Schedule.Schedule<unknown, void> }

/** Everything one acquisition needs, resolved. */
export interface Acquisition extends Base {
  readonly keys: LockKeys
  /** Milliseconds the whole acquisition may take, if bounded. */
  readonly timeout: number | undefined
  readonly fair: boolean
  /**
   * When to try again after a failed try (each failed try steps it once); `"untilTimeout"`: no schedule
   * of its own, the wait ends with a wake-up, a look at the holder's lease end, or the timeout.
   */
  readonly retry: Schedule.Schedule<unknown, LockNotAcquired> | "untilTimeout"
  /** When to extend: every `every` ms (the default), on a schedule of the user's, or never (`false`). */
  readonly keepAlive: KeepAlive
  /** TTL of the fence counter in ms; 0: none (fences never go back). Internal callers only. */
  readonly fenceTtl: number
  /** Whether metrics carry the lock id as a label. */
  readonly labelMetrics: boolean
}

export interface AcquireInput {
  readonly id?: unknown
  readonly lease?: unknown
  readonly prefix?: unknown
  readonly retry?: unknown
  readonly timeout?: unknown
  readonly fair?: unknown
  readonly keepAlive?: unknown
  readonly metricsLabel?: unknown
}

const flag = (option: string, u: unknown, fallback: boolean): Effect.Effect<boolean, InvalidOptions> =>
  u === undefined
    ? Effect.succeed(fallback)
    : typeof u === "boolean"
    ? Effect.succeed(u)
    : Effect.fail(new InvalidOptions({ option, expected: "a boolean", received: validate.render(u) }))

export const parseAcquisition = (options: AcquireInput, fenceTtl = 0): Effect.Effect<Acquisition, InvalidOptions> =>
  Effect.gen(function*() {
    const base = yield* parseBase(options)
    const timeout = yield* validate.orDefault(options?.timeout, undefined, (u) => validate.millis("timeout", u, 0))
    const fair = yield* flag("fair", options?.fair, true)
    const labelMetrics = yield* flag("metricsLabel", options?.metricsLabel, false)
    const retry: Acquisition["retry"] = Schedule.isSchedule(options?.retry)
      ? options.retry as Schedule.Schedule<unknown, LockNotAcquired>
      : options?.retry === undefined && timeout !== undefined
      ? "untilTimeout"
      : retrySchedule(yield* parseRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY }))
    const keepAlive: KeepAlive = options?.keepAlive === undefined
      ? { every: Math.max(1, Math.floor(base.lease / 3)) }
      : options.keepAlive === false
      ? false
      : Schedule.isSchedule(options.keepAlive)
      ? { schedule: options.keepAlive as Schedule.Schedule<unknown, void> }
      : yield* new InvalidOptions({
        option: "keepAlive",
        expected: "a Schedule, or false",
        received: validate.render(options.keepAlive)
      })
    return { ...base, keys: lockKeys(base.prefix, base.id), timeout, fair, retry, keepAlive, fenceTtl, labelMetrics }
  })
