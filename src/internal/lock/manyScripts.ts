/**
 * The scripts of several lock ids taken as one (`Lock.acquireAll` over ids that share a hash slot): the
 * lock's own keys and protocol per id (`./scripts.ts`: the owner's token, the reservation `~<token>`, the
 * line, the fence), run over every id in one atomic step, so the ids are taken all at once or not at all.
 *
 * A try takes every id when each is the caller's to take: free (in line: with nobody living ahead of the
 * caller) or reserved for it. Otherwise it takes none; in line, it joins (or keeps its place in) every
 * id's line, and a free id whose line has another living head is reserved for that head, which is woken,
 * exactly as a single lock's try does; an id reserved for the caller goes back to being free with the
 * caller first in its line (a reservation is for a waiter that can take, and nobody overtakes the head). Joining is all or none too: a waiter missing from one of its lines
 * (dropped there while it stalled) leaves them all and joins each at its end, so its lines agree on who
 * came first. Release, leave and extension apply the lock's own steps to every id.
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import * as Lua from "../core/lua.js"
import type { TryReply } from "../core/resource.js"
import { defineEach } from "../core/script.js"
import { HAND_OVER, handOver, RESERVE_FOR_HEAD, reserveForHead } from "./scripts.js"

const KEYS = ["lock", "fence", "queue", "alive", "channel"] as const

/** A won try of several ids: every id's fence, in the order of the keys. */
export interface AllReply {
  readonly acquired: true
  readonly fence: number
  readonly fences: ReadonlyArray<number>
}

/** Lua: the locals of item `it` under the names the lock's fragments use. */
const LOCALS =
  `local lockKey, fenceKey, queueKey, aliveKey, channel = it.lockKey, it.fenceKey, it.queueKey, it.aliveKey,
    it.channelKey`

/**
 * Takes every id for `lease` ms, or none. `[1, fence…]` (one fence per id, in order; a resent try renews
 * ids already the caller's, same fence); `[0, ms until worth another look, first]` not taken, `first` 1
 * when the caller is first in every line.
 */
export const acquireAll = defineEach({
  name: "lock.acquireAll",
  keys: KEYS,
  args: ["token", "lease", "reservation", "lineTtl", "aliveMs", "fenceTtl", "fair", "sharded"],
  lua: `${Lua.NOW}
local blocked = false
local remaining = tonumber(aliveMs)
for _, it in ipairs(items) do
  ${LOCALS}
  local owner = redis.call('GET', lockKey)
  if owner == false and fair == '1' then
    ${Lua.dropGone("queueKey", "aliveKey")}
    ${RESERVE_FOR_HEAD}
  end
  if owner ~= false and owner ~= token and owner ~= '~' .. token then
    blocked = true
    remaining = math.min(remaining, redis.call('PTTL', lockKey))
  end
end
if not blocked then
  local fences = {1}
  for i, it in ipairs(items) do
    ${LOCALS}
    local fence
    if redis.call('GET', lockKey) == token then
      fence = tonumber(redis.call('GET', fenceKey) or '0')
    else
      ${Lua.assignNextFence("fenceKey", "fenceTtl", "fence")}
    end
    redis.call('SET', lockKey, token, 'PX', lease)
    ${Lua.leaveLine("queueKey", "aliveKey", "token")}
    fences[i + 1] = fence
  end
  return fences
end
local first = 0
if fair == '1' then
  local missing = false
  for _, it in ipairs(items) do
    if redis.call('GET', it.lockKey) == '~' .. token then
      redis.call('DEL', it.lockKey)
      local head = redis.call('ZRANGE', it.queueKey, 0, 0, 'WITHSCORES')[2]
      redis.call('ZADD', it.queueKey, (tonumber(head) or 1) - 1, token)
    end
    if not redis.call('ZSCORE', it.queueKey, token) then
      missing = true
    end
  end
  first = 1
  for _, it in ipairs(items) do
    ${LOCALS}
    if missing then
      ${Lua.leaveLine("queueKey", "aliveKey", "token")}
    end
    ${Lua.joinLine("queueKey", "aliveKey", "token", "aliveMs", "lineTtl")}
    if redis.call('ZRANGE', queueKey, 0, 0)[1] ~= token then
      first = 0
    end
  end
end
return {0, math.max(remaining, 0), first}`,
  local: (ks, items, args) => {
    const { aliveMs, fair, fenceTtl, lease, lineTtl, reservation, token } = args
    let blocked = false
    let remaining = Number(aliveMs)
    for (const it of items) {
      let owner = ks.get(it.lock)
      if (owner === null && fair === "1") {
        Lua.dropGoneLocal(ks, it.queue, it.alive)
        owner = reserveForHead(ks, it, token, reservation, it.channel)
      }
      if (owner !== null && owner !== token && owner !== `~${token}`) {
        blocked = true
        remaining = Math.min(remaining, ks.pttl(it.lock))
      }
    }
    if (!blocked) {
      const fences: Array<number> = [1]
      for (const it of items) {
        let fence: number
        if (ks.get(it.lock) === token) fence = Number(ks.get(it.fence) ?? "0")
        else {
          fence = Lua.nextFenceLocal(ks, it.fence, Number(fenceTtl))
        }
        ks.set(it.lock, token, Number(lease))
        Lua.leaveLineLocal(ks, it.queue, it.alive, token)
        fences.push(fence)
      }
      return fences
    }
    let first = 0
    if (fair === "1") {
      for (const it of items) {
        if (ks.get(it.lock) !== `~${token}`) continue
        ks.del(it.lock)
        const head = ks.zrange(it.queue, 0, 0)[0]
        ks.zadd(it.queue, (head === undefined ? 1 : ks.zscore(it.queue, head)!) - 1, token)
      }
      const missing = items.some((it) => ks.zscore(it.queue, token) === null)
      first = 1
      for (const it of items) {
        if (missing) Lua.leaveLineLocal(ks, it.queue, it.alive, token)
        Lua.joinLineLocal(ks, it.queue, it.alive, token, Number(aliveMs), Number(lineTtl))
        if (ks.zrange(it.queue, 0, 0)[0] !== token) first = 0
      }
    }
    return [0, Math.max(remaining, 0), first]
  },
  decode: (reply): Either.Either<TryReply | AllReply, string> => {
    if (!Array.isArray(reply) || reply.length < 2) return Either.left("expected an array of integers")
    return Either.flatMap(
      Redis.decodeIntegers(reply.length)(reply),
      ([tag, ...rest]): Either.Either<TryReply | AllReply, string> =>
        tag === 1
          ? Either.right({ acquired: true, fence: rest[0]!, fences: rest })
          : tag === 0 && rest.length === 2
          ? Either.right({ acquired: false, remaining: rest[0]!, first: rest[1] === 1 })
          : Either.left(`unknown acquireAll reply ${JSON.stringify(reply)}`)
    )
  }
})

