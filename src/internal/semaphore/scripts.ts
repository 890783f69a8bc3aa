/**
 * The semaphore's atomic operations, Lua beside its TypeScript twin, as typed codecs (`core/script.ts`).
 *
 * Keys (every script takes all of them): `holders` (sorted set: token → expiry, Redis `TIME` ms),
 * `count` (token → permits held or asked for), `fences` (token → the holding's fence), `fence` (the
 * fencing counter, living `fenceTtl` after the last take: `core/lua.ts` `nextFence`), `queue` (waiters by arrival), `alive` (waiters by the instant they count as gone),
 * `permits` (the capacity the current holders and waiters agreed on).
 *
 * Every script first drops expired holdings and gone waiters, so a dead holder's permits come back when
 * its lease ends and a dead waiter leaves the line on its own, with no cleanup process. Only the head of
 * the line (or anyone, when nobody waits) may take: a waiter for many permits is never overtaken by later
 * waiters asking for fewer. Whenever the head's request fits (a release, a leave, a take that leaves
 * room, a look that finds expired holdings gone), its token is published on the channel: the head is
 * woken, and takes in one round trip. Nothing is reserved for it: while the line is not empty nobody else
 * can take, so no reservation is needed, and a dead head drops out after one `alive` period.
 *
 * Replies are integers only (see the lock's scripts).
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import * as Lua from "../core/lua.js"
import { define, type Keys } from "../core/script.js"

/** `[1, fence]` taken, `[0, ms until worth another look]` not taken, `[2, stored permits]` mismatch. */
export type TakeReply =
  | { readonly _tag: "Taken"; readonly fence: number }
  | { readonly _tag: "Waiting"; readonly remaining: number }
  | { readonly _tag: "Mismatch"; readonly permits: number }

const KEYS = ["holders", "count", "fences", "fence", "queue", "alive", "permits"] as const
type SemaphoreKeys = Keys<(typeof KEYS)[number]>

/** Lua: drop expired holdings and gone waiters; then `used()`, `wake(free)` and `keep(extra)`. */
const PRUNE = `${Lua.NOW}
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', holdersKey, '-inf', '(' .. now)) do
  redis.call('ZREM', holdersKey, gone)
  redis.call('ZREM', countKey, gone)
  redis.call('ZREM', fencesKey, gone)
end
${Lua.dropGone("queueKey", "aliveKey", ["countKey"])}
local function used()
  local total = 0
  for _, h in ipairs(redis.call('ZRANGE', holdersKey, 0, -1)) do
    total = total + tonumber(redis.call('ZSCORE', countKey, h) or '0')
  end
  return total
end
local function wake(free)
  local head = redis.call('ZRANGE', queueKey, 0, 0)[1]
  if head and tonumber(redis.call('ZSCORE', countKey, head) or '0') <= free then
    ${Lua.publish("channel", "head")}
  end
end
local function keep(extra)
  local latest = redis.call('ZRANGE', holdersKey, -1, -1, 'WITHSCORES')[2]
  local ttl = math.max((tonumber(latest) or now) - now, 0) + extra
  for _, k in ipairs({holdersKey, countKey, fencesKey, permitsKey}) do
    redis.call('PEXPIRE', k, ttl)
  end
end`

const prune = (ks: Redis.Keyspace, keys: SemaphoreKeys) => {
  for (const gone of ks.zbelow(keys.holders, ks.now)) {
    ks.zrem(keys.holders, gone)
    ks.zrem(keys.count, gone)
    ks.zrem(keys.fences, gone)
  }
  Lua.dropGoneLocal(ks, keys.queue, keys.alive, [keys.count])
}

const used = (ks: Redis.Keyspace, keys: SemaphoreKeys) => {
  let total = 0
  for (const h of ks.zrange(keys.holders, 0, -1)) total += ks.zscore(keys.count, h) ?? 0
  return total
}

const wake = (ks: Redis.Keyspace, keys: SemaphoreKeys, free: number, channel: string) => {
  const head = ks.zrange(keys.queue, 0, 0)[0]
  if (head !== undefined && (ks.zscore(keys.count, head) ?? 0) <= free) ks.publish(channel, head)
}

const keep = (ks: Redis.Keyspace, keys: SemaphoreKeys, extra: number) => {
  const latest = ks.zrange(keys.holders, -1, -1)[0]
  const ttl = Math.max((latest === undefined ? ks.now : ks.zscore(keys.holders, latest)!) - ks.now, 0) + extra
  for (const k of [keys.holders, keys.count, keys.fences, keys.permits]) ks.pexpire(k, ttl)
}

