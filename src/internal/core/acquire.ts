/**
 * The one acquisition: every primitive (Lock, the parity handle's scoped uses, Semaphore) is obtained
 * in line, confirmed, held, registered with its scope, traced and measured here.
 *
 * Between winning and registering the release nothing can interrupt, so a won resource is never left
 * held by a caller who was told it failed.
 */
import { type Cause, Context, Effect, Exit, type Option, Scope } from "effect"
import { InvalidOptions, type LockLost, LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { randomToken } from "../token.js"
import { type Held, hold, type KeepAlive } from "./lease.js"
import { type LinePolicy, obtain } from "./line.js"
import { labels, metrics } from "./metrics.js"
import type { Resource } from "./resource.js"
import * as Span from "./span.js"

/** How an acquisition waits and keeps what it won. */
export interface Policy extends LinePolicy {
  readonly keepAlive: KeepAlive
  /** Whether metrics carry the id as a label. */
  readonly labelMetrics: boolean
}

/** What one acquisition is: a resource, and how to wait for and keep it. */
export interface Spec<E = never> {
  readonly resource: Resource<E>
  readonly policy: Policy
}

/**
 * Acquires into `scope` (taken as an argument: providing it would cost a copy of the fiber's refs). The
 * span and the metrics' labels come from one look at the fiber.
 */
export const acquireIn = <E>(
  { policy, resource }: Spec<E>,
  scope: Scope.Scope,
  redis: Redis["Type"]
): Effect.Effect<Held, LockNotAcquired | RedisError | E> =>
  Effect.withFiberRuntime((fiber) => {
    const span = Span.start(fiber, resource.span, resource.primitive, resource.id)
    const measure = metrics[resource.primitive]
    const tags = labels(resource.id, policy.labelMetrics)
    const token = resource.token === undefined ? randomToken() : resource.token()
    const startedAt = redis.timer.now()
    const counted = () => measure.attempts.unsafeUpdate(1, tags)
    const failed = <X>(cause: Cause.Cause<X>): Effect.Effect<never, X> => {
      span.end(Exit.failCause(cause))
      return Effect.failCause(cause)
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.matchCauseEffect(restore(obtain(policy, resource.channel, redis, resource.ops, token, counted)), {
        onFailure: failed,
        onSuccess: (won) => {
          const register = () => {
            const held = hold({
              resource,
              lease: policy.lease,
              keepAlive: policy.keepAlive,
              redis,
              token,
              fence: won.fence,
              sentAt: won.sentAt,
              hooks: {
                extended: () => measure.extensions.unsafeUpdate(1, tags),
                lost: (reason) =>
                  Effect.sync(() => measure.lost.unsafeUpdate(1, tags)).pipe(
                    Effect.zipRight(Effect.logWarning(`lease lost (${reason})`)),
                    Effect.annotateLogs({ "lock.id": resource.id, "lock.primitive": resource.primitive })
                  )
              }
            })
            measure.acquired.unsafeUpdate(1, tags)
            measure.wait.unsafeUpdate((redis.timer.now() - startedAt) / 1000, tags)
            span.acquired(won.fence)
            return Effect.as(
              Scope.addFinalizerExit(scope, (exit) => Effect.zipRight(held.release, Effect.sync(() => span.end(exit)))),
              held
            )
          }
          if (resource.confirm === undefined) return register()
          const deadline = policy.timeout === undefined ? undefined : startedAt + policy.timeout
          return Effect.matchCauseEffect(restore(resource.confirm(token, deadline)), {
            onFailure: failed,
            onSuccess: register
          })
        }
      })
    )
  })

/**
 * Makes an acquisition's spec for a Redis service, synchronously: its options checked (once per options
 * object, by the primitive).
 */
export type MakeSpec<E> = (redis: Redis["Type"]) => Spec<E> | InvalidOptions

/** Acquires into the current scope. */
export const acquire = <E>(
  spec: MakeSpec<E>
): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions | E, Scope.Scope | Redis> =>
  Effect.contextWithEffect((
    context: Context.Context<Redis | Scope.Scope>
  ): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions | E> => {
    const redis = Context.get(context, Redis)
    const made = spec(redis)
    return made instanceof InvalidOptions
      ? Effect.fail(made)
      : acquireIn(made, Context.get(context, Scope.Scope), redis)
  })

/** Acquires into the current scope, on a given Redis service (a handle made with one). */
export const acquireOn = <E>(
  redis: Redis["Type"],
  spec: MakeSpec<E>
): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions | E, Scope.Scope> =>
  Effect.contextWithEffect((
    context: Context.Context<Scope.Scope>
  ): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions | E> => {
    const made = spec(redis)
    return made instanceof InvalidOptions
      ? Effect.fail(made)
      : acquireIn(made, Context.get(context, Scope.Scope), redis)
  })

/** Runs `use` with a scope of its own, closed with `use`'s exit. */
const inOwnScope = <A, E, R>(use: (scope: Scope.Scope) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(Scope.make(), use, (scope, exit) => Scope.close(scope, exit))

/**
 * Holds the resource while `f(held)` runs: the lease lives in a scope of its own (the body's resources
 * stay in the caller's), and the body is interrupted with `LockLost` if the lease is lost.
 */
export const withHeldOn = <A, E, R, E1>(
  redis: Redis["Type"],
  spec: MakeSpec<E1>,
  f: (held: Held) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | E1 | LockNotAcquired | LockLost | RedisError | InvalidOptions, R> =>
  inOwnScope((scope): Effect.Effect<A, E | E1 | LockNotAcquired | LockLost | RedisError | InvalidOptions, R> => {
    const made = spec(redis)
    return made instanceof InvalidOptions
      ? Effect.fail(made)
      : Effect.flatMap(acquireIn(made, scope, redis), (held) => held.guard(f(held)))
  })

/** {@link withHeldOn} on the Redis service of the context. */
export const withHeld = <A, E, R, E1>(
  spec: MakeSpec<E1>,
  f: (held: Held) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | E1 | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Effect.flatMap(Redis, (redis) => withHeldOn(redis, spec, f))

/**
 * Like {@link withHeldOn}, for a spec of one plain try: `Option.none` when another owner holds it (a
 * `LockNotAcquired` of the body's own is the body's failure).
 */
export const withHeldIfAvailableOn = <A, E, R, E1>(
  redis: Redis["Type"],
  spec: MakeSpec<E1>,
  self: Effect.Effect<A, E, R>
): Effect.Effect<Option.Option<A>, E | E1 | LockLost | RedisError | InvalidOptions, R> =>
  inOwnScope((scope): Effect.Effect<Option.Option<A>, E | E1 | LockLost | RedisError | InvalidOptions, R> => {
    const made = spec(redis)
    if (made instanceof InvalidOptions) return Effect.fail(made)
    return acquireIn(made, scope, redis).pipe(
      Effect.matchEffect({
        onFailure: (e) => (e instanceof LockNotAcquired ? Effect.succeedNone : Effect.fail(e)),
        onSuccess: (held) => Effect.asSome(held.guard(self))
      })
    )
  })

/** {@link withHeldIfAvailableOn} on the Redis service of the context. */
export const withHeldIfAvailable = <A, E, R, E1>(
  spec: MakeSpec<E1>,
  self: Effect.Effect<A, E, R>
): Effect.Effect<Option.Option<A>, E | E1 | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Effect.flatMap(Redis, (redis) => withHeldIfAvailableOn(redis, spec, self))
