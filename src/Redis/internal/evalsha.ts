/**
 * EVALSHA with an EVAL fallback on NOSCRIPT, shared by the backends that talk to a real Redis. A backend
 * supplies the two calls and how to recognise NOSCRIPT; this module keeps the digests.
 */
import { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import * as Redis from "../../Redis.js"
import { sha1 } from "./sha1.js"

export interface Transport {
  readonly evalsha: (sha: string, numberOfKeys: number, keysAndArgs: ReadonlyArray<string>, name: string) => Effect.Effect<unknown, RedisError>
  readonly eval: (lua: string, numberOfKeys: number, keysAndArgs: ReadonlyArray<string>, name: string) => Effect.Effect<unknown, RedisError>
}

const isNoScript = (error: RedisError): boolean => error.detail.includes("NOSCRIPT")

/** Makes a `run` for the Redis service out of a transport. Digests are computed once per script. */
export const makeRun = (transport: Transport): Redis.Service["run"] => {
  const digests = new WeakMap<Redis.Script<unknown>, string>()
  const digest = (script: Redis.Script<unknown>): Effect.Effect<string> => {
    const known = digests.get(script)
    return known !== undefined
      ? Effect.succeed(known)
      : Effect.tap(sha1(script.lua), (sha) => Effect.sync(() => digests.set(script, sha)))
  }
  return <A>(script: Redis.Script<A>, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => {
    const keysAndArgs = [...keys, ...args]
    return digest(script).pipe(
      Effect.flatMap((sha) => transport.evalsha(sha, script.numberOfKeys, keysAndArgs, script.name)),
      Effect.catchIf(isNoScript, () => transport.eval(script.lua, script.numberOfKeys, keysAndArgs, script.name)),
      Effect.flatMap((reply) => Redis.decodeReply(script, reply))
    )
  }
}
