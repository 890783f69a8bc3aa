/**
 * One lock id's operations over the Redis seam: each is one script, with the arguments the line of
 * waiters and the lease need. The constants of the protocol live here.
 */
import type { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import type { LockKeys } from "../keys.js"
import * as scripts from "../lock/scripts.js"

/** How long a released lock stays reserved for the waiter it was handed to (a dead waiter blocks no longer). */
export const RESERVATION = 1000
/** How long a waiter keeps its place in line without looking again: a dead waiter drops out after it. */
export const ALIVE = 1000
/** A waiter looks again at least this often: it keeps its place, and catches a wake-up a lost connection ate. */
export const HEARTBEAT = 400
/** Where nothing pushes wake-ups, a waiter looks this often… */
export const POLL = 100
/**
 * …except the first in line, which looks every 5–10 ms (jittered): a release reserves the lock for it,
 * and without a push the reservation must not sit idle for a whole polling interval.
 */
export const FIRST_POLL = 5
/** The line expires this long after the last look (unless leases are longer). */
export const lineTtl = (lease: number): number => Math.max(60_000, lease * 4)

export interface Operations {
  /** The `@upstash/lock` SET NX, outside the line of waiters. */
  readonly tryAcquire: (
    token: string,
    lease: number,
    deadline?: number
  ) => Effect.Effect<scripts.AcquireReply, RedisError>
  /** In line: takes the lock if it is this waiter's turn, else joins (or keeps its place in) the line. */
  readonly tryAcquireFair: (
    token: string,
    lease: number,
    deadline?: number
  ) => Effect.Effect<scripts.AcquireReply, RedisError>
  readonly release: (token: string, deadline?: number) => Effect.Effect<boolean, RedisError>
  /** Leaves the line, and hands the lock on if it is held by or reserved for this token. */
  readonly leave: (token: string, deadline?: number) => Effect.Effect<boolean, RedisError>
  readonly extend: (
    token: string,
    ms: number,
    mode: "add" | "set",
    deadline?: number
  ) => Effect.Effect<number, RedisError>
  readonly status: (token: string) => Effect.Effect<scripts.StatusReply, RedisError>
}

export const make = (redis: Redis.Service, keys: LockKeys, fenceTtl = 0): Operations => {
  const lineKeys = [keys.lock, keys.queue, keys.alive]
  // Wake-ups go by SPUBLISH where the backend's subscriber listens with SSUBSCRIBE (a cluster).
  const sharded = redis.sharded === true ? "1" : "0"
  const handOverArgs = (token: string) => [token, String(RESERVATION), keys.channel, sharded]
  const fence = String(fenceTtl)
  return {
    tryAcquire: (token, lease, deadline) =>
      redis.run(scripts.acquire, [keys.lock, keys.fence], [token, String(lease), fence], deadline),
    tryAcquireFair: (token, lease, deadline) =>
      redis.run(scripts.acquireFair, [keys.lock, keys.fence, keys.queue, keys.alive], [
        token,
        String(lease),
        String(RESERVATION),
        keys.channel,
        String(lineTtl(lease)),
        String(ALIVE),
        fence,
        sharded
      ], deadline),
    release: (token, deadline) => redis.run(scripts.release, lineKeys, handOverArgs(token), deadline),
    leave: (token, deadline) => redis.run(scripts.leave, lineKeys, handOverArgs(token), deadline),
    extend: (token, ms, mode, deadline) => redis.run(scripts.extend, [keys.lock], [token, String(ms), mode], deadline),
    status: (token) => redis.run(scripts.status, [keys.lock], [token])
  }
}
