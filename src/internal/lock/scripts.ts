/**
 * The lock's atomic operations, Lua beside its TypeScript twin.
 *
 * Keys: `<prefix>lock:{id}` holds the owner's token with PX (or `~<token>`: reserved for that waiter,
 * with a short PX); `…:fence` the fencing counter (no TTL unless asked); `…:queue` the waiters in line
 * (a sorted set by arrival) and `…:alive` the same waiters by the deadline they must look again by, so
 * that a dead waiter drops out on its own. Replies are integers only, so that no client-side decoding of strings
 * (e.g. `@upstash/redis` turning `"123"` into `123`) can break a comparison: tokens are compared in Lua.
 *
 * Hand-off: a release pops the first waiter, reserves the lock for it (`~<token>`, PX = the reservation
 * time) and publishes its token on the lock's channel; that waiter claims the reservation in one round
 * trip. A waiter that died stops renewing its place and is dropped once its deadline passes; a
 * reservation made for it just before lapses, so any number of dead waiters block the lock for about
 * one reservation. The parity `acquire` ignores the line (it is the `@upstash/lock` SET NX); `acquireFair` keeps it.
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import type { TryReply } from "../core/resource.js"

/**
 * `[1, fence]` when the caller holds the lock now, `[0, holder's PTTL]` when another owner does (and, in
 * line, `[0, PTTL, 1]` when the caller is first in line: where nothing pushes, it looks again soon).
 */
export type AcquireReply = TryReply

const decodePair = Redis.decodeIntegers(2)
const decodeTriple = Redis.decodeIntegers(3)

export const acquire = Redis.script<AcquireReply>({
  name: "lock.acquire",
  numberOfKeys: 2,
  lua: `local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local fence = redis.call('INCR', KEYS[2])
  if ARGV[3] ~= '0' then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
  end
  return {1, fence}
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
return {0, redis.call('PTTL', KEYS[1])}`,
  local: (ks, [lock, fence], [token, lease, fenceTtl]) => {
    const current = ks.get(lock!)
    if (current === null) {
      ks.set(lock!, token!, Number(lease))
      const next = ks.incr(fence!)
      if (fenceTtl !== undefined && fenceTtl !== "0") ks.pexpire(fence!, Number(fenceTtl))
      return [1, next]
    }
    if (current === token) {
      ks.pexpire(lock!, Number(lease))
      return [1, Number(ks.get(fence!) ?? "0")]
    }
    return [0, ks.pttl(lock!)]
  },
  decode: (reply) =>
    Either.map(
      decodePair(reply),
      ([ok, n]): AcquireReply =>
        ok === 1 ? { acquired: true, fence: n! } : { acquired: false, remaining: Math.max(0, n!) }
    )
})

/** Lua: `now`, Redis's own clock in milliseconds. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/** Lua: drop the waiters of line KEYS[Q] / KEYS[A] that stopped looking (their `alive` score has passed). */
const dropGone = (q: number, a: number) =>
  `for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[${a}], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[${q}], gone)
  redis.call('ZREM', KEYS[${a}], gone)
end`

const dropGoneLocal = (ks: Redis.Keyspace, queue: string, alive: string) => {
  for (const gone of ks.zbelow(alive, ks.now)) {
    ks.zrem(queue, gone)
    ks.zrem(alive, gone)
  }
}

/** Lua: the first living waiter of the line, taken out of it (or nil). */
const POP_HEAD = `local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if head then
  redis.call('ZREM', KEYS[2], head)
  redis.call('ZREM', KEYS[3], head)
end`

const popHead = (ks: Redis.Keyspace, queue: string, alive: string): string | null => {
  const head = ks.zrange(queue, 0, 0)[0]
  if (head === undefined) return null
  ks.zrem(queue, head)
  ks.zrem(alive, head)
  return head
}

/**
 * Lua: the caller (ARGV[1]) takes the lock KEYS[1] for ARGV[2] ms with the next fence of KEYS[2]
 * (which expires after ARGV[7] ms unless that is `0`).
 */
