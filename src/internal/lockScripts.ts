/**
 * The lock's atomic operations, Lua beside its TypeScript twin.
 *
 * Keys: `<prefix>lock:{id}` holds the owner's token with PX (or `~<token>`: reserved for that waiter,
 * with a short PX); `…:fence` the fencing counter (no TTL); `…:queue` the waiters in line (a list of
 * tokens). Replies are integers only, so that no client-side decoding of strings (e.g. `@upstash/redis`
 * turning `"123"` into `123`) can break a comparison: tokens are compared in Lua.
 *
 * Hand-off: a release pops the first waiter, reserves the lock for it (`~<token>`, PX = the reservation
 * time) and publishes its token on the lock's channel; that waiter claims the reservation in one round
 * trip. A waiter that died is skipped once its reservation runs out, so it blocks the lock at most that
 * long. The parity `acquire` ignores the line (it is the `@upstash/lock` SET NX); `acquireFair` keeps it.
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

/** Lua: hand the lock (KEYS[1]) to the first waiter of KEYS[2], or free it; ARGV[2] = reservation ms, ARGV[3] = channel. */
const HAND_OVER = `local head = redis.call('LPOP', KEYS[2])
if head then
  redis.call('SET', KEYS[1], '~' .. head, 'PX', ARGV[2])
  redis.call('PUBLISH', ARGV[3], head)
else
  redis.call('DEL', KEYS[1])
end`

const handOver = (ks: Redis.Keyspace, lock: string, queue: string, reservation: string, channel: string) => {
  const head = ks.lpop(queue)
  if (head === null) return void ks.del(lock)
  ks.set(lock, `~${head}`, Number(reservation))
  ks.publish(channel, head)
}

/**
 * KEYS: lock, queue. ARGV: token, reservation ms, channel. 1 when the caller held the lock and has handed
 * it on (to the first waiter, or to nobody), else 0.
 */
export const release = Redis.script<boolean>({
  name: "lock.release",
  numberOfKeys: 2,
  lua: `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
${HAND_OVER}
return 1`,
  local: (ks, [lock, queue], [token, reservation, channel]) => {
    if (ks.get(lock!) !== token) return 0
    handOver(ks, lock!, queue!, reservation!, channel!)
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * A waiter leaves the line (it gave up or was interrupted). KEYS: lock, queue. ARGV: token, reservation
 * ms, channel. If the lock was reserved for it, the reservation passes to the next waiter.
 */
export const dequeue = Redis.script<boolean>({
  name: "lock.dequeue",
  numberOfKeys: 2,
  lua: `redis.call('LREM', KEYS[2], 0, ARGV[1])
if redis.call('GET', KEYS[1]) ~= '~' .. ARGV[1] then
  return 0
end
${HAND_OVER}
return 1`,
  local: (ks, [lock, queue], [token, reservation, channel]) => {
    ks.lrem(queue!, token!)
    if (ks.get(lock!) !== `~${token}`) return 0
    handOver(ks, lock!, queue!, reservation!, channel!)
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * Acquire in line. KEYS: lock, fence, queue. ARGV: token, lease ms, reservation ms, channel, queue TTL ms,
 * recheck (`1` when the caller may have fallen out of line: look before joining again).
 * `[1, fence]` when the caller holds the lock now; `[0, PTTL]` when it waits in line.
 *
 * The caller takes the lock when it is reserved for it, or free with nobody ahead. When the lock is free
 * but someone else is first in line (the holder's lease ran out, or a reservation lapsed), the lock is
 * reserved for that waiter and it is woken; the caller joins the line.
 */
export const acquireFair = Redis.script<AcquireReply>({
  name: "lock.acquireFair",
  numberOfKeys: 3,
  lua: `local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if owner == false then
  local head = redis.call('LINDEX', KEYS[3], 0)
  if head == ARGV[1] then
    redis.call('LPOP', KEYS[3])
  elseif head then
    redis.call('LPOP', KEYS[3])
    owner = '~' .. head
    redis.call('SET', KEYS[1], owner, 'PX', ARGV[3])
    redis.call('PUBLISH', ARGV[4], head)
  end
end
if owner == false or owner == '~' .. ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2])}
end
if ARGV[6] ~= '1' or not redis.call('LPOS', KEYS[3], ARGV[1]) then
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return {0, redis.call('PTTL', KEYS[1])}`,
  local: (ks, [lock, fence, queue], [token, lease, reservation, channel, queueTtl, recheck]) => {
    let owner = ks.get(lock!)
    if (owner === token) {
      ks.pexpire(lock!, Number(lease))
      return [1, Number(ks.get(fence!) ?? "0")]
    }
    if (owner === null) {
      const head = ks.lindex(queue!, 0)
      if (head === token) ks.lpop(queue!)
      else if (head !== null) {
        ks.lpop(queue!)
        owner = `~${head}`
        ks.set(lock!, owner, Number(reservation))
        ks.publish(channel!, head)
      }
    }
    if (owner === null || owner === `~${token}`) {
      ks.set(lock!, token!, Number(lease))
      return [1, ks.incr(fence!)]
    }
    if (recheck !== "1" || ks.lpos(queue!, token!) === null) {
      ks.rpush(queue!, token!)
      ks.pexpire(queue!, Number(queueTtl))
    }
    return [0, ks.pttl(lock!)]
  },
  decode: (reply) => acquire.decode(reply)
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

/** What a read-only look at a lock finds: who holds it (nobody, an owner, or a waiter it was handed to). */
export interface InspectReply {
  readonly holder: "none" | "owner" | "reserved"
  /** Milliseconds left on the holder's lease or reservation; 0 when free. */
  readonly remaining: number
  /** The fencing counter: the fence of the latest acquisition, 0 if there was none. */
  readonly fence: number
}

/**
 * A read-only look at a lock for an observer holding no token. KEYS: lock, fence.
 * `[0 free | 1 held | 2 reserved for a waiter, PTTL (0 when free), fence counter]`.
 */
export const inspect = Redis.script<InspectReply>({
  name: "lock.inspect",
  numberOfKeys: 2,
  lua: `local current = redis.call('GET', KEYS[1])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if current == false then
  return {0, 0, fence}
end
local state = 1
if string.sub(current, 1, 1) == '~' then
  state = 2
end
return {state, redis.call('PTTL', KEYS[1]), fence}`,
  local: (ks, [lock, fence]) => {
    const counter = Number(ks.get(fence!) ?? "0")
    const current = ks.get(lock!)
    if (current === null) return [0, 0, counter]
    return [current.startsWith("~") ? 2 : 1, ks.pttl(lock!), counter]
  },
  decode: (reply) =>
    Either.flatMap(Redis.decodeIntegers(3)(reply), ([state, ttl, fence]): Either.Either<InspectReply, string> => {
      const holder = state === 0 ? "none" : state === 1 ? "owner" : state === 2 ? "reserved" : undefined
      return holder === undefined
        ? Either.left(`unknown lock state ${state}`)
        : Either.right({ holder, remaining: Math.max(0, ttl!), fence: fence! })
    })
})
