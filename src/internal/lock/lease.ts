/**
 * A held lease: its local deadline, its keeper, its loss and its release.
 *
 * - The deadline is in the service timer's monotonic milliseconds, measured from *before* the request
 *   that proved it, minus a drift margin. It only ever moves later, to what a reply proves: the extend
 *   script never shortens the expiry, so the proof of any reply holds whatever order replies arrive in.
 * - Keeping the lease forks nothing until a keep-alive tick is due: one entry on the service's timer
 *   sleeps until the next tick or the deadline, whichever is first. At a tick one fiber sends the
 *   extension; at the deadline, unless a reply moved it, the lease is lost.
 * - Loss completes `lost`, interrupts the guarded work, and never goes unnoticed: a keeper that fails
 *   for any reason loses the lease.
 */
import { Cause, Deferred, Effect, Exit, Fiber, FiberId, type FiberRefs, Runtime, ScheduleDecision, ScheduleIntervals } from "effect"
import type { Context } from "effect"
import { LockLost, type RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import type { Operations } from "./operations.js"
import type { Acquisition } from "./options.js"

/** Milliseconds taken off a lease when computing its local deadline (clock drift, as in Redlock). */
export const driftOf = (lease: number): number => Math.floor(lease * 0.01) + 2

/** A release waits at least this long for an answer (more while the lease still runs). */
const RELEASE_LIMIT = 1000

export interface Hooks {
  readonly extended: () => void
  readonly lost: (reason: LockLost["reason"]) => Effect.Effect<void>
}

export interface Held {
  readonly fence: number
  readonly lost: Effect.Effect<never, LockLost>
  readonly isLost: Effect.Effect<boolean>
  readonly validUntil: Effect.Effect<number>
  readonly extend: (ms: number) => Effect.Effect<boolean, RedisError>
  /** Runs `self` until it ends or the lease is lost (then `LockLost`). */
  readonly guard: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LockLost, R>
  /** Stops keeping the lease and releases it; never fails. */
  readonly release: Effect.Effect<void>
}

/** Where keeper fibers run: the acquiring fiber's services (Clock, logger, tracer). */
export interface Origin {
  readonly context: Context.Context<never>
  readonly fiberRefs: FiberRefs.FiberRefs
}

export const hold = (options: {
  readonly acq: Acquisition
  readonly redis: Redis.Service
  readonly ops: Operations
  readonly token: string
  readonly fence: number
  readonly sentAt: number
  readonly origin: Origin
  readonly hooks: Hooks
}): Held => {
  const { acq, hooks, ops, origin, token } = options
  const timer = options.redis.timer
  const keepAlive = acq.keepAlive
  let deadline = options.sentAt + acq.lease - driftOf(acq.lease)
  let phase: "held" | "lost" | "released" = "held"
  const lost = Deferred.unsafeMake<never, LockLost>(FiberId.none)
  const guards = new Set<() => void>()
  let runtime: Runtime.Runtime<never> | undefined
  const fork = (effect: Effect.Effect<void>) => {
    runtime ??= Runtime.make({ context: origin.context, fiberRefs: origin.fiberRefs, runtimeFlags: Runtime.defaultRuntimeFlags })
    Runtime.runFork(runtime)(effect)
  }

  const lose = (reason: LockLost["reason"]) => {
    if (phase !== "held") return
    phase = "lost"
    cancel()
    const error = new LockLost({ id: acq.id, fence: options.fence, reason })
    Deferred.unsafeDone(lost, Exit.fail(error))
    for (const interrupt of guards) interrupt()
    fork(hooks.lost(reason))
  }

  /** Moves the deadline to what a reply proves: the expiry is at least `ttl` after `sentAt`. */
  const prove = (sentAt: number, ttl: number) => {
    deadline = Math.max(deadline, sentAt + ttl - driftOf(ttl))
  }

  // One timer entry: the next keep-alive tick or the deadline, whichever comes first.
  let nextTick = keepAlive === false ? Infinity : undefined as number | undefined
  let tickState: unknown = keepAlive === false ? undefined : keepAlive.every === undefined ? keepAlive.schedule.initial : undefined
  let extending = false
  let cancel: () => void = () => {}
  const arm = () => {
    cancel()
    if (phase !== "held") return
    cancel = timer.schedule(extending ? deadline : Math.min(nextTick ?? Infinity, deadline), onTimer)
  }
  const onTimer = () => {
    if (phase !== "held") return
    const now = timer.now()
    if (now >= deadline) return lose(keepAlive === false ? "expired" : "unconfirmed")
    if (!extending && nextTick !== undefined && now >= nextTick) {
      extending = true
      fork(keep)
    }
    arm()
  }

  /** The instant of the tick after `now`, stepping the keep-alive schedule. */
  const stepTick = (now: number): Effect.Effect<number> => {
    if (keepAlive === false) return Effect.succeed(Infinity)
    if (keepAlive.every !== undefined) return Effect.succeed(now + keepAlive.every)
    return Effect.map(keepAlive.schedule.step(now, undefined, tickState), ([state, _, decision]) => {
      tickState = state
      return ScheduleDecision.isDone(decision) ? Infinity : Math.max(now, ScheduleIntervals.start(decision.intervals))
    })
  }

  /** One keep-alive step: extend to the full lease, then plan the next tick. Any defect loses the lease. */
  const keep: Effect.Effect<void> = Effect.suspend(() => {
    const sentAt = timer.now()
    return ops.extend(token, acq.lease, "set", deadline).pipe(
      Effect.flatMap((ttl) => {
        if (phase !== "held") return Effect.void
        if (ttl <= 0) return Effect.sync(() => lose("expired"))
        prove(sentAt, ttl)
        hooks.extended()
        return Effect.void
      }),
      Effect.catchTag("RedisError", (error) => Effect.logWarning(`lease extension failed (${error.message})`)),
      Effect.zipRight(Effect.suspend(() => stepTick(timer.now()))),
      Effect.map((tick) => {
        extending = false
        nextTick = tick
        arm()
      }),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => lose("unconfirmed")).pipe(
          Effect.zipRight(Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("lease keeper failed", cause))
        )
      ),
      Effect.annotateLogs("lock.id", acq.id)
    )
  })

  const start = () => {
    if (keepAlive === false) return arm()
    if (keepAlive.every !== undefined) {
      nextTick = timer.now() + keepAlive.every
      return arm()
    }
    // A schedule of the user's: its first step runs in a fiber, like every later one.
    extending = true
    arm()
    fork(
      stepTick(timer.now()).pipe(
        Effect.map((tick) => {
          extending = false
          nextTick = tick
          arm()
        }),
        Effect.catchAllCause((cause) =>
          Effect.sync(() => lose("unconfirmed")).pipe(Effect.zipRight(Effect.logError("lease keeper failed", cause)))
        )
      )
    )
  }
  start()

  const release: Effect.Effect<void> = Effect.suspend(() => {
    if (phase === "released") return Effect.void
    phase = "released"
    cancel()
    const now = timer.now()
    return ops.release(token, now + Math.max(RELEASE_LIMIT, deadline - now)).pipe(
      Effect.flatMap((released) => (released ? Effect.void : Effect.logDebug("lease was no longer held at release"))),
      Effect.catchAll((error) => Effect.logWarning(`could not release the lease; it will expire (${error.message})`)),
      Effect.annotateLogs("lock.id", acq.id)
    )
  })

  const extend = (ms: number) =>
    Effect.suspend(() => {
      if (phase !== "held") return Effect.succeed(false)
      const sentAt = timer.now()
      return Effect.map(ops.extend(token, ms, "add", deadline), (ttl) => {
        if (ttl <= 0) {
          lose("expired")
          return false
        }
        if (phase !== "held") return false
        prove(sentAt, ttl)
        hooks.extended()
        return true
      })
    })

  const guard = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockLost, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(self)), (child) => {
        const interrupt = () => child.unsafeInterruptAsFork(FiberId.none)
        if (phase === "lost") interrupt()
        else guards.add(interrupt)
        return restore(Fiber.await(child)).pipe(
          Effect.onInterrupt(() => Fiber.interrupt(child)),
          Effect.ensuring(Effect.sync(() => guards.delete(interrupt))),
          Effect.flatMap((exit): Effect.Effect<A, E | LockLost> =>
            Exit.isFailure(exit) && phase === "lost" && Cause.isInterruptedOnly(exit.cause)
              ? Deferred.await(lost)
              : exit
          )
        )
      })
    )

  return {
    fence: options.fence,
    lost: Deferred.await(lost),
    isLost: Effect.sync(() => phase === "lost"),
    validUntil: Effect.sync(() => deadline),
    extend,
    guard,
    release
  }
}
