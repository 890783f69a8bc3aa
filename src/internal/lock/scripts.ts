/**
 * The lock's atomic operations, Lua beside its TypeScript twin, as typed codecs (`core/script.ts`).
 *
 * Keys: `lock` (`<prefix>lock:{id}`) holds the owner's token with PX (or `~<token>`: reserved for that
 * waiter, with a short PX); `fence` the fencing counter (it lives `fenceTtl` after the last acquisition, and starts again
 * above every fence it gave when gone: `core/lua.ts` `nextFence`); `queue` the waiters in
 * line (a sorted set by arrival) and `alive` the same waiters by the deadline they must look again by,
 * so that a dead waiter drops out on its own. Replies are integers only, so that no client-side decoding
 * of strings (e.g. `@upstash/redis` turning `"123"` into `123`) can break a comparison: tokens are
 * compared in Lua.
 *
 * Hand-off: a release pops the first waiter, reserves the lock for it (`~<token>`, PX = the reservation
 * time) and publishes its token on the lock's channel; that waiter claims the reservation in one round
 * trip. A waiter that died stops renewing its place and is dropped once its deadline passes; a
 * reservation made for it just before lapses, so any number of dead waiters block the lock for about
 * one reservation. The parity `acquire` ignores the line (it is the `@upstash/lock` SET NX);
 * `acquireFair` keeps it.
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import * as Lua from "../core/lua.js"
import type { TryReply } from "../core/resource.js"
import { define } from "../core/script.js"

/**
 * `[1, fence]` when the caller holds the lock now, `[0, holder's PTTL]` when another owner does (and, in
 * line, `[0, PTTL, 1]` when the caller is first in line: where nothing pushes, it looks again soon).
 */
export type AcquireReply = TryReply

const decodePair = Redis.decodeIntegers(2)
const decodeTriple = Redis.decodeIntegers(3)
const decodeFlag = (reply: unknown) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)

const decodeAcquire = (reply: unknown) =>
  Either.map(
    decodePair(reply),
    ([ok, n]): AcquireReply =>
      ok === 1 ? { acquired: true, fence: n! } : { acquired: false, remaining: Math.max(0, n!) }
  )

/**
 * Scripts made `announced` (an election's) also publish every change of holder on the channel given as
 * the argument `announce`: `+<fence> <lease> <token>` for a win, `-` when the holder is gone. The lock's
 * own scripts are made without: their Lua and arguments are those of a plain lock.
 */
export type Announced = boolean

/** Lua: publish `message` on the `announce` channel, in announced scripts only. */
const announceLua = (announced: Announced, message: string) =>
  announced ? `\n  ${Lua.publish("announce", message)}` : ""

/**
 * Lua: the caller takes the lock for `lease` ms with the next fence (the counter lives `fenceTtl` ms more).
 * The announced fence is formatted with `%.0f`: Lua 5.1 turns a number into a string with 14 significant
 * digits (`1.7962842009219e+15`), which would round a fence seeded from `TIME` (`core/lua.ts`
 * `nextFence`); `%.0f` writes every digit of an integer below 2⁵³.
 */
const WIN = (announced: Announced) =>
  `redis.call('SET', lockKey, token, 'PX', lease)
  ${Lua.nextFence("fenceKey", "fenceTtl")}${
    announceLua(announced, `'+' .. string.format('%.0f', fence) .. ' ' .. lease .. ' ' .. token`)
  }
  return {1, fence}`

const win = (
  ks: Redis.Keyspace,
  keys: { lock: string; fence: string },
  args: { token: string; lease: string; fenceTtl: string; announce?: string | undefined },
  announced: Announced
) => {
  ks.set(keys.lock, args.token, Number(args.lease))
  const next = Lua.nextFenceLocal(ks, keys.fence, Number(args.fenceTtl))
  if (announced) ks.publish(args.announce!, `+${next} ${args.lease} ${args.token}`)
  return [1, next]
}

/**
 * Lua: a free lock with waiters ahead of the caller is reserved for the first of them (taken out of the
 * line, woken on `channel`), and `owner` is that reservation; the caller first in line, or none waiting,
 * leaves `owner` as it was. Used where a try finds the lock free (one id or several).
 */
export const RESERVE_FOR_HEAD = `local head = redis.call('ZRANGE', queueKey, 0, 0)[1]
if head and head ~= token then
  ${Lua.leaveLine("queueKey", "aliveKey", "head")}
  owner = '~' .. head
  redis.call('SET', lockKey, owner, 'PX', reservation)
  ${Lua.publish("channel", "head")}
end`