const decodeFlag = (reply: unknown) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)

/** Releases every id the caller holds, each handed to its first living waiter: 1 when it held any. */
export const releaseAll = defineEach({
  name: "lock.releaseAll",
  keys: KEYS,
  args: ["token", "reservation", "sharded"],
  lua: `local released = 0
for _, it in ipairs(items) do
  ${LOCALS}
  if redis.call('GET', lockKey) == token then
    ${HAND_OVER}
    released = 1
  end
end
return released`,
  local: (ks, items, { reservation, token }) => {
    let released = 0
    for (const it of items) {
      if (ks.get(it.lock) !== token) continue
      handOver(ks, it, reservation, it.channel)
      released = 1
    }
    return released
  },
  decode: decodeFlag
})

/**
 * The caller is done with every id, whatever it knows (as the lock's `leave`): it leaves each line, and
 * each id held by or reserved for it passes to the next living waiter. 1 when it passed any on.
 */
export const leaveAll = defineEach({
  name: "lock.leaveAll",
  keys: KEYS,
  args: ["token", "reservation", "sharded"],
  lua: `local passed = 0
for _, it in ipairs(items) do
  ${LOCALS}
  ${Lua.leaveLine("queueKey", "aliveKey", "token")}
  local owner = redis.call('GET', lockKey)
  if owner == token or owner == '~' .. token then
    ${HAND_OVER}
    passed = 1
  end
end
return passed`,
  local: (ks, items, { reservation, token }) => {
    let passed = 0
    for (const it of items) {
      Lua.leaveLineLocal(ks, it.queue, it.alive, token)
      const owner = ks.get(it.lock)
      if (owner !== token && owner !== `~${token}`) continue
      handOver(ks, it, reservation, it.channel)
      passed = 1
    }
    return passed
  },
  decode: decodeFlag
})

/**
 * Extends every id (as the lock's `extend`: never shorter; `"add"` or `"set"`): the least time any id has
 * left now, or 0 when the caller does not hold every one of them (the ids are held, and lost, together).
 */
export const extendAll = defineEach({
  name: "lock.extendAll",
  keys: KEYS,
  args: ["token", "ms", "mode"],
  lua: `for _, it in ipairs(items) do
  if redis.call('GET', it.lockKey) ~= token then
    return 0
  end
end
local least = false
for _, it in ipairs(items) do
  local ttl = redis.call('PTTL', it.lockKey)
  local target = tonumber(ms)
  if mode == 'add' then
    target = target + math.max(ttl, 0)
  end
  if ttl < 0 or target > ttl then
    redis.call('PEXPIRE', it.lockKey, target)
    ttl = target
  end
  if not least or ttl < least then
    least = ttl
  end
end
return least`,
  local: (ks, items, { mode, ms, token }) => {
    if (items.some((it) => ks.get(it.lock) !== token)) return 0
    let least = Infinity
    for (const it of items) {
      let ttl = ks.pttl(it.lock)
      const target = Number(ms) + (mode === "add" ? Math.max(ttl, 0) : 0)
      if (ttl < 0 || target > ttl) {
        ks.pexpire(it.lock, target)
        ttl = target
      }
      least = Math.min(least, ttl)
    }
    return least
  },
  decode: Redis.decodeInteger
})
