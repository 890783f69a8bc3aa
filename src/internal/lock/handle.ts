/**
 * The `@upstash/lock`-compatible handle: exactly `attempts` plain SET NX tries `delay` apart (the core's
 * line with `exactTries`, outside the line of waiters), booleans out, and a token that a failed call
 * never forgets. Its span is `Lock.handle.acquire`, the core's shape.
 */
import { type Duration, Effect, Option } from "effect"
import type { AcquireOverrides, Lock, Options, State } from "../../Lock.js"
import { InvalidOptions, LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { type LinePolicy, obtain } from "../core/line.js"
import * as Span from "../core/span.js"
import { lockKeys } from "../keys.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import * as Operations from "./operations.js"
import {
  checkBase,
  checkLease,
  checkRetry,
  DEFAULT_ATTEMPTS,
  DEFAULT_DELAY,
  type Retry,
  retrySchedule
} from "./options.js"
import type { StatusReply } from "./scripts.js"

const checkUuid = (u: unknown): string | InvalidOptions => {
  const uuid = validate.check.text("uuid", u)
  return typeof uuid === "string" && uuid.startsWith("~")
    ? new InvalidOptions({
      option: "uuid",
      expected: "a token not starting with \"~\" (reserved)",
      received: validate.render(u)
    })
    : uuid
}

/** The line's policy for `tries` plain tries of a lease of `lease` ms (made once per distinct pair). */
const policyOf = (id: string, lease: number, tries: Retry): LinePolicy => ({
  id,
  lease,
  timeout: undefined,
  fair: false,
  retry: retrySchedule(tries) as LinePolicy["retry"],
  exactTries: true,
  // A try whose answer never came is not undone: the handle keeps its token (it may hold the lock, and
  // may have held it before this call), and its `release` frees the lock.
  undo: false
})

const noop = () => {}

export const make = (
  options: Options,
  toState: (reply: StatusReply) => State
): Effect.Effect<Lock, InvalidOptions, Redis> =>
  Effect.gen(function*() {
    const base = yield* validate.lift(checkBase(options))
    const retry = yield* validate.lift(checkRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY }))
    const redis = yield* Redis
    const keys = lockKeys(base.prefix, base.id)
    const ops = Operations.make(redis, keys, base.fenceTtl)
    const defaultPolicy = policyOf(base.id, base.lease, retry)
    let held: { readonly token: string; readonly fence: number } | undefined

    const acquire = (overrides?: AcquireOverrides) =>
      Effect.suspend((): Effect.Effect<boolean, RedisError | InvalidOptions> => {
        const lease = checkLease(overrides?.lease, base.lease)
        if (lease instanceof InvalidOptions) return Effect.fail(lease)
        const count = overrides?.retry === undefined ? retry : checkRetry(overrides.retry, retry)
        if (count instanceof InvalidOptions) return Effect.fail(count)
        const uuid = overrides?.uuid === undefined ? randomToken() : checkUuid(overrides.uuid)
        if (uuid instanceof InvalidOptions) return Effect.fail(uuid)
        const token = held?.token ?? uuid
        const policy = lease === base.lease && count === retry ? defaultPolicy : policyOf(base.id, lease, count)
        return Effect.withFiberRuntime((fiber) => {
          const span = Span.start(fiber, "Lock.handle.acquire", "Lock", base.id)
          return obtain(policy, keys.channel, redis, ops, token, noop).pipe(
            Effect.map((won) => {
              held = { token, fence: won.fence }
              span.acquired(won.fence)
              return true
            }),
            // the span sees the miss itself: "held" ends it OK, as every primitive's
            Effect.onExit((exit) => Effect.sync(() => span.end(exit))),
            Effect.catchIf((e): e is LockNotAcquired => e instanceof LockNotAcquired, () => Effect.succeed(false))
          )
        })
      })

    const release = Effect.suspend(() => {
      const current = held
      if (current === undefined) return Effect.succeed(false)
      return Effect.tap(ops.release(current.token), (released) =>
        Effect.sync(() => {
          if (released && held === current) held = undefined
        }))
    })

    const extend = (amount: Duration.DurationInput) =>
      Effect.flatMap(validate.millis("extend", amount, 1), (ms) =>
        held === undefined ? Effect.succeed(false) : Effect.map(ops.extend(held.token, ms, "add"), (ttl) =>
          ttl > 0))

    const state = Effect.suspend(() =>
      Effect.map(ops.status(held?.token ?? ""), toState)
    )

    return {
      id: base.id,
      acquire,
      release,
      extend,
      state,
      status: Effect.map(state, (s) => (s._tag === "HeldByMe" ? "ACQUIRED" as const : "FREE" as const)),
      fence: Effect.sync(() => Option.fromNullable(held?.fence))
    }
  })
