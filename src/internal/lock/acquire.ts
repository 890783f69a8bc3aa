/**
 * `Lock.acquire`: options checked, the lock obtained in line, the lease held until the scope closes.
 * Between winning and registering the release nothing can interrupt, so a won lock is never left
 * held by a caller who was told it failed.
 */
import { Context, Effect, Exit, type Option, Scope } from "effect"
import { InvalidOptions, type LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { randomToken } from "../token.js"
import { type Held, hold } from "./lease.js"
import { obtain } from "./line.js"
import { labels, metrics } from "./metrics.js"
import * as Operations from "./operations.js"
import { type AcquireInput, type Acquisition, resolve } from "./options.js"
import * as Replicas from "./replicas.js"
import * as Span from "./span.js"

export type Acquired = Held

export const acquire = (
  options: AcquireInput,
  internal: { readonly fenceTtl?: number } = {}
): Effect.Effect<Acquired, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Effect.contextWithEffect((context: Context.Context<Redis | Scope.Scope>) =>
    acquireIn(options, internal, Context.get(context, Scope.Scope), Context.get(context, Redis))
  )

/** The operations of one resolved acquisition on one client, made once. */
const opsOf = new WeakMap<Acquisition, { readonly redis: Redis["Type"]; readonly ops: Operations.Operations }>()
const operationsFor = (acq: Acquisition, redis: Redis["Type"]): Operations.Operations => {
  const known = opsOf.get(acq)
  if (known !== undefined && known.redis === redis) return known.ops
  const ops = Operations.make(redis, acq.keys, acq.fenceTtl)
  opsOf.set(acq, { redis, ops })
  return ops
}

/**
 * Acquires into `scope` (taken as an argument: providing it would cost a copy of the fiber's refs). The
 * options, the span and the keeper's origin come from one look at the fiber.
 */
const acquireIn = (
  options: AcquireInput,
  internal: { readonly fenceTtl?: number },
  scope: Scope.Scope,
  redis: Redis["Type"]
): Effect.Effect<Acquired, LockNotAcquired | RedisError | InvalidOptions> =>
  Effect.withFiberRuntime((fiber) => {
    const acq = resolve(options, internal.fenceTtl ?? 0)
    if (acq instanceof InvalidOptions) return Effect.fail(acq)
    const unsupported = Replicas.unsupported(acq, redis)
    if (unsupported !== undefined) return Effect.fail(unsupported)
    const span = Span.start(fiber, acq.id)
    const ops = operationsFor(acq, redis)
    const token = randomToken()
    const tags = labels(acq.id, acq.labelMetrics)
    const startedAt = redis.timer.now()
    const counted = () => metrics.attempts.unsafeUpdate(1, tags)
    return Effect.uninterruptibleMask((restore) =>
      Effect.matchCauseEffect(restore(obtain(acq, redis, ops, token, counted)), {
        onFailure: (cause) => {
          span.end(Exit.failCause(cause))
          return Effect.failCause(cause)
        },
        onSuccess: (won) => {
          const register = () => {
            const held = hold({
              acq,
              redis,
              ops,
              token,
              fence: won.fence,
              sentAt: won.sentAt,
              origin: { context: fiber.currentContext, fiberRefs: fiber.getFiberRefs() },
              hooks: {
                extended: () => metrics.extensions.unsafeUpdate(1, tags),
                lost: (reason) =>
                  Effect.sync(() => metrics.lost.unsafeUpdate(1, tags)).pipe(
                    Effect.zipRight(Effect.logWarning(`lease lost (${reason})`)),
                    Effect.annotateLogs("lock.id", acq.id)
                  )
              }
            })
            metrics.acquired.unsafeUpdate(1, tags)
            metrics.waitMillis.unsafeUpdate(redis.timer.now() - startedAt, tags)
            span.acquired(won.fence)
            return Effect.as(
              Scope.addFinalizerExit(scope, (exit) => Effect.zipRight(held.release, Effect.sync(() => span.end(exit)))),
              held
            )
          }
          if (acq.replicas === 0) return register()
          const deadline = acq.timeout === undefined ? undefined : startedAt + acq.timeout
          return Effect.matchCauseEffect(restore(Replicas.confirm(acq, redis, ops, token, deadline)), {
            onFailure: (cause) => {
              span.end(Exit.failCause(cause))
              return Effect.failCause(cause)
            },
            onSuccess: register
          })
        }
      })
    )
  })

/**
 * Holds the lock while `f(lease)` runs: the lease lives in a scope of its own (the body's resources stay
 * in the caller's), and the body is interrupted with `LockLost` if the lease is lost.
 */
export const withHeld = <A, E, R>(
  options: AcquireInput,
  internal: { readonly fenceTtl?: number },
  f: (lease: Acquired) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Effect.flatMap(Redis, (redis) =>
    Effect.acquireUseRelease(
      Scope.make(),
      (scope) => Effect.flatMap(acquireIn(options, internal, scope, redis), (lease) => lease.guard(f(lease))),
      (scope, exit) => Scope.close(scope, exit)
    ))

const ONE_TRY = { attempts: 1 } as const

/** Like {@link withHeld} with one plain try: `Option.none` when another owner holds the lock. */
export const withHeldIfAvailable = <A, E, R>(
  options: AcquireInput,
  self: Effect.Effect<A, E, R>
): Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R | Redis> => {
  const once = { ...options, retry: ONE_TRY, fair: false }
  return Effect.flatMap(Redis, (redis) =>
    Effect.acquireUseRelease(
      Scope.make(),
      (scope) =>
        acquireIn(once, {}, scope, redis).pipe(
          Effect.matchEffect({
            onFailure: (e) => (e._tag === "LockNotAcquired" ? Effect.succeedNone : Effect.fail(e)),
            onSuccess: (lease) => Effect.asSome(lease.guard(self))
          })
        ),
      (scope, exit) => Scope.close(scope, exit)
    ))
}
