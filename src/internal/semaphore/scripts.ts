/**
 * The semaphore's atomic operations, Lua beside its TypeScript twin.
 *
 * KEYS (every script, in this order): 1 holders (sorted set: token → expiry, Redis `TIME` ms), 2 count
 * (token → permits held or asked for), 3 fences (token → the holding's fence), 4 the fencing counter (no
 * TTL), 5 queue (waiters by arrival), 6 alive (waiters by the instant they count as gone), 7 permits (the
 * capacity the current holders and waiters agreed on).
 *
 * Every script first drops expired holdings and gone waiters, so a dead holder's permits come back when
 * its lease ends and a dead waiter leaves the line on its own, with no cleanup process. Only the head of
 * the line (or anyone, when nobody waits) may take: a waiter for many permits is never overtaken by later
 * waiters asking for fewer. Whenever the head's request fits (a release, a leave, a take that leaves
 * room, a look that finds expired holdings gone), its token is published on the channel: the head is
 * woken, and takes in one round trip. Nothing is reserved for it: while the line is not empty nobody else
 * can take, so no reservation is needed, and a dead head drops out after one `alive` period.
 *
 * Replies are integers only (see lockScripts.ts).
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"

/** `[1, fence]` taken, `[0, ms until worth another look]` not taken, `[2, stored permits]` mismatch. */
export type TakeReply =
  | { readonly _tag: "Taken"; readonly fence: number }
  | { readonly _tag: "Waiting"; readonly remaining: number }
  | { readonly _tag: "Mismatch"; readonly permits: number }

const PRUNE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[5], gone)
  redis.call('ZREM', KEYS[6], gone)
  redis.call('ZREM', KEYS[2], gone)
end
local function used()
  local total = 0
  for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    total = total + tonumber(redis.call('ZSCORE', KEYS[2], h) or '0')
  end
  return total
end
local function wake(free, channel, sharded)
  local head = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
  if head and tonumber(redis.call('ZSCORE', KEYS[2], head) or '0') <= free then
    redis.call(sharded == '1' and 'SPUBLISH' or 'PUBLISH', channel, head)
  end
end
local function keep(extra)
  local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  local ttl = math.max((tonumber(latest) or now) - now, 0) + extra
  for _, k in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[7]}) do
    redis.call('PEXPIRE', k, ttl)
  end
end`

const prune = (ks: Redis.Keyspace, [holders, count, fences, , queue, alive]: ReadonlyArray<string>) => {
  for (const gone of ks.zbelow(holders!, ks.now)) {
    ks.zrem(holders!, gone)
    ks.zrem(count!, gone)
    ks.zrem(fences!, gone)
  }
  for (const gone of ks.zbelow(alive!, ks.now)) {
    ks.zrem(queue!, gone)
    ks.zrem(alive!, gone)
    ks.zrem(count!, gone)
  }
}

const used = (ks: Redis.Keyspace, [holders, count]: ReadonlyArray<string>) => {
  let total = 0
  for (const h of ks.zrange(holders!, 0, -1)) total += ks.zscore(count!, h) ?? 0
  return total
}

const wake = (ks: Redis.Keyspace, keys: ReadonlyArray<string>, free: number, channel: string) => {
  const head = ks.zrange(keys[4]!, 0, 0)[0]
  if (head !== undefined && (ks.zscore(keys[1]!, head) ?? 0) <= free) ks.publish(channel, head)
}

const keep = (ks: Redis.Keyspace, keys: ReadonlyArray<string>, extra: number) => {
  const latest = ks.zrange(keys[0]!, -1, -1)[0]
  const ttl = Math.max((latest === undefined ? ks.now : ks.zscore(keys[0]!, latest)!) - ks.now, 0) + extra
  for (const k of [keys[0]!, keys[1]!, keys[2]!, keys[6]!]) ks.pexpire(k, ttl)
}

/** The capacity in force: the stored one, else the caller's. */
const CAPACITY = (arg: number) => `tonumber(redis.call('GET', KEYS[7]) or ARGV[${arg}])`
const capacity = (ks: Redis.Keyspace, keys: ReadonlyArray<string>, fallback: string) =>
  Number(ks.get(keys[6]!) ?? fallback)

/**
 * Take `n` permits. ARGV: 1 token, 2 n, 3 lease ms, 4 permits, 5 channel, 6 line TTL ms, 7 alive ms,
 * 8 `"1"`: wait in line (join, or keep one's place), `"0"`: a plain try that never joins, 9 `"1"`: wake
 * with SPUBLISH (sharded pub/sub on a cluster), else PUBLISH.
 *
 * The caller takes when `n` permits are free and it is the head of the line or nobody waits. A try
 * resent by a token that already holds renews its holding (same fence). The `permits` of an empty
 * semaphore are the caller's; otherwise a caller whose `permits` differ from the stored value gets
 * `[2, stored]` and changes nothing. Not taken, the reply says when another look is worth it: the
 * earliest holding's expiry, or the head's alive deadline (a dead head drops out then).
 */
export const take = Redis.script<TakeReply>({
  name: "semaphore.take",
  numberOfKeys: 7,
  lua: `${PRUNE}
