/**
 * The read-write lock's atomic operations, Lua beside its TypeScript twin, as typed codecs
 * (`core/script.ts`).
 *
 * Keys (every script takes all of them): `writer` (the writer's token, PX = its lease), `readers` (sorted
 * set: token → expiry, Redis `TIME` ms), `fences` (token → the fence a reader carries), `fence` (the
 * fencing counter, stepped by every write granted), `queue` (waiters by arrival), `alive` (waiters by the
 * instant they count as gone), `modes` (waiter → 1 for a write, 0 for a read).
 *
 * Every script first drops expired readers and gone waiters (a writer's key expires by itself), so a dead
 * holder's hold lapses when its own lease ends, never taking the others' with it. Turns are first come,
 * first served: a writer enters when nobody holds and it is the head of the line; a reader enters when no
 * writer holds and no writer waits ahead of it, so the readers at the head of the line enter together and
 * a waiting writer holds back every reader that came after it. Plain tries (`fair` `"0"`) never join the
 * line and never overtake it. Whoever may enter now is woken on the channel (a release, a leave, a
 * downgrade, a look that finds the holders gone): the writer at the head, or every reader before the
 * first waiting writer. Nothing is reserved: while someone waits ahead, nobody behind can enter.
 *
 * A write's fence is the next value of the counter; a read's is the counter as it is (the fence of the
 * last write granted before it). Replies are integers only (see the lock's scripts).
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import * as Lua from "../core/lua.js"
import type { TryReply } from "../core/resource.js"
import { define, type Keys } from "../core/script.js"

const KEYS = ["writer", "readers", "fences", "fence", "queue", "alive", "modes"] as const
type RwKeys = Keys<(typeof KEYS)[number]>

/**
 * Lua: drop expired readers and gone waiters; then `writerAhead(token)` (whether a writer waits ahead of
 * `token`, or anywhere in line for a token not in it), `wake()` (publish every waiter that may enter now)
 * and `keep(extra)` (the holders' keys outlive the latest reader by `extra` ms).
 */
const PRUNE = `${Lua.NOW}
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', readersKey, '-inf', '(' .. now)) do
  redis.call('ZREM', readersKey, gone)
  redis.call('ZREM', fencesKey, gone)
end
${Lua.dropGone("queueKey", "aliveKey", ["modesKey"])}
local function writerAhead(who)
  for _, t in ipairs(redis.call('ZRANGE', queueKey, 0, -1)) do
    if t == who then
      return false
    end
    if redis.call('ZSCORE', modesKey, t) == '1' then
      return true
    end
  end
  return false
end
local function wake()
  if redis.call('EXISTS', writerKey) == 1 then
    return
  end
  local reading = redis.call('ZRANGE', readersKey, 0, 0)[1]
  for i, t in ipairs(redis.call('ZRANGE', queueKey, 0, -1)) do
    if redis.call('ZSCORE', modesKey, t) == '1' then
      if i == 1 and not reading then
        ${Lua.publish("channel", "t")}
      end
      return
    end
    ${Lua.publish("channel", "t")}
  end
end
local function keep(extra)
  local latest = redis.call('ZRANGE', readersKey, -1, -1, 'WITHSCORES')[2]
  local ttl = math.max((tonumber(latest) or now) - now, 0) + extra
  redis.call('PEXPIRE', readersKey, ttl)
  redis.call('PEXPIRE', fencesKey, ttl)
end`

const prune = (ks: Redis.Keyspace, keys: RwKeys) => {
  for (const gone of ks.zbelow(keys.readers, ks.now)) {
    ks.zrem(keys.readers, gone)
    ks.zrem(keys.fences, gone)
  }
  Lua.dropGoneLocal(ks, keys.queue, keys.alive, [keys.modes])
}

const writerAhead = (ks: Redis.Keyspace, keys: RwKeys, who: string) => {
  for (const t of ks.zrange(keys.queue, 0, -1)) {
    if (t === who) return false
    if (ks.zscore(keys.modes, t) === 1) return true
  }
  return false
}

const wake = (ks: Redis.Keyspace, keys: RwKeys, channel: string) => {
  if (ks.pttl(keys.writer) !== -2) return
  const reading = ks.zrange(keys.readers, 0, 0).length > 0
  const line = ks.zrange(keys.queue, 0, -1)
  for (let i = 0; i < line.length; i++) {
    const t = line[i]!
    if (ks.zscore(keys.modes, t) === 1) {
      if (i === 0 && !reading) ks.publish(channel, t)
      return
    }
    ks.publish(channel, t)
  }
}

