/**
 * EVALSHA with an EVAL fallback, shared by the backends that talk to a real Redis. A backend supplies
 * the two calls as promises and how to describe a failure; this module keeps the digests and sends each
 * script as one {@link request} (answered, or failed by the deadline, or abandoned on interruption).
 *
 * EVAL is sent instead when the server answers NOSCRIPT (after a restart or `SCRIPT FLUSH`), and from
 * then on for every script when it answers that this user may not run EVALSHA (an ACL with `-evalsha`
 * and `+eval`): one refused round trip per service, not one per call.
 */
import { Effect, Either } from "effect"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import { type Bounds, redacted, request } from "./request.js"
import { sha1 } from "./sha1.js"

export interface Transport extends Omit<Bounds, "timer"> {
  /** Who answered, for a reply a script cannot decode: `malformed reply from <source>: …`. */
  readonly source: string
  readonly evalsha: (
    sha: string,
    numberOfKeys: number,
    keysAndArgs: ReadonlyArray<string>,
    signal: AbortSignal | undefined
  ) => Promise<unknown>
  readonly eval: (
    lua: string,
    numberOfKeys: number,
    keysAndArgs: ReadonlyArray<string>,
    signal: AbortSignal | undefined
  ) => Promise<unknown>
}

const isNoScript = (detail: string): boolean => detail.includes("NOSCRIPT")

/** `NOPERM … 'evalsha' command` (Redis 6 and 7 word it differently; both name the command). */
const isEvalshaDenied = (detail: string): boolean => detail.includes("NOPERM") && /\bevalsha\b/i.test(detail)

/** Makes a `run` for the Redis service out of a transport. Digests are computed once per script. */
export const makeRun = (transport: Transport, timer: Redis.Timer): Redis.Service["run"] => {
  const bounds: Bounds = {
    timer,
    describe: transport.describe,
    timeout: transport.timeout,
    fault: transport.fault,
    redact: transport.redact,
    abortable: transport.abortable
  }
  const digests = new WeakMap<Redis.Script<unknown>, string>()
  let evalshaDenied = false
  const digest = (script: Redis.Script<unknown>): Promise<string> => {
    const known = digests.get(script)
    return known !== undefined
      ? Promise.resolve(known)
      : Effect.runPromise(sha1(script.lua)).then((sha) => {
        digests.set(script, sha)
        return sha
      })
  }
  const send = (
    script: Redis.Script<unknown>,
    keysAndArgs: ReadonlyArray<string>,
    signal: AbortSignal | undefined
  ): Promise<unknown> => {
    const byEval = () => transport.eval(script.lua, script.numberOfKeys, keysAndArgs, signal)
    if (evalshaDenied) return byEval()
    const known = digests.get(script)
    const first = known !== undefined
      ? transport.evalsha(known, script.numberOfKeys, keysAndArgs, signal)
      : digest(script).then((sha) => transport.evalsha(sha, script.numberOfKeys, keysAndArgs, signal))
    return first.catch((error: unknown) => {
      const detail = transport.describe(error)
      if (isEvalshaDenied(detail)) {
        evalshaDenied = true
        return byEval()
      }
      if (!isNoScript(detail)) throw error
      return byEval()
    })
  }
  return <A>(script: Redis.Script<A>, keys: ReadonlyArray<string>, args: ReadonlyArray<string>, deadline?: number) =>
    request(
      bounds,
      `eval ${script.name}`,
      (signal) => send(script, keys.concat(args), signal),
      deadline,
      (reply): Effect.Effect<A, RedisError> =>
        Either.match(script.decode(reply), {
          onLeft: (why) =>
            Effect.fail(
              new RedisError({
                operation: `eval ${script.name}`,
                detail: redacted(bounds, `malformed reply from ${transport.source}: ${why}`)
              })
            ),
          onRight: Effect.succeed
        })
    )
}
