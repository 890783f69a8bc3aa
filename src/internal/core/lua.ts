/**
 * Lua fragments shared by the scripts of every primitive, each beside its TypeScript twin. A fragment
 * reads the locals that `core/script.ts` binds (`<key>Key` for keys, argument names as they are) and
 * takes the names it works on as parameters.
 */
import type * as Redis from "../../Redis.js"

/** Lua: `now`, Redis's own clock in milliseconds. */
export const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/** Lua: drop the waiters of a line (`queue` by arrival, `alive` by deadline) that stopped looking. */
export const dropGone = (queue: string, alive: string, also: ReadonlyArray<string> = []) =>
  `for _, gone in ipairs(redis.call('ZRANGEBYSCORE', ${alive}, '-inf', '(' .. now)) do
  redis.call('ZREM', ${queue}, gone)
  redis.call('ZREM', ${alive}, gone)${also.map((key) => `\n  redis.call('ZREM', ${key}, gone)`).join("")}
end`

export const dropGoneLocal = (ks: Redis.Keyspace, queue: string, alive: string, also: ReadonlyArray<string> = []) => {
  for (const gone of ks.zbelow(alive, ks.now)) {
    ks.zrem(queue, gone)
    ks.zrem(alive, gone)
    for (const key of also) ks.zrem(key, gone)
  }
}

/** Lua: `token` leaves the line. */
export const leaveLine = (queue: string, alive: string, token: string) =>
  `redis.call('ZREM', ${queue}, ${token})
redis.call('ZREM', ${alive}, ${token})`

export const leaveLineLocal = (ks: Redis.Keyspace, queue: string, alive: string, token: string) => {
  ks.zrem(queue, token)
  ks.zrem(alive, token)
}

/**
 * Lua: `token` joins the line at its end, or keeps its place (joining is idempotent per token: a try
 * sent twice keeps one place), counts as waiting for `aliveMs` more, and the line lives `lineTtl` ms.
 */
export const joinLine = (queue: string, alive: string, token: string, aliveMs: string, lineTtl: string) =>
  `if not redis.call('ZSCORE', ${queue}, ${token}) then
  local last = redis.call('ZRANGE', ${queue}, -1, -1, 'WITHSCORES')[2]
  redis.call('ZADD', ${queue}, (tonumber(last) or 0) + 1, ${token})
end
redis.call('ZADD', ${alive}, now + tonumber(${aliveMs}), ${token})
redis.call('PEXPIRE', ${queue}, ${lineTtl})
redis.call('PEXPIRE', ${alive}, ${lineTtl})`

export const joinLineLocal = (
  ks: Redis.Keyspace,
  queue: string,
  alive: string,
  token: string,
  aliveMs: number,
  lineTtl: number
) => {
  if (ks.zscore(queue, token) === null) {
    const last = ks.zrange(queue, -1, -1)[0]
    ks.zadd(queue, (last === undefined ? 0 : ks.zscore(queue, last)!) + 1, token)
  }
  ks.zadd(alive, ks.now + aliveMs, token)
  ks.pexpire(queue, lineTtl)
  ks.pexpire(alive, lineTtl)
}

/**
 * The Lua local in which a script that publishes keeps the error of a refused publish (`core/script.ts`
 * declares it, and tells the caller).
 */
export const UNHEARD = "unheard"

/**
 * Lua: wake `message` on `channel`, with SPUBLISH where the argument `sharded` is `1` (a cluster). A
 * refused publish (an ACL user without `+publish`) does not undo the script's writes, nor fail it: what
 * the script did stands, its error is kept in {@link UNHEARD}, and the waiter finds out by looking.
 */
export const publish = (channel: string, message: string) =>
  `local published = redis.pcall(sharded == '1' and 'SPUBLISH' or 'PUBLISH', ${channel}, ${message})
if type(published) == 'table' and published.err then
  ${UNHEARD} = published.err
end`

/** How long a fence counter lives after the last acquisition, by default: 7 days. */
export const DEFAULT_FENCE_TTL = 7 * 24 * 60 * 60 * 1000

/**
 * Lua: `fence`, the next fence of the counter `counter`, which then lives `ttl` ms more. A counter that
 * is gone (it expired, or a restart without persistence lost it) starts again at Redis `TIME` in
 * microseconds (+ 1): above every fence it gave before, since it never gave more than one a
 * microsecond (each script takes longer than that). That holds as long as the server's clock does not
 * step back by more than the time since that counter's last acquisition (see docs/fences.md).
 */
export const nextFence = (counter: string, ttl: string) =>
  `local fence
${assignNextFence(counter, ttl, "fence")}`

/** Lua: {@link nextFence} into a variable declared before (`variable = …`, no new local). */
export const assignNextFence = (counter: string, ttl: string, variable: string) =>
  `${variable} = redis.call('INCR', ${counter})
if ${variable} == 1 then
  local t = redis.call('TIME')
  ${variable} = redis.call('INCRBY', ${counter}, t[1] .. string.format('%06d', tonumber(t[2])))
end
redis.call('PEXPIRE', ${counter}, ${ttl})`

/** The twin of {@link nextFence}: the store's clock in microseconds (its milliseconds × 1000). */
export const nextFenceLocal = (ks: Redis.Keyspace, counter: string, ttl: number): number => {
  let fence = ks.incr(counter)
  if (fence === 1) {
    fence = ks.now * 1000 + 1
    ks.set(counter, String(fence))
  }
  ks.pexpire(counter, ttl)
  return fence
}
