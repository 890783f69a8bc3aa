/**
 * Test-only scripts: read and write raw keys through the seam (so the same check runs on every backend),
 * and a dead waiter. Recording runs and injecting faults: ./FaultyRedis.ts and `MemoryTest`.
 */
import { Effect, Either } from "effect"
import type { LockKeys } from "../../src/internal/keys.js"
import * as lockScripts from "../../src/internal/lock/scripts.js"
import { randomToken } from "../../src/internal/token.js"
import * as Redis from "../../src/Redis.js"

/** `[value or nil, PTTL]` of one key. */
export const peek = Redis.script<{ readonly value: string | null; readonly pttl: number }>({
  name: "test.peek",
  numberOfKeys: 1,
  // The value comes back behind "=" so that no client can take it for JSON (`@upstash/redis` would turn
  // "123" into 123); a missing key is nil (null in every client).
  lua: "local v = redis.call('GET', KEYS[1]) if v then v = '=' .. v end return {v, redis.call('PTTL', KEYS[1])}",
  local: (ks, [key]) => {
    const value = ks.get(key!)
    return [value === null ? null : `=${value}`, ks.pttl(key!)]
  },
  decode: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 2) return Either.left("bad peek reply")
    const [value, pttl] = reply as [unknown, unknown]
    return Either.map(Redis.decodeInteger(pttl), (pttl) => ({
      value: typeof value === "string" && value.startsWith("=") ? value.slice(1) : null,
      pttl
    }))
  }
})

/** `SET key value PX ms`, bypassing the lock's owner check (a rogue client). */
export const overwrite = Redis.script<boolean>({
  name: "test.overwrite",
  numberOfKeys: 1,
  lua: "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
  local: (ks, [key], [value, px]) => {
    ks.set(key!, value!, Number(px))
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

export const readKey = (key: string) => Effect.flatMap(Redis.Redis, (redis) => redis.run(peek, [key], []))

export const writeKey = (key: string, value: string, px: number) =>
  Effect.flatMap(Redis.Redis, (redis) => redis.run(overwrite, [key], [value, String(px)]))

/** A fresh id per test, so tests sharing one server never meet. */
export const uniqueId = (label: string) => Effect.sync(() => `${label}-${randomToken().slice(0, 10)}`)

/** The members of a sorted set in order (ZRANGE 0 -1), e.g. a lock's line of waiters. */
export const listItems = Redis.script<ReadonlyArray<string>>({
  name: "test.list",
  numberOfKeys: 1,
  lua:
    "local items = redis.call('ZRANGE', KEYS[1], 0, -1) for i, v in ipairs(items) do items[i] = '=' .. v end return items",
  local: (ks, [key]) => ks.zrange(key!, 0, -1).map((item) => `=${item}`),
  decode: (reply) =>
    Array.isArray(reply) && reply.every((x) => typeof x === "string" && x.startsWith("="))
      ? Either.right(reply.map((x: string) => x.slice(1)))
      : Either.left("bad list reply")
})

export const readList = (key: string) => Effect.flatMap(Redis.Redis, (redis) => redis.run(listItems, [key], []))

/**
 * A waiter that joins a lock's line under `token` and then dies: it never looks again (so it drops out
 * after `alive` ms), and nobody will claim what it is handed.
 */
export const deadWaiter = (keys: LockKeys, token = "dead-waiter", alive = 1000) =>
  Effect.flatMap(
    Redis.Redis,
    (redis) =>
      redis.run(lockScripts.acquireFair.script, [keys.lock, keys.fence, keys.queue, keys.alive], [
        token,
        "10000",
        "1000",
        keys.channel,
        "60000",
        String(alive),
        "0"
      ])
  )

/** `PTTL` of a key of any type (-2 missing, -1 no expiry). */
export const pttlOf = Redis.script<number>({
  name: "test.pttl",
  numberOfKeys: 1,
  lua: "return redis.call('PTTL', KEYS[1])",
  local: (ks, [key]) => ks.pttl(key!),
  decode: Redis.decodeInteger
})

export const readTtl = (key: string) => Effect.flatMap(Redis.Redis, (redis) => redis.run(pttlOf, [key], []))
