/**
 * One holding's operations over the Redis seam, in the shape the acquisition core sends them (its
 * `Operations`): a take of `n` permits is a resource like a lock.
 */
import { Effect } from "effect"
import { InvalidOptions, type RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import { DEFAULT_FENCE_TTL } from "../core/lua.js"
import type { Operations, TryReply } from "../core/resource.js"
import { ALIVE, lineTtl } from "../core/wake.js"
import type { SemaphoreKeys } from "../keys.js"
import * as scripts from "./scripts.js"

export interface Holding extends Operations<InvalidOptions> {}

export interface SemaphoreOperations {
  /** The operations of one take of `n` permits. */
  readonly holding: (n: number) => Holding
  readonly available: Effect.Effect<number, RedisError>
}

export const make = (
  redis: Redis.Service,
  keys: SemaphoreKeys,
  permits: number,
  fenceTtl = DEFAULT_FENCE_TTL
): SemaphoreOperations => {
  const fenceTtlArg = String(fenceTtl)
  const list = scripts.take.keysOf(keys)
  const capacity = String(permits)
  const toAcquire = (reply: scripts.TakeReply): Effect.Effect<TryReply, InvalidOptions> =>
    reply._tag === "Taken"
      ? Effect.succeed({ acquired: true, fence: reply.fence })
      : reply._tag === "Waiting"
      ? Effect.succeed({ acquired: false, remaining: reply.remaining })
      : Effect.fail(
        new InvalidOptions({
          option: "permits",
          expected: `${reply.permits}, the permits in use for this semaphore id until it is empty`,
          received: capacity
        })
      )
  // Wake-ups go by SPUBLISH where the backend's subscriber listens with SSUBSCRIBE (a cluster).
  const sharded = redis.sharded === true ? "1" : "0"
  const { channel } = keys
  const aliveMs = String(ALIVE)
  /** One set of operations per count of permits, made when first needed. */
  const holdings = new Map<number, Holding>()
  const makeHolding = (n: number): Holding => {
    const take = (fair: "0" | "1") => (token: string, lease: number, deadline?: number) =>
      Effect.flatMap(
        scripts.take.run(redis, list, {
          token,
          asked: String(n),
          lease: String(lease),
          permits: capacity,
          channel,
          lineTtl: String(lineTtl(lease)),
          aliveMs,
          fenceTtl: fenceTtlArg,
          fair,
          sharded
        }, deadline),
        toAcquire
      )
    return {
      tryAcquire: take("0"),
      tryAcquireFair: take("1"),
      leave: (token, deadline) =>
        scripts.leave.run(redis, list, { token, permits: capacity, channel, sharded }, deadline),
      release: (token, deadline) =>
        scripts.release.run(redis, list, { token, permits: capacity, channel, sharded }, deadline),
      extend: (token, ms, mode, deadline) =>
        scripts.extend.run(redis, list, { token, ms: String(ms), mode, lineTtl: String(lineTtl(ms)) }, deadline)
    }
  }
  return {
    holding: (n) => {
      let holding = holdings.get(n)
      if (holding === undefined) holdings.set(n, holding = makeHolding(n))
      return holding
    },
    available: scripts.available.run(redis, list, { permits: capacity })
  }
}