local token = ARGV[1]
local n = tonumber(ARGV[2])
local cap = tonumber(ARGV[4])
local line = tonumber(ARGV[6])
local stored = redis.call('GET', KEYS[7])
if stored ~= ARGV[4] then
  if stored and tonumber(stored) ~= cap and (redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[5]) == 1) then
    return {2, tonumber(stored)}
  end
  redis.call('SET', KEYS[7], ARGV[4], 'PX', line)
end
local mine = redis.call('ZSCORE', KEYS[1], token)
if mine then
  redis.call('ZADD', KEYS[1], math.max(tonumber(mine), now + tonumber(ARGV[3])), token)
  keep(line)
  return {1, tonumber(redis.call('ZSCORE', KEYS[3], token))}
end
local free = cap - used()
local head = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
if n <= free and (not head or head == token) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), token)
  redis.call('ZADD', KEYS[2], n, token)
  local fence = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[3], fence, token)
  keep(line)
  if head then
    redis.call('ZREM', KEYS[5], token)
    redis.call('ZREM', KEYS[6], token)
    wake(free - n, ARGV[5], ARGV[9])
  end
  return {1, fence}
end
if ARGV[8] == '1' then
  if not redis.call('ZSCORE', KEYS[5], token) then
    local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')[2]
    redis.call('ZADD', KEYS[5], (tonumber(last) or 0) + 1, token)
  end
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[7]), token)
  redis.call('ZADD', KEYS[2], n, token)
  redis.call('PEXPIRE', KEYS[5], line)
  redis.call('PEXPIRE', KEYS[6], line)
  keep(line)
  head = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
end
local remaining = tonumber(ARGV[7])
if head and head ~= token then
  wake(free, ARGV[5], ARGV[9])
  remaining = math.min(remaining, tonumber(redis.call('ZSCORE', KEYS[6], head)) - now)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if first then
  remaining = math.min(remaining, tonumber(first) - now)
end
return {0, math.max(remaining, 0)}`,
  local: (ks, keys, [token, nArg, lease, permits, channel, lineTtl, aliveMs, fair]) => {
    const [holders, count, fences, fence, queue, alive, stored] = keys as [
      string,
      string,
      string,
      string,
      string,
      string,
      string
    ]
    prune(ks, keys)
    const n = Number(nArg)
    const cap = Number(permits)
    const line = Number(lineTtl)
    const current = ks.get(stored)
    if (current !== permits) {
      if (current !== null && Number(current) !== cap && (ks.pttl(holders) !== -2 || ks.pttl(queue) !== -2)) {
        return [2, Number(current)]
      }
      ks.set(stored, permits!, line)
    }
    const mine = ks.zscore(holders, token!)
    if (mine !== null) {
      ks.zadd(holders, Math.max(mine, ks.now + Number(lease)), token!)
      keep(ks, keys, line)
      return [1, ks.zscore(fences, token!)!]
    }
    const free = cap - used(ks, keys)
    let head = ks.zrange(queue, 0, 0)[0]
    if (n <= free && (head === undefined || head === token)) {
      ks.zadd(holders, ks.now + Number(lease), token!)
      ks.zadd(count, n, token!)
      const next = ks.incr(fence)
      ks.zadd(fences, next, token!)
      keep(ks, keys, line)
      if (head !== undefined) {
        ks.zrem(queue, token!)
        ks.zrem(alive, token!)
        wake(ks, keys, free - n, channel!)
      }
      return [1, next]
    }
    if (fair === "1") {
      if (ks.zscore(queue, token!) === null) {
        const last = ks.zrange(queue, -1, -1)[0]
        ks.zadd(queue, (last === undefined ? 0 : ks.zscore(queue, last)!) + 1, token!)
      }
      ks.zadd(alive, ks.now + Number(aliveMs), token!)
      ks.zadd(count, n, token!)
      ks.pexpire(queue, line)
      ks.pexpire(alive, line)
      keep(ks, keys, line)
      head = ks.zrange(queue, 0, 0)[0]
    }
    let remaining = Number(aliveMs)
    if (head !== undefined && head !== token) {
      wake(ks, keys, free, channel!)
      remaining = Math.min(remaining, ks.zscore(alive, head)! - ks.now)
    }
    const first = ks.zrange(holders, 0, 0)[0]
    if (first !== undefined) remaining = Math.min(remaining, ks.zscore(holders, first)! - ks.now)
    return [0, Math.max(remaining, 0)]
  },
  decode: (reply) =>
    Either.flatMap(Redis.decodeIntegers(2)(reply), ([tag, n]): Either.Either<TakeReply, string> =>
      tag === 1
        ? Either.right({ _tag: "Taken", fence: n! })
        : tag === 0
        ? Either.right({ _tag: "Waiting", remaining: n! })
        : tag === 2
        ? Either.right({ _tag: "Mismatch", permits: n! })
        : Either.left(`unknown semaphore reply ${tag}`))
})

const decodeFlag = (reply: unknown) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)

/**
 * Gives a holding back. ARGV: 1 token, 2 permits, 3 channel, 4 sharded (`"1"`: SPUBLISH). 1 when the
 * caller held permits (now freed, and the head of the line woken if its request fits), 0 when it held
 * none (its holding expired).
 */
export const release = Redis.script<boolean>({
  name: "semaphore.release",
  numberOfKeys: 7,
  lua: `${PRUNE}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