const WIN = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local fence = redis.call('INCR', KEYS[2])
  if ARGV[7] ~= '0' then
    redis.call('PEXPIRE', KEYS[2], ARGV[7])
  end
  return {1, fence}`

const win = (ks: Redis.Keyspace, lock: string, fence: string, token: string, lease: string, fenceTtl: string) => {
  ks.set(lock, token, Number(lease))
  const next = ks.incr(fence)
  if (fenceTtl !== "0") ks.pexpire(fence, Number(fenceTtl))
  return [1, next]
}

/**
 * Lua: hand the lock (KEYS[1]) to the first living waiter of the line (KEYS[2] by arrival, KEYS[3] by
 * deadline), skipping every gone one in this one step, or free it. ARGV[2] = reservation ms, ARGV[3] =
 * channel, ARGV[4] = `1` to wake the waiter with SPUBLISH (sharded pub/sub on a cluster), else PUBLISH.
 */
const HAND_OVER = `if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
else
  ${NOW}
  ${dropGone(2, 3)}
  ${POP_HEAD}
  if head then
    redis.call('SET', KEYS[1], '~' .. head, 'PX', ARGV[2])
    redis.call(ARGV[4] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[3], head)
  else
    redis.call('DEL', KEYS[1])
  end
end`

const handOver = (
  ks: Redis.Keyspace,
  [lock, queue, alive]: ReadonlyArray<string>,
  reservation: string,
  channel: string
) => {
  if (ks.pttl(queue!) === -2) return void ks.del(lock!)
  dropGoneLocal(ks, queue!, alive!)
  const head = popHead(ks, queue!, alive!)
  if (head === null) return void ks.del(lock!)
  ks.set(lock!, `~${head}`, Number(reservation))
  ks.publish(channel, head)
}

/**
 * KEYS: lock, queue, alive. ARGV: token, reservation ms, channel, sharded (`1`: SPUBLISH). 1 when the
 * caller held the lock and has handed it on (to the first living waiter, or to nobody), else 0.
 */
export const release = Redis.script<boolean>({
  name: "lock.release",
  numberOfKeys: 3,
  lua: `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
${HAND_OVER}
return 1`,
  local: (ks, keys, [token, reservation, channel]) => {
    if (ks.get(keys[0]!) !== token) return 0
    handOver(ks, keys, reservation!, channel!)
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * A token is done with the lock, whatever it knows: a waiter that gave up or was interrupted, or a try
 * whose answer never came (it may have joined the line, or even won). KEYS: lock, queue, alive. ARGV:
 * token, reservation ms, channel, sharded (`1`: SPUBLISH). The token leaves the line; if the lock is held
 * by it or reserved for it, the lock passes to the next living waiter. 1 when it passed the lock on.
 */
export const leave = Redis.script<boolean>({
  name: "lock.leave",
  numberOfKeys: 3,
  lua: `redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] and owner ~= '~' .. ARGV[1] then
  return 0
end
${HAND_OVER}
return 1`,
  local: (ks, keys, [token, reservation, channel]) => {
    ks.zrem(keys[1]!, token!)
    ks.zrem(keys[2]!, token!)
    const owner = ks.get(keys[0]!)
    if (owner !== token && owner !== `~${token}`) return 0
    handOver(ks, keys, reservation!, channel!)
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * Acquire in line. KEYS: lock, fence, queue, alive. ARGV: token, lease ms, reservation ms, channel, line
 * TTL ms, alive ms (how long the caller counts as waiting without looking again), fence TTL ms (`0`:
 * none), sharded (`1`: wake a waiter with SPUBLISH, else PUBLISH). `[1, fence]` when the caller holds
 * the lock now; `[0, PTTL]` when it waits in line.
 *
 * The caller takes the lock when it is reserved for it, or free with nobody living ahead. When the lock is
 * free but another living waiter is first (the holder's lease ran out, or a reservation lapsed), the lock
 * is reserved for that waiter and it is woken; the caller joins the line. Joining is idempotent per
 * token: a try sent twice (a client's resend) keeps one place, and each look renews the caller's
 * deadline. Waiters past their deadline are dropped first, all in this one step.
 */
export const acquireFair = Redis.script<AcquireReply>({
  name: "lock.acquireFair",
  numberOfKeys: 4,
  lua: `local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if owner == false and redis.call('EXISTS', KEYS[3]) == 0 then
  ${WIN}