/** Lua: the capacity in force: the stored one, else the caller's `permits`. */
const CAPACITY = `tonumber(redis.call('GET', permitsKey) or permits)`
const capacity = (ks: Redis.Keyspace, keys: SemaphoreKeys, fallback: string) => Number(ks.get(keys.permits) ?? fallback)

/**
 * Take `asked` permits of `permits`. `fair`: `"1"` waits in line (join, or keep one's place), `"0"` is a
 * plain try that never joins.
 *
 * The caller takes when the permits are free and it is the head of the line or nobody waits. A try
 * resent by a token that already holds renews its holding (same fence). The `permits` of an empty
 * semaphore are the caller's; otherwise a caller whose `permits` differ from the stored value gets
 * `[2, stored]` and changes nothing. Not taken, the reply says when another look is worth it: the
 * earliest holding's expiry, or the head's alive deadline (a dead head drops out then).
 */
export const take = define({
  name: "semaphore.take",
  keys: KEYS,
  args: ["token", "asked", "lease", "permits", "channel", "lineTtl", "aliveMs", "fenceTtl", "fair", "sharded"],
  lua: `${PRUNE}
local n = tonumber(asked)
local cap = tonumber(permits)
local line = tonumber(lineTtl)
local stored = redis.call('GET', permitsKey)
if stored ~= permits then
  if stored and tonumber(stored) ~= cap and (redis.call('EXISTS', holdersKey) == 1 or redis.call('EXISTS', queueKey) == 1) then
    return {2, tonumber(stored)}
  end
  redis.call('SET', permitsKey, permits, 'PX', line)
end
local mine = redis.call('ZSCORE', holdersKey, token)
if mine then
  redis.call('ZADD', holdersKey, math.max(tonumber(mine), now + tonumber(lease)), token)
  keep(line)
  return {1, tonumber(redis.call('ZSCORE', fencesKey, token))}
end
local free = cap - used()
local head = redis.call('ZRANGE', queueKey, 0, 0)[1]
if n <= free and (not head or head == token) then
  redis.call('ZADD', holdersKey, now + tonumber(lease), token)
  redis.call('ZADD', countKey, n, token)
  ${Lua.nextFence("fenceKey", "fenceTtl")}
  redis.call('ZADD', fencesKey, fence, token)
  keep(line)
  if head then
    ${Lua.leaveLine("queueKey", "aliveKey", "token")}
    wake(free - n)
  end
  return {1, fence}
end
if fair == '1' then
  ${Lua.joinLine("queueKey", "aliveKey", "token", "aliveMs", "line")}
  redis.call('ZADD', countKey, n, token)
  keep(line)
  head = redis.call('ZRANGE', queueKey, 0, 0)[1]
end
local remaining = tonumber(aliveMs)
if head and head ~= token then
  wake(free)
  remaining = math.min(remaining, tonumber(redis.call('ZSCORE', aliveKey, head)) - now)
end
local first = redis.call('ZRANGE', holdersKey, 0, 0, 'WITHSCORES')[2]
if first then
  remaining = math.min(remaining, tonumber(first) - now)
end
return {0, math.max(remaining, 0)}`,
  local: (ks, keys, args) => {
    const { aliveMs, asked, channel, fair, lease, lineTtl, permits, token } = args
    prune(ks, keys)
    const n = Number(asked)
    const cap = Number(permits)
    const line = Number(lineTtl)
    const current = ks.get(keys.permits)
    if (current !== permits) {
      if (
        current !== null && Number(current) !== cap && (ks.pttl(keys.holders) !== -2 || ks.pttl(keys.queue) !== -2)
      ) {
        return [2, Number(current)]
      }
      ks.set(keys.permits, permits, line)
    }
    const mine = ks.zscore(keys.holders, token)
    if (mine !== null) {
      ks.zadd(keys.holders, Math.max(mine, ks.now + Number(lease)), token)
      keep(ks, keys, line)
      return [1, ks.zscore(keys.fences, token)!]
    }
    const free = cap - used(ks, keys)
    let head = ks.zrange(keys.queue, 0, 0)[0]
    if (n <= free && (head === undefined || head === token)) {
      ks.zadd(keys.holders, ks.now + Number(lease), token)
      ks.zadd(keys.count, n, token)
      const next = Lua.nextFenceLocal(ks, keys.fence, Number(args.fenceTtl))
      ks.zadd(keys.fences, next, token)
      keep(ks, keys, line)
      if (head !== undefined) {
        Lua.leaveLineLocal(ks, keys.queue, keys.alive, token)
        wake(ks, keys, free - n, channel)
      }
      return [1, next]
    }
    if (fair === "1") {
      Lua.joinLineLocal(ks, keys.queue, keys.alive, token, Number(aliveMs), line)
      ks.zadd(keys.count, n, token)
      keep(ks, keys, line)
      head = ks.zrange(keys.queue, 0, 0)[0]
    }
    let remaining = Number(aliveMs)
    if (head !== undefined && head !== token) {
      wake(ks, keys, free, channel)
      remaining = Math.min(remaining, ks.zscore(keys.alive, head)! - ks.now)
    }
    const first = ks.zrange(keys.holders, 0, 0)[0]
    if (first !== undefined) remaining = Math.min(remaining, ks.zscore(keys.holders, first)! - ks.now)
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

/** Lua: give `token`'s holding back (if any), then wake the head if its request fits. */
const GIVE_BACK = `redis.call('ZREM', countKey, token)
redis.call('ZREM', fencesKey, token)
wake(${CAPACITY} - used())`

const giveBack = (ks: Redis.Keyspace, keys: SemaphoreKeys, token: string, permits: string, channel: string) => {
  ks.zrem(keys.count, token)
  ks.zrem(keys.fences, token)
  wake(ks, keys, capacity(ks, keys, permits) - used(ks, keys), channel)
}

/**
 * Gives a holding back: 1 when the caller held permits (now freed, and the head of the line woken if its
 * request fits), 0 when it held none (its holding expired).
 */
export const release = define({
  name: "semaphore.release",
  keys: KEYS,
  args: ["token", "permits", "channel", "sharded"],
  lua: `${PRUNE}
if redis.call('ZREM', holdersKey, token) == 0 then
  return 0
end
${GIVE_BACK}
return 1`,
  local: (ks, keys, { channel, permits, token }) => {
    prune(ks, keys)
    if (ks.zrem(keys.holders, token) === 0) return 0
    giveBack(ks, keys, token, permits, channel)
    return 1
  },
  decode: decodeFlag
})

/**
 * A token is done, whatever it knows (gave up, interrupted, or its try's answer never came): it leaves
 * the line and gives back any holding its unheard try won; then the head is woken if its request fits.
 * 1 when it held permits.
 */
export const leave = define({
  name: "semaphore.leave",
  keys: KEYS,
  args: ["token", "permits", "channel", "sharded"],
  lua: `${PRUNE}
${Lua.leaveLine("queueKey", "aliveKey", "token")}
local held = redis.call('ZREM', holdersKey, token)
${GIVE_BACK}
return held`,
  local: (ks, keys, { channel, permits, token }) => {
    prune(ks, keys)
    Lua.leaveLineLocal(ks, keys.queue, keys.alive, token)
    const held = ks.zrem(keys.holders, token)
    giveBack(ks, keys, token, permits, channel)
    return held
  },
  decode: decodeFlag
})

/**
 * Owner-checked extension that never shortens a holding (as the lock's). `mode`: `"add"`: time left +
 * `ms`, `"set"`: `ms`. Replies the ms left now, 0 when the caller holds nothing.
 */
export const extend = define({
  name: "semaphore.extend",
  keys: KEYS,
  args: ["token", "ms", "mode", "lineTtl"],
  lua: `${PRUNE}
local score = redis.call('ZSCORE', holdersKey, token)
if not score then
  return 0
end
local ttl = tonumber(score) - now
local target = tonumber(ms)
if mode == 'add' then
  target = target + ttl
end
if target > ttl then
  redis.call('ZADD', holdersKey, now + target, token)
  keep(tonumber(lineTtl))
  return target
end
return ttl`,
  local: (ks, keys, { lineTtl, mode, ms, token }) => {
    prune(ks, keys)
    const score = ks.zscore(keys.holders, token)
    if (score === null) return 0
    const ttl = score - ks.now
    const target = Number(ms) + (mode === "add" ? ttl : 0)
    if (target <= ttl) return ttl
    ks.zadd(keys.holders, ks.now + target, token)
    keep(ks, keys, Number(lineTtl))
    return target
  },
  decode: Redis.decodeInteger
})

/** Read-only: permits free now (expired holdings count as free), out of the caller's `permits`. */
export const available = define({
  name: "semaphore.available",
  keys: KEYS,
  args: ["permits"],
  lua: `${Lua.NOW}
local total = 0
for _, h in ipairs(redis.call('ZRANGEBYSCORE', holdersKey, now, '+inf')) do
  total = total + tonumber(redis.call('ZSCORE', countKey, h) or '0')
end
return math.max(tonumber(permits) - total, 0)`,
  local: (ks, keys, { permits }) => {
    let total = 0
    for (const h of ks.zrange(keys.holders, 0, -1)) {
      if (ks.zscore(keys.holders, h)! >= ks.now) total += ks.zscore(keys.count, h) ?? 0
    }
    return Math.max(Number(permits) - total, 0)
  },
  decode: Redis.decodeInteger
})
