/**
 * Debounce's atomic operations, Lua beside its TypeScript twin, as typed codecs (`core/script.ts`).
 *
 * Keys, all with one hash tag: `seq` (the call counter; never reset while it lives, so a late sleeper
 * can never mistake a newer burst's number for its own), `args` (the last call's arguments as JSON),
 * `first` (server time the burst, or the current maxWait window, began).
 * Every key carries a TTL. Time is the server's (`TIME`). Arguments come back behind `=`, so a client
 * that JSON-decodes replies (`@upstash/redis`) cannot turn them into something else.
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import { NOW } from "../core/lua.js"
import { define } from "../core/script.js"

/** `[1, seq]`: run now (leading edge); `[2, seq]`: run now (maxWait); `[0, seq]`: wait, then settle with `seq`. */
export interface Marked {
  readonly runNow: "leading" | "maxWait" | undefined
  readonly seq: number
}

const decodePair = Redis.decodeIntegers(2)

/**
 * Records a call: `args` (JSON), the state's `ttl`, `mode` (`trailing` | `leading`), `wait`, `maxWait` (0 = none).
 * Trailing: bump the counter, keep the args, start the burst clock if it is not running.
 * Leading: the first call of a burst (no counter alive) runs now; the counter then lives `wait` past
 * the latest call; with maxWait, a call more than maxWait into the burst runs now too.
 */
export const mark = define({
  name: "debounce.mark",
  keys: ["seq", "args", "first"],
  args: ["args", "ttl", "mode", "wait", "maxWait"],
  lua: `${NOW}
local ttl = tonumber(ttl)
local maxWait = tonumber(maxWait)
if mode == 'leading' then
  local fresh = redis.call('EXISTS', seqKey) == 0
  local seq = redis.call('INCR', seqKey)
  redis.call('PEXPIRE', seqKey, wait)
  if fresh then
    redis.call('SET', firstKey, now, 'PX', ttl)
    return {1, seq}
  end
  local first = tonumber(redis.call('GET', firstKey) or now)
  if maxWait > 0 and now - first >= maxWait then
    redis.call('SET', firstKey, now, 'PX', ttl)
    return {2, seq}
  end
  return {0, seq}
end
local seq = redis.call('INCR', seqKey)
redis.call('PEXPIRE', seqKey, ttl)
redis.call('SET', argsKey, args, 'PX', ttl)
if redis.call('EXISTS', firstKey) == 0 then
  redis.call('SET', firstKey, now, 'PX', ttl)
end
return {0, seq}`,
  local: (
    ks,
    { args: argsKey, first: firstKey, seq: seqKey },
    { args, maxWait: maxWaitText, mode, ttl: ttlText, wait }
  ) => {
    const ttl = Number(ttlText)
    const maxWait = Number(maxWaitText)
    if (mode === "leading") {
      const fresh = ks.get(seqKey) === null
      const seq = ks.incr(seqKey)
      ks.pexpire(seqKey, Number(wait))
      if (fresh) {
        ks.set(firstKey, String(ks.now), ttl)
        return [1, seq]
      }
      const first = Number(ks.get(firstKey) ?? ks.now)
      if (maxWait > 0 && ks.now - first >= maxWait) {
        ks.set(firstKey, String(ks.now), ttl)
        return [2, seq]
      }
      return [0, seq]
    }
    const seq = ks.incr(seqKey)
    ks.pexpire(seqKey, ttl)
    ks.set(argsKey, args, ttl)
    if (ks.get(firstKey) === null) ks.set(firstKey, String(ks.now), ttl)
    return [0, seq]
  },
  decode: (reply) =>
    Either.map(decodePair(reply), ([run, seq]): Marked => ({
      runNow: run === 1 ? "leading" as const : run === 2 ? "maxWait" as const : undefined,
      seq: seq!
    }))
})

/** What a trailing caller learns after its wait. */
export type Settled =
  | { readonly _tag: "Run"; readonly edge: "trailing" | "maxWait"; readonly args: ReadonlyArray<unknown> }
  | { readonly _tag: "Superseded" }

/**
 * Decides a trailing call after its wait. ARGV: the call's seq, maxWait (0 = none), state TTL.
 * `[1, '=args']`: it was the last call: run with the last args and end the burst. `[2, '=args']`: not the
 * last, but the burst is maxWait old: run with the latest args and start a new window. `[0, '']`: superseded.
 */
export const settle = define({
  name: "debounce.settle",
  keys: ["seq", "args", "first"],
  args: ["seq", "maxWait", "ttl"],
  lua: `${NOW}
if tonumber(redis.call('GET', seqKey) or '-1') == tonumber(seq) then
  local args = redis.call('GET', argsKey) or '[]'
  redis.call('DEL', argsKey, firstKey)
  return {1, '=' .. args}
end
local maxWait = tonumber(maxWait)
local first = redis.call('GET', firstKey)
if maxWait > 0 and first and now - tonumber(first) >= maxWait then
  redis.call('SET', firstKey, now, 'PX', ttl)
  return {2, '=' .. (redis.call('GET', argsKey) or '[]')}
end
return {0, ''}`,
  local: (ks, { args: argsKey, first: firstKey, seq: seqKey }, { maxWait: maxWaitText, seq, ttl }) => {
    if (Number(ks.get(seqKey) ?? "-1") === Number(seq)) {
      const args = ks.get(argsKey) ?? "[]"
      ks.del(argsKey)
      ks.del(firstKey)
      return [1, `=${args}`]
    }
    const maxWait = Number(maxWaitText)
    const first = ks.get(firstKey)
    if (maxWait > 0 && first !== null && ks.now - Number(first) >= maxWait) {
      ks.set(firstKey, String(ks.now), Number(ttl))
      return [2, `=${ks.get(argsKey) ?? "[]"}`]
    }
    return [0, ""]
  },
  decode: (reply): Either.Either<Settled, string> => {
    if (!Array.isArray(reply) || reply.length !== 2) return Either.left("expected a [state, args] reply")
    return Either.flatMap(Redis.decodeInteger(reply[0]), (state): Either.Either<Settled, string> => {
      if (state === 0) return Either.right({ _tag: "Superseded" })
      const args = reply[1]
      if ((state !== 1 && state !== 2) || typeof args !== "string" || !args.startsWith("=")) {
        return Either.left(`unexpected settle reply ${state}`)
      }
      return Either.map(parseArgs(args.slice(1)), (parsed): Settled => ({
        _tag: "Run",
        edge: state === 1 ? "trailing" : "maxWait",
        args: parsed
      }))
    })
  }
})

/** The stored arguments: a JSON array, as `mark` wrote them; anything else (a foreign write) is refused. */
const parseArgs = (text: string): Either.Either<ReadonlyArray<unknown>, string> => {
  try {
    const parsed: unknown = JSON.parse(text)
    return Array.isArray(parsed) ? Either.right(parsed) : Either.left("the stored arguments are not a JSON array")
  } catch {
    return Either.left("the stored arguments are not JSON")
  }
}