end
${NOW}
${dropGone(3, 4)}
if owner == false then
  local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  if head and head ~= ARGV[1] then
    redis.call('ZREM', KEYS[3], head)
    redis.call('ZREM', KEYS[4], head)
    owner = '~' .. head
    redis.call('SET', KEYS[1], owner, 'PX', ARGV[3])
    redis.call(ARGV[8] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[4], head)
  end
end
if owner == false or owner == '~' .. ARGV[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  ${WIN}
end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2]
  redis.call('ZADD', KEYS[3], (tonumber(last) or 0) + 1, ARGV[1])
end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[6]), ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
local first = 0
if redis.call('ZRANGE', KEYS[3], 0, 0)[1] == ARGV[1] then
  first = 1
end
return {0, redis.call('PTTL', KEYS[1]), first}`,
  local: (ks, [lock, fence, queue, alive], [token, lease, reservation, channel, lineTtl, aliveMs, fenceTtl]) => {
    let owner = ks.get(lock!)
    if (owner === token) {
      ks.pexpire(lock!, Number(lease))
      return [1, Number(ks.get(fence!) ?? "0")]
    }
    if (owner === null && ks.pttl(queue!) === -2) return win(ks, lock!, fence!, token!, lease!, fenceTtl!)
    dropGoneLocal(ks, queue!, alive!)
    if (owner === null) {
      const head = ks.zrange(queue!, 0, 0)[0]
      if (head !== undefined && head !== token) {
        ks.zrem(queue!, head)
        ks.zrem(alive!, head)
        owner = `~${head}`
        ks.set(lock!, owner, Number(reservation))
        ks.publish(channel!, head)
      }
    }
    if (owner === null || owner === `~${token}`) {
      ks.zrem(queue!, token!)
      ks.zrem(alive!, token!)
      return win(ks, lock!, fence!, token!, lease!, fenceTtl!)
    }
    if (ks.zscore(queue!, token!) === null) {
      const last = ks.zrange(queue!, -1, -1)[0]
      ks.zadd(queue!, (last === undefined ? 0 : ks.zscore(queue!, last)!) + 1, token!)
    }
    ks.zadd(alive!, ks.now + Number(aliveMs), token!)
    ks.pexpire(queue!, Number(lineTtl))
    ks.pexpire(alive!, Number(lineTtl))
    return [0, ks.pttl(lock!), ks.zrange(queue!, 0, 0)[0] === token ? 1 : 0]
  },
  decode: (reply) =>
    Array.isArray(reply) && reply.length === 3
      ? Either.map(decodeTriple(reply), ([ok, n, first]): AcquireReply =>
        ok === 1 ? { acquired: true, fence: n! } : { acquired: false, remaining: Math.max(0, n!), first: first === 1 })
      : acquire.decode(reply)
})

/**
 * Owner-checked extension that never shortens a lease. KEYS: lock. ARGV: token, ms, mode: `"add"` asks for
 * PTTL + ms, `"set"` for ms; the expiry only ever moves later, so an extension applied late (a slow
 * request, a resend) can never cut short what a newer reply proved. Replies the PTTL now, or 0 when the
 * caller does not hold the lock.
 */
export const extend = Redis.script<number>({
  name: "lock.extend",
  numberOfKeys: 1,
  lua: `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
local target = tonumber(ARGV[2])
if ARGV[3] == 'add' then
  target = target + math.max(ttl, 0)
end
if ttl < 0 or target > ttl then
  redis.call('PEXPIRE', KEYS[1], target)
  return target
end
return ttl`,
  local: (ks, [lock], [token, ms, mode]) => {
    if (ks.get(lock!) !== token) return 0
    const ttl = ks.pttl(lock!)
    const target = Number(ms) + (mode === "add" ? Math.max(ttl, 0) : 0)
    if (ttl >= 0 && target <= ttl) return ttl
    ks.pexpire(lock!, target)
    return target
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