const keep = (ks: Redis.Keyspace, keys: RwKeys, extra: number) => {
  const latest = ks.zrange(keys.readers, -1, -1)[0]
  const ttl = Math.max((latest === undefined ? ks.now : ks.zscore(keys.readers, latest)!) - ks.now, 0) + extra
  ks.pexpire(keys.readers, ttl)
  ks.pexpire(keys.fences, ttl)
}

const counter = (ks: Redis.Keyspace, keys: RwKeys) => Number(ks.get(keys.fence) ?? "0")

const decodeTake = (reply: unknown): Either.Either<TryReply, string> =>
  Either.map(
    Redis.decodeIntegers(3)(reply),
    ([ok, n, first]): TryReply =>
      ok === 1 ? { acquired: true, fence: n! } : { acquired: false, remaining: Math.max(0, n!), first: first === 1 }
  )

/**
 * Take the lock for a read (`mode` `"r"`) or a write (`"w"`). `fair`: `"1"` waits in line (join, or keep
 * one's place), `"0"` is a plain try that never joins. `[1, fence]` taken (a try resent by a holder renews
 * its hold, same fence); `[0, ms until worth another look, first]` not taken, `first` 1 when nobody in
 * line ahead of the caller stands in its way.
 */
export const take = define({
  name: "rwlock.take",
  keys: KEYS,
  args: ["token", "mode", "lease", "channel", "lineTtl", "aliveMs", "fenceTtl", "fair", "sharded"],
  lua: `${PRUNE}
local line = tonumber(lineTtl)
local writer = redis.call('GET', writerKey)
if writer == token then
  redis.call('PEXPIRE', writerKey, lease)
  return {1, tonumber(redis.call('GET', fenceKey) or '0'), 0}
end
local mine = redis.call('ZSCORE', readersKey, token)
if mine then
  redis.call('ZADD', readersKey, math.max(tonumber(mine), now + tonumber(lease)), token)
  keep(line)
  return {1, tonumber(redis.call('ZSCORE', fencesKey, token)), 0}
end
local head = redis.call('ZRANGE', queueKey, 0, 0)[1]
local clear
if mode == 'w' then
  clear = not writer and not redis.call('ZRANGE', readersKey, 0, 0)[1] and (not head or head == token)
else
  clear = not writer and not writerAhead(token)
end
if clear then
  local fence
  if mode == 'w' then
    redis.call('SET', writerKey, token, 'PX', lease)
    ${Lua.assignNextFence("fenceKey", "fenceTtl", "fence")}
  else
    fence = tonumber(redis.call('GET', fenceKey) or '0')
    redis.call('ZADD', readersKey, now + tonumber(lease), token)
    redis.call('ZADD', fencesKey, fence, token)
    keep(line)
  end
  ${Lua.leaveLine("queueKey", "aliveKey", "token")}
  redis.call('ZREM', modesKey, token)
  return {1, fence, 0}
end
if fair == '1' then
  ${Lua.joinLine("queueKey", "aliveKey", "token", "aliveMs", "line")}
  redis.call('ZADD', modesKey, mode == 'w' and 1 or 0, token)
  redis.call('PEXPIRE', modesKey, line)
  head = redis.call('ZRANGE', queueKey, 0, 0)[1]
end
wake()
local remaining = tonumber(aliveMs)
if writer then
  remaining = math.min(remaining, redis.call('PTTL', writerKey))
end
local firstReader = redis.call('ZRANGE', readersKey, 0, 0, 'WITHSCORES')[2]
if firstReader then
  remaining = math.min(remaining, tonumber(firstReader) - now)
end
if head and head ~= token then
  remaining = math.min(remaining, tonumber(redis.call('ZSCORE', aliveKey, head)) - now)
end
local first = 0
if fair == '1' and (head == token or (mode == 'r' and not writerAhead(token))) then
  first = 1
end
return {0, math.max(remaining, 0), first}`,
  local: (ks, keys, args) => {
    const { aliveMs, channel, fair, lease, lineTtl, mode, token } = args
    prune(ks, keys)
    const line = Number(lineTtl)
    const writer = ks.get(keys.writer)
    if (writer === token) {
      ks.pexpire(keys.writer, Number(lease))
      return [1, counter(ks, keys), 0]
    }
    const mine = ks.zscore(keys.readers, token)
    if (mine !== null) {
      ks.zadd(keys.readers, Math.max(mine, ks.now + Number(lease)), token)
      keep(ks, keys, line)
      return [1, ks.zscore(keys.fences, token)!, 0]
    }
    let head: string | undefined = ks.zrange(keys.queue, 0, 0)[0]
    const clear = mode === "w"
      ? writer === null && ks.zrange(keys.readers, 0, 0).length === 0 && (head === undefined || head === token)
      : writer === null && !writerAhead(ks, keys, token)
    if (clear) {
      let fence: number
      if (mode === "w") {
        ks.set(keys.writer, token, Number(lease))
        fence = Lua.nextFenceLocal(ks, keys.fence, Number(args.fenceTtl))
      } else {
        fence = counter(ks, keys)
        ks.zadd(keys.readers, ks.now + Number(lease), token)
        ks.zadd(keys.fences, fence, token)
        keep(ks, keys, line)
      }
      Lua.leaveLineLocal(ks, keys.queue, keys.alive, token)
      ks.zrem(keys.modes, token)
      return [1, fence, 0]
    }
    if (fair === "1") {
      Lua.joinLineLocal(ks, keys.queue, keys.alive, token, Number(aliveMs), line)
      ks.zadd(keys.modes, mode === "w" ? 1 : 0, token)
      ks.pexpire(keys.modes, line)
      head = ks.zrange(keys.queue, 0, 0)[0]
    }
    wake(ks, keys, channel)
    let remaining = Number(aliveMs)
    if (writer !== null) remaining = Math.min(remaining, ks.pttl(keys.writer))
    const firstReader = ks.zrange(keys.readers, 0, 0)[0]
    if (firstReader !== undefined) remaining = Math.min(remaining, ks.zscore(keys.readers, firstReader)! - ks.now)
    if (head !== undefined && head !== token) remaining = Math.min(remaining, ks.zscore(keys.alive, head)! - ks.now)
    const first = fair === "1" && (head === token || (mode === "r" && !writerAhead(ks, keys, token))) ? 1 : 0
    return [0, Math.max(remaining, 0), first]
  },
  decode: decodeTake
})