/** The twin of {@link RESERVE_FOR_HEAD}: the owner after it (the reservation, or `null` still). */
export const reserveForHead = (
  ks: Redis.Keyspace,
  keys: { readonly lock: string; readonly queue: string; readonly alive: string },
  token: string,
  reservation: string,
  channel: string
): string | null => {
  const head = ks.zrange(keys.queue, 0, 0)[0]
  if (head === undefined || head === token) return null
  Lua.leaveLineLocal(ks, keys.queue, keys.alive, head)
  ks.set(keys.lock, `~${head}`, Number(reservation))
  ks.publish(channel, head)
  return `~${head}`
}

/**
 * Lua: hand the lock to the first living waiter of the line, skipping every gone one in this one step,
 * or free it; the waiter is woken on `channel` (and, announced, the change published on `announce`).
 */
const handOverLua = (announced: Announced) =>
  `if redis.call('EXISTS', queueKey) == 0 then
  redis.call('DEL', lockKey)
else
  ${Lua.NOW}
  ${Lua.dropGone("queueKey", "aliveKey")}
  local head = redis.call('ZRANGE', queueKey, 0, 0)[1]
  if head then
    ${Lua.leaveLine("queueKey", "aliveKey", "head")}
    redis.call('SET', lockKey, '~' .. head, 'PX', reservation)
    ${Lua.publish("channel", "head")}
  else
    redis.call('DEL', lockKey)
  end
end${announceLua(announced, "'-'")}`

/** The lock's hand-over (for the scripts of other primitives made of it). */
export const HAND_OVER = handOverLua(false)

export type LineKeys = { readonly lock: string; readonly queue: string; readonly alive: string }

const handOverOf = (announced: Announced) =>
(
  ks: Redis.Keyspace,
  keys: LineKeys,
  args: { reservation: string; channel: string; announce?: string | undefined }
) => {
  if (announced) ks.publish(args.announce!, "-")
  if (ks.pttl(keys.queue) === -2) return void ks.del(keys.lock)
  Lua.dropGoneLocal(ks, keys.queue, keys.alive)
  const head = ks.zrange(keys.queue, 0, 0)[0]
  if (head === undefined) return void ks.del(keys.lock)
  Lua.leaveLineLocal(ks, keys.queue, keys.alive, head)
  ks.set(keys.lock, `~${head}`, Number(args.reservation))
  ks.publish(args.channel, head)
}

const plainHandOver = handOverOf(false)

/** {@link HAND_OVER}'s twin. */
export const handOver = (ks: Redis.Keyspace, keys: LineKeys, reservation: string, channel: string) =>
  plainHandOver(ks, keys, { reservation, channel })

