/**
 * The lock's atomic operations, Lua beside its TypeScript twin.
 *
 * Keys: KEYS[1] = `<prefix>lock:{id}` (the owner token, with PX), KEYS[2] = `<prefix>lock:{id}:fence`
 * (the fencing counter, no TTL). Replies are integers only, so that no client-side decoding of strings
 * (e.g. `@upstash/redis` turning `"123"` into `123`) can break a comparison: tokens are compared in Lua.
 */
import { Either } from "effect"
import * as Redis from "../Redis.js"

/** `[1, fence]` when the caller holds the lock now, `[0, holder's PTTL]` when another owner does. */
export type AcquireReply = { readonly acquired: true; readonly fence: number } | {
  readonly acquired: false
  readonly remaining: number
}

const decodePair = Redis.decodeIntegers(2)

export const acquire = Redis.script<AcquireReply>({
  name: "lock.acquire",
  numberOfKeys: 2,
  lua: `local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2])}
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
return {0, redis.call('PTTL', KEYS[1])}`,
  local: (ks, [lock, fence], [token, lease]) => {
    const current = ks.get(lock!)
    if (current === null) {
      ks.set(lock!, token!, Number(lease))
      return [1, ks.incr(fence!)]
    }
    if (current === token) {
      ks.pexpire(lock!, Number(lease))
      return [1, Number(ks.get(fence!) ?? "0")]
    }
    return [0, ks.pttl(lock!)]
  },
  decode: (reply) =>
    Either.map(decodePair(reply), ([ok, n]): AcquireReply =>
      ok === 1 ? { acquired: true, fence: n! } : { acquired: false, remaining: Math.max(0, n!) })
})

/** 1 when the caller's token was on the key and the key is now gone, else 0. */
export const release = Redis.script<boolean>({
  name: "lock.release",
  numberOfKeys: 1,
  lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
  local: (ks, [lock], [token]) => (ks.get(lock!) === token ? ks.del(lock!) : 0),
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * Owner-checked expiry change. ARGV[3] = `"add"`: the lease becomes PTTL + ms; `"set"`: it becomes ms.
 * Replies the new PTTL, or 0 when the caller does not hold the lock.
 */
export const extend = Redis.script<number>({
  name: "lock.extend",
  numberOfKeys: 1,
  lua: `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = tonumber(ARGV[2])
if ARGV[3] == 'add' then
  ttl = ttl + math.max(redis.call('PTTL', KEYS[1]), 0)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return ttl`,
  local: (ks, [lock], [token, ms, mode]) => {
    if (ks.get(lock!) !== token) return 0
    const ttl = Number(ms) + (mode === "add" ? Math.max(ks.pttl(lock!), 0) : 0)
    ks.pexpire(lock!, ttl)
    return ttl
  },
  decode: Redis.decodeInteger
})

/** `[0, 0]` free, `[1, PTTL]` held by the caller's token, `[2, PTTL]` held by another owner. */
export type StatusReply =
  | { readonly _tag: "Free" }
  | { readonly _tag: "HeldByMe"; readonly remaining: number }
  | { readonly _tag: "HeldByOther"; readonly remaining: number }

export const status = Redis.script<StatusReply>({
  name: "lock.status",
  numberOfKeys: 1,
  lua: `local current = redis.call('GET', KEYS[1])
if current == false then
  return {0, 0}
end
local ttl = redis.call('PTTL', KEYS[1])
if current == ARGV[1] then
  return {1, ttl}
end
return {2, ttl}`,
  local: (ks, [lock], [token]) => {
    const current = ks.get(lock!)
    if (current === null) return [0, 0]
    return [current === token ? 1 : 2, ks.pttl(lock!)]
  },
  decode: (reply) =>
    Either.flatMap(decodePair(reply), ([state, ttl]): Either.Either<StatusReply, string> => {
      const remaining = Math.max(0, ttl!)
      switch (state) {
        case 0:
          return Either.right({ _tag: "Free" })
        case 1:
          return Either.right({ _tag: "HeldByMe", remaining })
        case 2:
          return Either.right({ _tag: "HeldByOther", remaining })
        default:
          return Either.left(`unknown lock state ${state}`)
      }
    })
})
