/**
 * Debounce's atomic operations, Lua beside its TypeScript twin, as typed codecs (`core/script.ts`).
 *
 * Keys, all with one hash tag: `seq` (the call counter; never reset while it lives, so a late sleeper
 * can never mistake a newer burst's number for its own), `args` (the last call's arguments as JSON,
 * kept until a run with them has finished: while it exists, a run is owed), `first` (server time the
 * burst, or the current maxWait window, began), `owner` (the token of the call that owes the run, with
 * a lease: the burst's last caller from its mark, for its wait and one lease more; then the caller
 * that runs it, renewed while it runs). A run owed whose owner's lease has lapsed (its caller died) is
 * adopted by the next caller that looks: a superseded caller watching the burst, or a later call.
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
 * Records a call: `args` (JSON), the state's `ttl`, `mode` (`trailing` | `leading`), `wait`, `maxWait` (0 = none),
 * the caller's `token` and `claim` (its wait and one lease, ms).
 * Trailing: bump the counter, keep the args, start the burst clock if it is not running; the caller
 * owes the run for `claim` ms.
 * Leading: the first call of a burst (no counter alive) runs now; the counter then lives `wait` past
 * the latest call; with maxWait, a call more than maxWait into the burst runs now too.
 */
export const mark = define({
  name: "debounce.mark",
  keys: ["seq", "args", "first", "owner"],
  args: ["args", "ttl", "mode", "wait", "maxWait", "token", "claim"],
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
redis.call('SET', ownerKey, token, 'PX', claim)
return {0, seq}`,
  local: (
    ks,
    { args: argsKey, first: firstKey, owner: ownerKey, seq: seqKey },
    { args, claim, maxWait: maxWaitText, mode, token, ttl: ttlText, wait }
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
    ks.set(ownerKey, token, Number(claim))
    return [0, seq]
  },
  decode: (reply) =>
    Either.map(decodePair(reply), ([run, seq]): Marked => ({
      runNow: run === 1 ? "leading" as const : run === 2 ? "maxWait" as const : undefined,
      seq: seq!
    }))
})

/**
 * What a trailing caller learns after its wait. `Run`: it runs now with `args` (`seq`: the counter it
 * ran at, for {@link done}); `owed`: it owes the run (it was the last caller, or it adopted a run whose
 * owner died), and must renew its claim while it runs. `Superseded`: another call owes the run;
 * `ownerLeft` is how long that call's claim lasts (ms), or `undefined` when no run is owed any more.
 */
export type Settled =
  | {
    readonly _tag: "Run"
    readonly edge: "trailing" | "maxWait"
    readonly owed: boolean
    readonly args: ReadonlyArray<unknown>
    readonly seq: number
  }
  | { readonly _tag: "Superseded"; readonly ownerLeft: number | undefined }

/** Lua: the caller owes the run now: claims it for `lease`, keeps the state `keep` ms, ends the window. */
const CLAIM = `redis.call('SET', ownerKey, token, 'PX', lease)
  redis.call('PEXPIRE', seqKey, keep)
  redis.call('PEXPIRE', argsKey, keep)
  redis.call('DEL', firstKey)`

const claim = (
  ks: Redis.Keyspace,
  keys: { seq: string; args: string; first: string; owner: string },
  token: string,
  lease: string,
  keep: string
) => {
  ks.set(keys.owner, token, Number(lease))
  ks.pexpire(keys.seq, Number(keep))
  ks.pexpire(keys.args, Number(keep))
  ks.del(keys.first)
}

/**
 * Decides a trailing call after its wait (or a watcher's look: `seq` 0, `maxWait` 0). ARGV: the call's
 * seq, maxWait (0 = none), state TTL, the caller's token, its `lease` and `keep` (how long the state
 * lives while a run is owed).
 * `[1, '=args', seq]`: it was the last call and still owes the run (no other caller adopted or ran
 * it): it claims the run. `[3, '=args', seq]`: a run is owed and its owner's claim has lapsed: it adopts the run.
 * `[2, '=args', seq]`: not the last, but the burst is maxWait old: run with the latest args and start a
 * new window. `[0, '', ms]`: superseded; the owner's claim lasts `ms` more (-2: no run is owed).
 */
export const settle = define({
  name: "debounce.settle",
  keys: ["seq", "args", "first", "owner"],
  args: ["seq", "maxWait", "ttl", "token", "lease", "keep"],
  lua: `${NOW}
local current = tonumber(redis.call('GET', seqKey) or '-1')
local owner = redis.call('GET', ownerKey)
local owed = redis.call('EXISTS', argsKey) == 1
if current == tonumber(seq) and owed and (owner == false or owner == token) then
  local args = redis.call('GET', argsKey)
  ${CLAIM}
  return {1, '=' .. args, current}
end
if owed and owner == false then
  local args = redis.call('GET', argsKey)
  ${CLAIM}
  return {3, '=' .. args, current}
end
local maxWait = tonumber(maxWait)
local first = redis.call('GET', firstKey)
if maxWait > 0 and first and now - tonumber(first) >= maxWait then
  redis.call('SET', firstKey, now, 'PX', ttl)
  return {2, '=' .. (redis.call('GET', argsKey) or '[]'), current}
end
if not owed then
  return {0, '', -2}
end
return {0, '', redis.call('PTTL', ownerKey)}`,
  local: (ks, keys, { keep, lease, maxWait: maxWaitText, seq, token, ttl }) => {
    const current = Number(ks.get(keys.seq) ?? "-1")
    const owner = ks.get(keys.owner)
    const owed = ks.get(keys.args) !== null
    if (current === Number(seq) && owed && (owner === null || owner === token)) {
      const args = ks.get(keys.args)!
      claim(ks, keys, token, lease, keep)
      return [1, `=${args}`, current]
    }
    if (owed && owner === null) {
      const args = ks.get(keys.args)!
      claim(ks, keys, token, lease, keep)
      return [3, `=${args}`, current]
    }
    const maxWait = Number(maxWaitText)
    const first = ks.get(keys.first)
    if (maxWait > 0 && first !== null && ks.now - Number(first) >= maxWait) {
      ks.set(keys.first, String(ks.now), Number(ttl))
      return [2, `=${ks.get(keys.args) ?? "[]"}`, current]
    }
    return [0, "", owed ? ks.pttl(keys.owner) : -2]
  },
  decode: (reply): Either.Either<Settled, string> => {
    if (!Array.isArray(reply) || reply.length !== 3) return Either.left("expected a [state, args, n] reply")
    return Either.flatMap(decodeSettled(reply[0], reply[2]), ([state, n]): Either.Either<Settled, string> => {
      if (state === 0) return Either.right({ _tag: "Superseded", ownerLeft: n > 0 ? n : undefined })
      const args = reply[1]
      if ((state !== 1 && state !== 2 && state !== 3) || typeof args !== "string" || !args.startsWith("=")) {
        return Either.left(`unexpected settle reply ${state}`)
      }
      return Either.map(parseArgs(args.slice(1)), (parsed): Settled => ({
        _tag: "Run",
        edge: state === 2 ? "maxWait" : "trailing",
        owed: state !== 2,
        args: parsed,
        seq: n
      }))
    })
  }
})

const decodeSettled = (state: unknown, n: unknown) =>
  Either.map(decodePair([state, n]), ([state, n]) => [state!, n!] as const)

/**
 * The owner of a run renews its claim (`lease`) and keeps the state (`keep`) while it runs: 1, or 0 when
 * the claim is no longer its own (it was too slow, and another caller adopted the run).
 */
export const renew = define({
  name: "debounce.renew",
  keys: ["seq", "args", "owner"],
  args: ["token", "lease", "keep"],
  lua: `if redis.call('GET', ownerKey) ~= token then
  return 0
end
redis.call('PEXPIRE', ownerKey, lease)
redis.call('PEXPIRE', seqKey, keep)
redis.call('PEXPIRE', argsKey, keep)
return 1`,
  local: (ks, keys, { keep, lease, token }) => {
    if (ks.get(keys.owner) !== token) return 0
    ks.pexpire(keys.owner, Number(lease))
    ks.pexpire(keys.seq, Number(keep))
    ks.pexpire(keys.args, Number(keep))
    return 1
  },
  decode: (reply) => Either.map(Redis.decodeInteger(reply), (n) => n === 1)
})

/**
 * A run owed has finished: the caller gives up its claim, and the run is no longer owed unless a newer
 * call came since it began (`seq` moved on: that call owes its own run).
 */
export const done = define({
  name: "debounce.done",
  keys: ["seq", "args", "owner"],
  args: ["token", "seq"],
  lua: `if redis.call('GET', ownerKey) == token then
  redis.call('DEL', ownerKey)
end
if tonumber(redis.call('GET', seqKey) or '-1') == tonumber(seq) then
  redis.call('DEL', argsKey)
end
return 1`,
  local: (ks, keys, { seq, token }) => {
    if (ks.get(keys.owner) === token) ks.del(keys.owner)
    if (Number(ks.get(keys.seq) ?? "-1") === Number(seq)) ks.del(keys.args)
    return 1
  },
  decode: Redis.decodeInteger
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
