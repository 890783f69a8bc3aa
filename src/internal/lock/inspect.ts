/**
 * `Lock.inspect`: a read-only look at a lock for an observer that holds no token (the command line's
 * `status`, dashboards). One script, no write.
 */
import { Effect } from "effect"
import type { Inspection } from "../../Lock.js"
import { InvalidOptions, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { lockKeys } from "../keys.js"
import { checkBase } from "./options.js"
import * as scripts from "./scripts.js"

const STATES = { none: "free", owner: "held", reserved: "reserved" } as const

export const inspect = (
  options: { readonly id: string; readonly prefix?: string | undefined }
): Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> =>
  Effect.suspend((): Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> => {
    const base = checkBase(options)
    if (base instanceof InvalidOptions) return Effect.fail(base)
    const keys = lockKeys(base.prefix, base.id)
    return Effect.flatMap(
      Redis,
      (redis) =>
        Effect.map(scripts.inspect.run(redis, [keys.lock, keys.fence], {}), (reply) => ({
          id: base.id,
          state: STATES[reply.holder],
          remaining: reply.remaining,
          fence: reply.fence
        }))
    )
  })
