/**
 * One read-write lock id's operations over the Redis seam, in the shape the acquisition core sends them:
 * a read and a write are two resources that share their release, leave and extension (each owner-checked
 * by token, whatever the token holds), plus the writer's downgrade.
 */
import type { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import { DEFAULT_FENCE_TTL } from "../core/lua.js"
import type { Operations } from "../core/resource.js"
import { ALIVE, lineTtl } from "../core/wake.js"
import type { ReadWriteKeys } from "../keys.js"
import * as scripts from "./scripts.js"

export interface ReadWriteOperations {
  readonly read: Operations
  readonly write: Operations
  /** The writer `token` becomes a reader: its fence, or `undefined` when it is not the writer. */
  readonly downgrade: (
    token: string,
    lease: number
  ) => Effect.Effect<{ readonly fence: number } | undefined, RedisError>
  readonly inspect: Effect.Effect<scripts.InspectReply, RedisError>
}

export const make = (redis: Redis.Service, keys: ReadWriteKeys): ReadWriteOperations => {
  const list = scripts.take.keysOf(keys)
  const { channel } = keys
  // Wake-ups go by SPUBLISH where the backend's subscriber listens with SSUBSCRIBE (a cluster).
  const sharded = redis.sharded === true ? "1" : "0"
  const aliveMs = String(ALIVE)
  // The write fence counter lives as a lock's does after the last write (core/lua.ts nextFence).
  const fenceTtl = String(DEFAULT_FENCE_TTL)
  const shared = {
    leave: (token: string, deadline?: number) => scripts.leave.run(redis, list, { token, channel, sharded }, deadline),
    release: (token: string, deadline?: number) =>
      scripts.release.run(redis, list, { token, channel, sharded }, deadline),
    extend: (token: string, ms: number, mode: "add" | "set", deadline?: number) =>
      scripts.extend.run(redis, list, { token, ms: String(ms), mode, lineTtl: String(lineTtl(ms)) }, deadline)
  }
  const take = (mode: "r" | "w", fair: "0" | "1") => (token: string, lease: number, deadline?: number) =>
    scripts.take.run(redis, list, {
      token,
      mode,
      lease: String(lease),
      channel,
      lineTtl: String(lineTtl(lease)),
      aliveMs,
      fenceTtl,
      fair,
      sharded
    }, deadline)
  return {
    read: { tryAcquire: take("r", "0"), tryAcquireFair: take("r", "1"), ...shared },
    write: { tryAcquire: take("w", "0"), tryAcquireFair: take("w", "1"), ...shared },
    downgrade: (token, lease) =>
      scripts.downgrade.run(redis, list, { token, channel, lineTtl: String(lineTtl(lease)), sharded }),
    inspect: scripts.inspect.run(redis, list, {})
  }
}
