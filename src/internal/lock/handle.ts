/**
 * The `@upstash/lock`-compatible handle: exactly `attempts` plain SET NX tries `delay` apart, booleans
 * out, and a token that a failed call never forgets. It does not join the line of waiters.
 */
import { Duration, Effect, Option, Schedule } from "effect"
import { InvalidOptions, LockNotAcquired } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import type { AcquireOverrides, Lock, Options, State } from "../../Lock.js"
import { lockKeys } from "../keys.js"
import type { StatusReply } from "../lockScripts.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import * as Operations from "./operations.js"
import { DEFAULT_ATTEMPTS, DEFAULT_DELAY, parseBase, parseLease, parseRetry, retrySchedule } from "./options.js"

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

const parseUuid = (u: unknown) =>
  Effect.filterOrFail(validate.text("uuid", u), (t) => !t.startsWith("~"), () =>
    new InvalidOptions({
      option: "uuid",
      expected: "a token not starting with \"~\" (reserved)",
      received: validate.render(u)
    }))

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
      Effect.gen(function*() {
        const lease = yield* parseLease(overrides?.lease, base.lease)
        const tries = yield* parseRetry(overrides?.retry, retry)
        const uuid = overrides?.uuid === undefined ? randomToken() : yield* parseUuid(overrides.uuid)
        const token = held?.token ?? uuid
        const attempt = Effect.flatMap(ops.tryAcquire(token, lease), (reply) =>
          reply.acquired
            ? Effect.sync(() => void (held = { token, fence: reply.fence }))
            : Effect.fail(new LockNotAcquired({ id: base.id, remaining: reply.remaining, reason: "held" })))
        return yield* retryWhileHeld(attempt, retrySchedule(tries)).pipe(
          Effect.as(true),
          Effect.catchTag("LockNotAcquired", () => Effect.succeed(false))
        )
      }).pipe(Effect.withSpan("Lock.acquire", { attributes: { "lock.id": base.id }, captureStackTrace: false }))

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
        held === undefined ? Effect.succeed(false) : Effect.map(ops.extend(held.token, ms, "add"), (ttl) => ttl > 0))

    const state = Effect.suspend(() => Effect.map(ops.status(held?.token ?? ""), toState))

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
