/**
 * The `@upstash/lock`-compatible handle: exactly `attempts` plain SET NX tries `delay` apart, booleans
 * out, and a token that a failed call never forgets. It does not join the line of waiters.
 */
import type { Duration } from "effect"
import { Effect, Option, Schedule } from "effect"
import type { AcquireOverrides, Lock, Options, State } from "../../Lock.js"
import { InvalidOptions, LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { lockKeys } from "../keys.js"
import type { StatusReply } from "../lockScripts.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import * as Operations from "./operations.js"
import { checkRetry, DEFAULT_ATTEMPTS, DEFAULT_DELAY, parseBase, parseRetry, retrySchedule } from "./options.js"
import * as Span from "./span.js"

/**
 * Tries `attempt` again on the schedule while it fails with `LockNotAcquired`; any other failure, such as
 * a Redis fault, stops at once.
 */
const retryWhileHeld = <A, E>(
  attempt: Effect.Effect<A, E | LockNotAcquired>,
  schedule: Schedule.Schedule<unknown, unknown>
): Effect.Effect<A, E | LockNotAcquired> =>
  Effect.flatMap(Schedule.driver(schedule), (driver) => {
    const loop: Effect.Effect<A, E | LockNotAcquired> = Effect.catchIf(
      attempt,
      (e): e is LockNotAcquired => e instanceof LockNotAcquired,
      (e) => Effect.matchEffect(driver.next(e), { onFailure: () => Effect.fail(e), onSuccess: () => loop })
    )
    return loop
  })

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

export const make = (
  options: Options,
  toState: (reply: StatusReply) => State
): Effect.Effect<Lock, InvalidOptions, Redis> =>
  Effect.gen(function*() {
    const base = yield* parseBase(options)
    const retry = yield* parseRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY })
    const redis = yield* Redis
    const ops = Operations.make(redis, lockKeys(base.prefix, base.id))
    let held: { readonly token: string; readonly fence: number } | undefined

    const acquire = (overrides?: AcquireOverrides) =>
      Effect.suspend((): Effect.Effect<boolean, RedisError | InvalidOptions> => {
        const lease = overrides?.lease === undefined ? base.lease : validate.check.millis("lease", overrides.lease, 1)
        if (lease instanceof InvalidOptions) return Effect.fail(lease)
        const tries = overrides?.retry === undefined ? retry : checkRetry(overrides.retry, retry)
        if (tries instanceof InvalidOptions) return Effect.fail(tries)
        const uuid = overrides?.uuid === undefined ? randomToken() : checkUuid(overrides.uuid)
        if (uuid instanceof InvalidOptions) return Effect.fail(uuid)
        const token = held?.token ?? uuid
        const attempt = Effect.flatMap(ops.tryAcquire(token, lease), (reply) =>
          reply.acquired
            ? Effect.sync(() => void (held = { token, fence: reply.fence }))
            : Effect.fail(new LockNotAcquired({ id: base.id, remaining: reply.remaining, reason: "held" })))
        // One try first: the schedule (and its driver) is made only when the lock is held.
        const tried = Effect.catchIf(
          attempt,
          (e): e is LockNotAcquired => e instanceof LockNotAcquired && tries.attempts > 1,
          () =>
            Effect.zipRight(
              Effect.sleep(tries.delay),
              retryWhileHeld(attempt, retrySchedule({ ...tries, attempts: tries.attempts - 1 }))
            )
        )
        return Effect.withFiberRuntime((fiber) => {
          const span = Span.start(fiber, base.id)
          return tried.pipe(
            Effect.as(true),
            Effect.catchTag("LockNotAcquired", () => Effect.succeed(false)),
            Effect.onExit((exit) => Effect.sync(() => span.end(exit)))
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