const decodeFlag = (reply: unknown) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)

/** Lua: `token`'s hold given back, if it has one (`held` 1 then); the local `held` is set. */
const GIVE_BACK = `local held = 0
if redis.call('GET', writerKey) == token then
  redis.call('DEL', writerKey)
  held = 1
elseif redis.call('ZREM', readersKey, token) == 1 then
  redis.call('ZREM', fencesKey, token)
  held = 1
end`

const giveBack = (ks: Redis.Keyspace, keys: RwKeys, token: string): number => {
  if (ks.get(keys.writer) === token) {
    ks.del(keys.writer)
    return 1
  }
  if (ks.zrem(keys.readers, token) === 1) {
    ks.zrem(keys.fences, token)
    return 1
  }
  return 0
}

/** Gives a hold back, a read or a write: 1 when the caller held (and whoever may enter now is woken), else 0. */
export const release = define({
  name: "rwlock.release",
  keys: KEYS,
  args: ["token", "channel", "sharded"],
  lua: `${PRUNE}
${GIVE_BACK}
if held == 1 then
  wake()
end
return held`,
  local: (ks, keys, { channel, token }) => {
    prune(ks, keys)
    const held = giveBack(ks, keys, token)
    if (held === 1) wake(ks, keys, channel)
    return held
  },
  decode: decodeFlag
})

/**
 * A token is done, whatever it knows (gave up, interrupted, or its try's answer never came): it leaves the
 * line and gives back any hold its unheard try won; then whoever may enter now is woken (a writer that
 * leaves may let the readers behind it in). 1 when it held.
 */
export const leave = define({
  name: "rwlock.leave",
  keys: KEYS,
  args: ["token", "channel", "sharded"],
  lua: `${PRUNE}
${Lua.leaveLine("queueKey", "aliveKey", "token")}
redis.call('ZREM', modesKey, token)
${GIVE_BACK}
wake()
return held`,
  local: (ks, keys, { channel, token }) => {
    prune(ks, keys)
    Lua.leaveLineLocal(ks, keys.queue, keys.alive, token)
    ks.zrem(keys.modes, token)
    const held = giveBack(ks, keys, token)
    wake(ks, keys, channel)
    return held
  },
  decode: decodeFlag
})

/**
 * Owner-checked extension of a read or a write that never shortens it. `mode`: `"add"`: time left + `ms`,
 * `"set"`: `ms`. Replies the ms left now, 0 when the caller holds nothing.
 */
