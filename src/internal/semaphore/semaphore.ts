/**
 * `Semaphore.make`: the options checked once, then every take goes through the lock's own machinery —
 * the line of waiters (`obtain`) and the held lease (`hold`) — over the semaphore's scripts.
 */
import { Context, Effect, Option, Scope } from "effect"
import { InvalidOptions, type LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import type { Options, Permits, Semaphore, TakeOptions } from "../../Semaphore.js"
import { semaphoreKeys } from "../keys.js"
import { type Held, hold } from "../lock/lease.js"
import { type LineOptions, obtain } from "../lock/line.js"
import { type Acquisition, parseAcquisition, parseBase } from "../lock/options.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import * as Operations from "./operations.js"

/** The largest `permits` accepted (the count is kept in Redis sorted-set scores). */
export const MAX_PERMITS = 1_000_000

type Take = LineOptions & Pick<Acquisition, "lease" | "keepAlive">

const noop = () => {}

const ONE_TRY = { retry: { attempts: 1 }, fair: false } as const

const FIELDS = ["timeout", "retry", "fair", "keepAlive"] as const

export const make: (options: Options) => Effect.Effect<Semaphore, InvalidOptions, Redis> = Effect.fnUntraced(
  function*(options: Options) {
    const base = yield* parseBase(options)
    const permits = yield* validate.integer("permits", options?.permits, 1, MAX_PERMITS)
    const redis = yield* Redis
    const keys = semaphoreKeys(base.prefix, base.id)
    const ops = Operations.make(redis, keys, permits)
    const checkN = (n: unknown) => validate.check.integer("permits taken", n, 1, permits)

    /** The last resolution of each options object (and of none), so a loop with the same options checks them once. */
    const resolved = new WeakMap<object, { readonly seen: ReadonlyArray<unknown>; readonly acq: Take }>()
    const NONE = {}
    const resolve = (take: TakeOptions | undefined): Effect.Effect<Take, InvalidOptions> => {
      const key: object = typeof take === "object" && take !== null ? take : NONE
      const known = resolved.get(key)
      if (known !== undefined && FIELDS.every((f, i) => take?.[f] === known.seen[i])) return Effect.succeed(known.acq)
      const seen = FIELDS.map((f) => take?.[f])
      return Effect.map(
        parseAcquisition({
          id: base.id,
          lease: base.lease,
          prefix: base.prefix,
          timeout: take?.timeout,
          retry: take?.retry,
          fair: take?.fair,
          keepAlive: take?.keepAlive
        }),
        (acq) => {
          const resolvedTake: Take = { ...acq, keys }
          resolved.set(key, { seen, acq: resolvedTake })
          return resolvedTake
        }
      )
    }

    const parse = (
      n: unknown,
      take: TakeOptions | undefined
    ): Effect.Effect<{ readonly acq: Take; readonly n: number }, InvalidOptions> =>
      Effect.suspend(() => {
        const count = checkN(n)
        if (count instanceof InvalidOptions) return Effect.fail(count)
        return Effect.map(resolve(take), (acq) => ({ acq, n: count }))
      })

    const takeHeld = (
      n: unknown,
      take: TakeOptions | undefined
    ): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope> =>
      Effect.flatMap(
        parse(n, take),
        ({ acq, n }) =>
          Effect.contextWithEffect((context: Context.Context<Scope.Scope>) => {
            const scope = Context.get(context, Scope.Scope)
            const holding = ops.holding(n)
            const token = randomToken()
            return Effect.uninterruptibleMask((restore) =>
              Effect.flatMap(restore(obtain(acq, redis, holding, token, noop)), (won) =>
                Effect.withFiberRuntime<Held>((fiber) => {
                  const held = hold({
                    acq,
                    redis,
                    ops: holding,
                    token,
                    fence: won.fence,
                    sentAt: won.sentAt,
                    origin: { context: fiber.currentContext, fiberRefs: fiber.getFiberRefs() },
                    hooks: {
                      extended: noop,
                      lost: (reason) =>
                        Effect.logWarning(`permits lost (${reason})`).pipe(Effect.annotateLogs("semaphore.id", base.id))
                    }
                  })
                  return Effect.as(Scope.addFinalizer(scope, held.release), held)
                }))
            )
          })
      ).pipe(Effect.withSpan("Semaphore.take", { attributes: { "semaphore.id": base.id }, captureStackTrace: false }))

    const withPermits = (n: number, take?: TakeOptions) =>
    <A, E, R>(
      self: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R> =>
      Effect.acquireUseRelease(
        Scope.make(),
        (scope) => Effect.flatMap(Scope.extend(takeHeld(n, take), scope), (held) => held.guard(self)),
        (scope, exit) => Scope.close(scope, exit)
      )

    const withPermitsIfAvailable = (n: number) =>
    <A, E, R>(
      self: Effect.Effect<A, E, R>
    ): Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R> =>
      Effect.acquireUseRelease(
        Scope.make(),
        (scope) =>
          Scope.extend(takeHeld(n, ONE_TRY), scope).pipe(
            Effect.matchEffect({
              onFailure: (e) => (e._tag === "LockNotAcquired" ? Effect.succeed(Option.none<A>()) : Effect.fail(e)),
              onSuccess: (held) => Effect.asSome(held.guard(self))
            })
          ),
        (scope, exit) => Scope.close(scope, exit)
      )

    const semaphore: Semaphore = {
      id: base.id,
      permits,
      take: (n, take) => Effect.map(takeHeld(n, take), (held): Permits => held),
      withPermits,
      withPermitsIfAvailable,
      available: ops.available
    }
    return semaphore
  }
)
