/**
 * One lock id's operations over the Redis seam, in the shape the acquisition core sends them: each is
 * one script, with the arguments the line of waiters and the lease need.
 */
import type { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import { DEFAULT_FENCE_TTL } from "../core/lua.js"
import type * as Core from "../core/resource.js"
import { ALIVE, lineTtl, RESERVATION } from "../core/wake.js"
import type { LockKeys } from "../keys.js"
import * as scripts from "./scripts.js"

export interface Operations extends Core.Operations {
  readonly status: (token: string) => Effect.Effect<scripts.StatusReply, RedisError>
}

/** The lock's script at each batch size (the key count is part of a script), made when first needed. */
const sized = new Map<number, Redis.Script<ReadonlyArray<number>>>()

/** Every due lock lease of a connection extended in one script (`lock.extendMany`). */
export const extendBatch: Core.ExtendBatch = {
  run: (redis, keys, tokens, ms, deadline) => {
    let script = sized.get(keys.length)
    if (script === undefined) sized.set(keys.length, script = { ...scripts.extendMany, numberOfKeys: keys.length })
    const args = new Array<string>(keys.length * 2)
    for (let i = 0; i < keys.length; i++) {
      args[2 * i] = tokens[i]!
      args[2 * i + 1] = String(ms[i])
    }
    return redis.run(script, keys, args, deadline)
  }
}

const reservation = String(RESERVATION)
const aliveMs = String(ALIVE)

/** The line's scripts that announce every change of holder (an election's), made when first needed. */
let announcedScripts: ReturnType<typeof scripts.lineScripts> | undefined

/**
 * The lock's operations; the fence counter lives `fenceTtl` ms after the last acquisition; with
 * `announce` (a channel), every change of holder is published there (an election's).
 */
export const make = (
  redis: Redis.Service,
  keys: LockKeys,
  fenceTtl: number = DEFAULT_FENCE_TTL,
  announce?: string
): Operations => {
  const lineOps = announce === undefined ? scripts : (announcedScripts ??= scripts.lineScripts(true))
  const announceArg = announce ?? ""
  const plain = lineOps.acquire.keysOf(keys)
  const fair = lineOps.acquireFair.keysOf(keys)
  const line = lineOps.release.keysOf(keys)
  const lock = scripts.extend.keysOf(keys)
  const { channel } = keys
  // Wake-ups go by SPUBLISH where the backend's subscriber listens with SSUBSCRIBE (a cluster).
  const sharded = redis.sharded === true ? "1" : "0"
  const fenceTtlArg = String(fenceTtl)
  return {
    tryAcquire: (token, lease, deadline) =>
      lineOps.acquire.run(
        redis,
        plain,
        { token, lease: String(lease), fenceTtl: fenceTtlArg, announce: announceArg, sharded },
        deadline
      ),
    tryAcquireFair: (token, lease, deadline) =>
      lineOps.acquireFair.run(redis, fair, {
        token,
        lease: String(lease),
        reservation,
        channel,
        lineTtl: String(lineTtl(lease)),
        aliveMs,
        fenceTtl: fenceTtlArg,
        sharded,
        announce: announceArg
      }, deadline),
    release: (token, deadline) =>
      lineOps.release.run(redis, line, { token, reservation, channel, sharded, announce: announceArg }, deadline),
    leave: (token, deadline) =>
      lineOps.leave.run(redis, line, { token, reservation, channel, sharded, announce: announceArg }, deadline),
    extend: (token, ms, mode, deadline) => scripts.extend.run(redis, lock, { token, ms: String(ms), mode }, deadline),
    status: (token) => scripts.status.run(redis, lock, { token }),
    batch: { script: extendBatch, key: keys.lock }
  }
}