export const extend = define({
  name: "rwlock.extend",
  keys: KEYS,
  args: ["token", "ms", "mode", "lineTtl"],
  lua: `${PRUNE}
local ttl
if redis.call('GET', writerKey) == token then
  ttl = redis.call('PTTL', writerKey)
else
  local score = redis.call('ZSCORE', readersKey, token)
  if not score then
    return 0
  end
  ttl = tonumber(score) - now
end
local target = tonumber(ms)
if mode == 'add' then
  target = target + math.max(ttl, 0)
end
if ttl >= 0 and target <= ttl then
  return ttl
end
if redis.call('GET', writerKey) == token then
  redis.call('PEXPIRE', writerKey, target)
else
  redis.call('ZADD', readersKey, now + target, token)
  keep(tonumber(lineTtl))
end
return target`,
  local: (ks, keys, { lineTtl, mode, ms, token }) => {
    prune(ks, keys)
    const writing = ks.get(keys.writer) === token
    let ttl: number
    if (writing) ttl = ks.pttl(keys.writer)
    else {
      const score = ks.zscore(keys.readers, token)
      if (score === null) return 0
      ttl = score - ks.now
    }
    const target = Number(ms) + (mode === "add" ? Math.max(ttl, 0) : 0)
    if (ttl >= 0 && target <= ttl) return ttl
    if (writing) ks.pexpire(keys.writer, target)
    else {
      ks.zadd(keys.readers, ks.now + target, token)
      keep(ks, keys, Number(lineTtl))
    }
    return target
  },
  decode: Redis.decodeInteger
})

/**
 * The writer `token` becomes a reader in one step, with the time its write had left and the fence of its
 * write (the last one granted); the readers behind it in line are woken. `[1, fence]`, or `[0, 0]` when
 * `token` is not the writer.
 */
export const downgrade = define({
  name: "rwlock.downgrade",
  keys: KEYS,
  args: ["token", "channel", "lineTtl", "sharded"],
  lua: `${PRUNE}
if redis.call('GET', writerKey) ~= token then
  return {0, 0}
end
local ttl = redis.call('PTTL', writerKey)
redis.call('DEL', writerKey)
local fence = tonumber(redis.call('GET', fenceKey) or '0')
redis.call('ZADD', readersKey, now + math.max(ttl, 0), token)
redis.call('ZADD', fencesKey, fence, token)
keep(tonumber(lineTtl))
wake()
return {1, fence}`,
  local: (ks, keys, { channel, lineTtl, token }) => {
    prune(ks, keys)
    if (ks.get(keys.writer) !== token) return [0, 0]
    const ttl = ks.pttl(keys.writer)
    ks.del(keys.writer)
    const fence = counter(ks, keys)
    ks.zadd(keys.readers, ks.now + Math.max(ttl, 0), token)
    ks.zadd(keys.fences, fence, token)
    keep(ks, keys, Number(lineTtl))
    wake(ks, keys, channel)
    return [1, fence]
  },
  decode: (reply) =>
    Either.map(Redis.decodeIntegers(2)(reply), ([ok, fence]) => ok === 1 ? { fence: fence! } : undefined)
})

/** What a read-only look finds: the writer (if any), how many read, the fence counter, how many wait. */
export interface InspectReply {
  readonly writing: boolean
  readonly readers: number
  readonly fence: number
  readonly waiting: number
}

/** A read-only look for an observer holding no token: `[writer 0|1, readers, fence counter, waiters]`. */
export const inspect = define({
  name: "rwlock.inspect",
  keys: KEYS,
  args: [],
  lua: `${Lua.NOW}
return {redis.call('EXISTS', writerKey), redis.call('ZCOUNT', readersKey, now, '+inf'),
  tonumber(redis.call('GET', fenceKey) or '0'), redis.call('ZCOUNT', aliveKey, now, '+inf')}`,
  local: (ks, keys) => {
    const living = (key: string) => ks.zrange(key, 0, -1).filter((t) => ks.zscore(key, t)! >= ks.now).length
    return [ks.pttl(keys.writer) === -2 ? 0 : 1, living(keys.readers), counter(ks, keys), living(keys.alive)]
  },
  decode: (reply) =>
    Either.map(Redis.decodeIntegers(4)(reply), ([writing, readers, fence, waiting]): InspectReply => ({
      writing: writing === 1,
      readers: readers!,
      fence: fence!,
      waiting: waiting!
    }))
})