/** The scripts of the line, made plain (the lock's) or announced (an election's): see {@link Announced}. */
export const lineScripts = (announced: Announced) => {
  /** The arguments an announced script takes beyond a plain one's. */
  const announce = announced ? ["announce"] as const : []

  /** The `@upstash/lock` SET NX, outside the line: `[1, fence]` won (or already the caller's), `[0, PTTL]` held. */
  const acquire = define({
    name: announced ? "election.acquire" : "lock.acquire",
    keys: ["lock", "fence"],
    args: ["token", "lease", "fenceTtl", ...(announced ? ["announce", "sharded"] as const : [])],
    lua: `local current = redis.call('GET', lockKey)
if current == false then
  ${WIN(announced)}
end
if current == token then
  redis.call('PEXPIRE', lockKey, lease)
  return {1, tonumber(redis.call('GET', fenceKey) or '0')}
end
return {0, redis.call('PTTL', lockKey)}`,
    local: (ks, keys, args) => {
      const current = ks.get(keys.lock)
      if (current === null) return win(ks, keys, args, announced)
      if (current === args.token) {
        ks.pexpire(keys.lock, Number(args.lease))
        return [1, Number(ks.get(keys.fence) ?? "0")]
      }
      return [0, ks.pttl(keys.lock)]
    },
    decode: decodeAcquire
  })

  const HAND_OVER = handOverLua(announced)
  const handOver = handOverOf(announced)

  /**
   * 1 when the caller held the lock and has handed it on (to the first living waiter, or to nobody),
   * else 0.
   */
  const release = define({
    name: announced ? "election.release" : "lock.release",
    keys: ["lock", "queue", "alive"],
    args: ["token", "reservation", "channel", "sharded", ...announce],
    lua: `if redis.call('GET', lockKey) ~= token then
  return 0
end
${HAND_OVER}
return 1`,
    local: (ks, keys, args) => {
      if (ks.get(keys.lock) !== args.token) return 0
      handOver(ks, keys, args)
      return 1
    },
    decode: decodeFlag
  })

  /**
   * A token is done with the lock, whatever it knows: a waiter that gave up or was interrupted, or a try
   * whose answer never came (it may have joined the line, or even won). The token leaves the line; if the
   * lock is held by it or reserved for it, the lock passes to the next living waiter. 1 when it passed
   * the lock on.
   */
  const leave = define({
    name: announced ? "election.leave" : "lock.leave",
    keys: ["lock", "queue", "alive"],
    args: ["token", "reservation", "channel", "sharded", ...announce],
    lua: `${Lua.leaveLine("queueKey", "aliveKey", "token")}
local owner = redis.call('GET', lockKey)
if owner ~= token and owner ~= '~' .. token then
  return 0
end
${HAND_OVER}
return 1`,
    local: (ks, keys, args) => {
      Lua.leaveLineLocal(ks, keys.queue, keys.alive, args.token)
      const owner = ks.get(keys.lock)
      if (owner !== args.token && owner !== `~${args.token}`) return 0
      handOver(ks, keys, args)
      return 1
    },
    decode: decodeFlag
  })

  /**
   * Acquire in line. `lineTtl`: how long the line lives after this look; `aliveMs`: how long the caller
   * counts as waiting without looking again. `[1, fence]` when the caller holds the lock now; `[0, PTTL,
   * first]` when it waits in line (`first`: 1 when it is first).
   *
   * The caller takes the lock when it is reserved for it, or free with nobody living ahead. When the lock
   * is free but another living waiter is first (the holder's lease ran out, or a reservation lapsed), the
   * lock is reserved for that waiter and it is woken; the caller joins the line. Each look renews the
   * caller's deadline. Waiters past their deadline are dropped first, all in this one step.
   */
  const acquireFair = define({
    name: announced ? "election.acquireFair" : "lock.acquireFair",
    keys: ["lock", "fence", "queue", "alive"],
    args: ["token", "lease", "reservation", "channel", "lineTtl", "aliveMs", "fenceTtl", "sharded", ...announce],
    lua: `local owner = redis.call('GET', lockKey)
if owner == token then
  redis.call('PEXPIRE', lockKey, lease)
  return {1, tonumber(redis.call('GET', fenceKey) or '0')}
end
if owner == false and redis.call('EXISTS', queueKey) == 0 then
  ${WIN(announced)}
end
${Lua.NOW}
${Lua.dropGone("queueKey", "aliveKey")}
if owner == false then
  ${RESERVE_FOR_HEAD}
end
if owner == false or owner == '~' .. token then
  ${Lua.leaveLine("queueKey", "aliveKey", "token")}
  ${WIN(announced)}
end
${Lua.joinLine("queueKey", "aliveKey", "token", "aliveMs", "lineTtl")}
local first = 0
if redis.call('ZRANGE', queueKey, 0, 0)[1] == token then
  first = 1
end
return {0, redis.call('PTTL', lockKey), first}`,
    local: (ks, keys, args) => {
      const { aliveMs, channel, lease, lineTtl, reservation, token } = args
      let owner = ks.get(keys.lock)
      if (owner === token) {
        ks.pexpire(keys.lock, Number(lease))
        return [1, Number(ks.get(keys.fence) ?? "0")]
      }
      if (owner === null && ks.pttl(keys.queue) === -2) return win(ks, keys, args, announced)
      Lua.dropGoneLocal(ks, keys.queue, keys.alive)
      if (owner === null) owner = reserveForHead(ks, keys, token, reservation, channel)
      if (owner === null || owner === `~${token}`) {
        Lua.leaveLineLocal(ks, keys.queue, keys.alive, token)
        return win(ks, keys, args, announced)
      }
      Lua.joinLineLocal(ks, keys.queue, keys.alive, token, Number(aliveMs), Number(lineTtl))
      return [0, ks.pttl(keys.lock), ks.zrange(keys.queue, 0, 0)[0] === token ? 1 : 0]
    },
    decode: (reply) =>
      Array.isArray(reply) && reply.length === 3
        ? Either.map(decodeTriple(reply), ([ok, n, first]): AcquireReply =>
          ok === 1
            ? { acquired: true, fence: n! }
            : { acquired: false, remaining: Math.max(0, n!), first: first === 1 })
        : decodeAcquire(reply)
  })

  return { acquire, release, leave, acquireFair }
}

export const { acquire, acquireFair, leave, release } = lineScripts(false)

/**
 * Owner-checked extension that never shortens a lease. `mode`: `"add"` asks for PTTL + `ms`, `"set"`
 * for `ms`; the expiry only ever moves later, so an extension applied late (a slow request, a resend)
 * can never cut short what a newer reply proved. Replies the PTTL now, or 0 when the caller does not
 * hold the lock.
 */