wake(${CAPACITY(2)} - used(), ARGV[3], ARGV[4])
return 1`,
  local: (ks, keys, [token, permits, channel]) => {
    prune(ks, keys)
    if (ks.zscore(keys[0]!, token!) === null) return 0
    ks.zrem(keys[0]!, token!)
    ks.zrem(keys[1]!, token!)
    ks.zrem(keys[2]!, token!)
    wake(ks, keys, capacity(ks, keys, permits!) - used(ks, keys), channel!)
    return 1
  },
  decode: decodeFlag
})

/**
 * A token is done, whatever it knows (gave up, interrupted, or its try's answer never came): it leaves
 * the line and gives back any holding its unheard try won; then the head is woken if its request fits.
 * ARGV: 1 token, 2 permits, 3 channel, 4 sharded (`"1"`: SPUBLISH). 1 when it held permits.
 */
export const leave = Redis.script<boolean>({
  name: "semaphore.leave",
  numberOfKeys: 7,
  lua: `${PRUNE}
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
local held = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
wake(${CAPACITY(2)} - used(), ARGV[3], ARGV[4])
return held`,
  local: (ks, keys, [token, permits, channel]) => {
    prune(ks, keys)
    ks.zrem(keys[4]!, token!)
    ks.zrem(keys[5]!, token!)
    const held = ks.zrem(keys[0]!, token!)
    ks.zrem(keys[1]!, token!)
    ks.zrem(keys[2]!, token!)
    wake(ks, keys, capacity(ks, keys, permits!) - used(ks, keys), channel!)
    return held
  },
  decode: decodeFlag
})

/**
 * Owner-checked extension that never shortens a holding (as the lock's). ARGV: 1 token, 2 ms, 3 mode
 * (`"add"`: time left + ms, `"set"`: ms), 4 line TTL ms. Replies the ms left now, 0 when the caller
 * holds nothing.
 */
export const extend = Redis.script<number>({
  name: "semaphore.extend",
  numberOfKeys: 7,
  lua: `${PRUNE}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
local ttl = tonumber(score) - now
local target = tonumber(ARGV[2])
if ARGV[3] == 'add' then
  target = target + ttl
end
if target > ttl then
  redis.call('ZADD', KEYS[1], now + target, ARGV[1])
  keep(tonumber(ARGV[4]))
  return target
end
return ttl`,
  local: (ks, keys, [token, ms, mode, lineTtl]) => {
    prune(ks, keys)
    const score = ks.zscore(keys[0]!, token!)
    if (score === null) return 0
    const ttl = score - ks.now
    const target = Number(ms) + (mode === "add" ? ttl : 0)
    if (target <= ttl) return ttl
    ks.zadd(keys[0]!, ks.now + target, token!)
    keep(ks, keys, Number(lineTtl))
    return target
  },
  decode: Redis.decodeInteger
})

/** Read-only: permits free now (expired holdings count as free). ARGV: 1 permits (the caller's). */
export const available = Redis.script<number>({
  name: "semaphore.available",
  numberOfKeys: 7,
  lua: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = 0
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  total = total + tonumber(redis.call('ZSCORE', KEYS[2], h) or '0')
end
return math.max(tonumber(ARGV[1]) - total, 0)`,
  local: (ks, [holders, count], [permits]) => {
    let total = 0
    for (const h of ks.zrange(holders!, 0, -1)) {
      if (ks.zscore(holders!, h)! >= ks.now) total += ks.zscore(count!, h) ?? 0
    }
    return Math.max(Number(permits) - total, 0)
  },
  decode: Redis.decodeInteger
})
