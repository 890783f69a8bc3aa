/**
 * EVALSHA with an EVAL fallback on NOSCRIPT, shared by the backends that talk to a real Redis. A backend
 * supplies the two calls as promises and how to describe a failure; this module keeps the digests and
 * turns a call into one `Effect.async`: answered by the reply, or failed by the deadline on the
 * service's timer (no fiber, no race), or abandoned on interruption.
 */
import { Duration, Effect } from "effect"
import { RedisError } from "../../LockError.js"
import * as Redis from "../../Redis.js"
import { sha1 } from "./sha1.js"

export interface Transport {
  readonly evalsha: (sha: string, numberOfKeys: number, keysAndArgs: ReadonlyArray<string>) => Promise<unknown>
  readonly eval: (lua: string, numberOfKeys: number, keysAndArgs: ReadonlyArray<string>) => Promise<unknown>
  /** A failure's text for `RedisError.detail` (never a secret). */
  readonly describe: (error: unknown) => string
  /** The longest any call may wait for an answer, in milliseconds (a backend's own timeout). */
  readonly timeout?: number | undefined
}

const isNoScript = (detail: string): boolean => detail.includes("NOSCRIPT")

/** Makes a `run` for the Redis service out of a transport. Digests are computed once per script. */
export const makeRun = (transport: Transport, timer: Redis.Timer): Redis.Service["run"] => {
  const digests = new WeakMap<Redis.Script<unknown>, string>()
  const digest = (script: Redis.Script<unknown>): Promise<string> => {
    const known = digests.get(script)
    return known !== undefined
      ? Promise.resolve(known)
      : Effect.runPromise(sha1(script.lua)).then((sha) => {
        digests.set(script, sha)
        return sha
      })
  }
  const send = (script: Redis.Script<unknown>, keysAndArgs: ReadonlyArray<string>): Promise<unknown> => {
    const known = digests.get(script)
    const first = known !== undefined
      ? transport.evalsha(known, script.numberOfKeys, keysAndArgs)
      : digest(script).then((sha) => transport.evalsha(sha, script.numberOfKeys, keysAndArgs))
    return first.catch((error: unknown) => {
      if (!isNoScript(transport.describe(error))) throw error
      return transport.eval(script.lua, script.numberOfKeys, keysAndArgs)
    })
  }
  return <A>(script: Redis.Script<A>, keys: ReadonlyArray<string>, args: ReadonlyArray<string>, deadline?: number) =>
    Effect.async<A, RedisError>((resume) => {
      const operation = `eval ${script.name}`
      let settled = false
      let cancel: (() => void) | undefined
      const settle = (effect: Effect.Effect<A, RedisError>) => {
        if (settled) return
        settled = true
        cancel?.()
        resume(effect)
      }
      const own = transport.timeout === undefined ? Infinity : timer.now() + transport.timeout
      const limit = Math.min(deadline ?? Infinity, own)
      if (limit !== Infinity) {
        const detail = limit === own
          ? `no answer within ${Duration.format(Duration.millis(transport.timeout!))}`
          : "no answer before the deadline"
        cancel = timer.schedule(limit, () => settle(Effect.fail(new RedisError({ operation, detail }))))
      }
      send(script as Redis.Script<unknown>, [...keys, ...args]).then(
        (reply) => settle(Redis.decodeReply(script, reply)),
        (error: unknown) => settle(Effect.fail(new RedisError({ operation, detail: transport.describe(error) })))
      )
      return Effect.sync(() => {
        settled = true
        cancel?.()
      })
    })
}