export const extend = define({
  name: "lock.extend",
  keys: ["lock"],
  args: ["token", "ms", "mode"],
  lua: `if redis.call('GET', lockKey) ~= token then
  return 0
end
local ttl = redis.call('PTTL', lockKey)
local target = tonumber(ms)
if mode == 'add' then
  target = target + math.max(ttl, 0)
end
if ttl < 0 or target > ttl then
  redis.call('PEXPIRE', lockKey, target)
  return target
end
return ttl`,
  local: (ks, keys, { mode, ms, token }) => {
    if (ks.get(keys.lock) !== token) return 0
    const ttl = ks.pttl(keys.lock)
    const target = Number(ms) + (mode === "add" ? Math.max(ttl, 0) : 0)
    if (ttl >= 0 && target <= ttl) return ttl
    ks.pexpire(keys.lock, target)
    return target
  },
  decode: Redis.decodeInteger
})

/** `[0, 0]` free, `[1, PTTL]` held by the caller's token, `[2, PTTL]` held by another owner. */
export type StatusReply =
  | { readonly _tag: "Free" }
  | { readonly _tag: "HeldByMe"; readonly remaining: number }
  | { readonly _tag: "HeldByOther"; readonly remaining: number }

export const status = define({
  name: "lock.status",
  keys: ["lock"],
  args: ["token"],
  lua: `local current = redis.call('GET', lockKey)
if current == false then
  return {0, 0}
end
local ttl = redis.call('PTTL', lockKey)
if current == token then
  return {1, ttl}
end
return {2, ttl}`,
  local: (ks, keys, { token }) => {
    const current = ks.get(keys.lock)
    if (current === null) return [0, 0]
    return [current === token ? 1 : 2, ks.pttl(keys.lock)]
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
 * A read-only look at a lock for an observer holding no token: `[0 free | 1 held | 2 reserved for a
 * waiter, PTTL (0 when free), fence counter]`.
 */
export const inspect = define({
  name: "lock.inspect",
  keys: ["lock", "fence"],
  args: [],
  lua: `local current = redis.call('GET', lockKey)
local fence = tonumber(redis.call('GET', fenceKey) or '0')
if current == false then
  return {0, 0, fence}
end
local state = 1
if string.sub(current, 1, 1) == '~' then
  state = 2
end
return {state, redis.call('PTTL', lockKey), fence}`,
  local: (ks, keys) => {
    const counter = Number(ks.get(keys.fence) ?? "0")
    const current = ks.get(keys.lock)
    if (current === null) return [0, 0, counter]
    return [current.startsWith("~") ? 2 : 1, ks.pttl(keys.lock), counter]
  },
  decode: (reply) =>
    Either.flatMap(decodeTriple(reply), ([state, ttl, fence]): Either.Either<InspectReply, string> => {
      const holder = state === 0 ? "none" : state === 1 ? "owner" : state === 2 ? "reserved" : undefined
      return holder === undefined
        ? Either.left(`unknown lock state ${state}`)
        : Either.right({ holder, remaining: Math.max(0, ttl!), fence: fence! })
    })
})

/** Lua: the `"set"` {@link extend} of one lock, `key` held by `token`, to `ms`; its reply in `out[i]`. */
const EXTEND_ONE = `if redis.call('GET', key) ~= token then
    out[i] = 0
  else
    local ttl = redis.call('PTTL', key)
    if ttl < 0 or ms > ttl then
      redis.call('PEXPIRE', key, ms)
      out[i] = ms
    else
      out[i] = ttl
    end
  end`

/**
 * The keep-alive of many locks in one script: `KEYS[i]` held by `ARGV[2i-1]` extended to `ARGV[2i]`
 * ms, each exactly as {@link extend} in `"set"` mode. Replies each lock's PTTL now, or 0 for a lock its
 * token no longer holds. Variadic, so not a named codec: its keys and arguments are pairs.
 */
export const extendMany = Redis.script<ReadonlyArray<number>>({
  name: "lock.extendMany",
  numberOfKeys: 0, // replaced per call: one key per lock (see `extendBatch`)
  lua: `local out = {}
for i = 1, #KEYS do
  local key, token, ms = KEYS[i], ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  ${EXTEND_ONE}
end
return out`,
  local: (ks, keys, args) =>
    keys.map((key, i) => {
      const token = args[2 * i]
      const ms = Number(args[2 * i + 1])
      if (ks.get(key) !== token) return 0
      const ttl = ks.pttl(key)
      if (ttl >= 0 && ms <= ttl) return ttl
      ks.pexpire(key, ms)
      return ms
    }),
  decode: (reply) => {
    if (!Array.isArray(reply)) return Either.left("expected an array of integers")
    const out: Array<number> = []
    for (const item of reply) {
      const n = Redis.decodeInteger(item)
      if (Either.isLeft(n)) return Either.left(n.left)
      out.push(n.right)
    }
    return Either.right(out)
  }
})
