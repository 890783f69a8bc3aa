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
import {
  Cause,
  type Context,
  Deferred,
  type Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  type FiberRefs,
  Runtime,
  ScheduleDecision,
  ScheduleIntervals
} from "effect"
import type { Lease as PublicLease } from "../../Lock.js"
import { type InvalidOptions, LockLost, type RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import * as validate from "../validate.js"
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

/** A held lease: the public `Lease`, plus what `withLock` and the scope need of it. */
export interface Held extends PublicLease {
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

export interface HoldOptions {
  readonly acq: Pick<Acquisition, "id" | "lease" | "keepAlive">
  readonly redis: Redis.Service
  /** The lock's operations, or another resource's with the same `extend`/`release` contract. */
  readonly ops: Pick<Operations, "extend" | "release">
  readonly token: string
  readonly fence: number
  readonly sentAt: number
  readonly origin: Origin
  readonly hooks: Hooks
}

/**
 * One held lease. A class, so that an uncontended acquisition allocates one object and few closures:
 * what only keep-alive or loss needs is made when it is needed.
 */
class Lease implements Held {
  readonly id: string
  readonly fence: number
  private deadline: number
  private phase: "held" | "lost" | "released" = "held"
  /** Made when someone waits for the loss, or at the loss (most leases never need one). */
  private lostSignal: Deferred.Deferred<never, LockLost> | undefined
  private lostError: LockLost | undefined
  private guards: Set<() => void> | undefined
  private runtime: Runtime.Runtime<never> | undefined
  /** The next keep-alive tick (timer ms); `undefined` while it is being worked out. */
  private nextTick: number | undefined
  private tickState: unknown
  /** An extension is in flight (only the deadline is watched meanwhile). */
  private extending = false
  private cancel: (() => void) | undefined
  private readonly timer: Redis.Timer

  constructor(private readonly options: HoldOptions) {
    const { acq } = options
    this.id = acq.id
    this.fence = options.fence
    this.timer = options.redis.timer
    this.deadline = options.sentAt + acq.lease - driftOf(acq.lease)
    const keepAlive = acq.keepAlive
    if (keepAlive === false) {
      this.nextTick = Infinity
    } else if (keepAlive.every !== undefined) {
      this.nextTick = this.timer.now() + keepAlive.every
    } else {
      // A schedule of the user's: its first step runs in a fiber, like every later one.
      this.tickState = keepAlive.schedule.initial
      this.extending = true
      this.fork(this.planNext())
    }
    this.arm()
  }

  get lost(): Effect.Effect<never, LockLost> {
    return Effect.suspend(() => Deferred.await(this.signal()))
  }

  private signal(): Deferred.Deferred<never, LockLost> {
    if (this.lostSignal === undefined) {
      this.lostSignal = Deferred.unsafeMake<never, LockLost>(FiberId.none)
      if (this.lostError !== undefined) Deferred.unsafeDone(this.lostSignal, Exit.fail(this.lostError))
    }
    return this.lostSignal
  }
  get isLost(): Effect.Effect<boolean> {
    return Effect.sync(() => this.phase === "lost")
  }
  get validUntil(): Effect.Effect<number> {
    return Effect.sync(() => this.deadline)
  }

  private fork(effect: Effect.Effect<void>): void {
    const { origin } = this.options
    this.runtime ??= Runtime.make({
      context: origin.context,
      fiberRefs: origin.fiberRefs,
      runtimeFlags: Runtime.defaultRuntimeFlags
    })
    Runtime.runFork(this.runtime)(effect)
  }

  private lose(reason: LockLost["reason"]): void {
    if (this.phase !== "held") return
    this.phase = "lost"
    this.cancel?.()
    this.lostError = new LockLost({ id: this.id, fence: this.fence, reason })
    if (this.lostSignal !== undefined) Deferred.unsafeDone(this.lostSignal, Exit.fail(this.lostError))
    if (this.guards !== undefined) { for (const interrupt of this.guards) interrupt() }
    this.fork(this.options.hooks.lost(reason))
  }

  /** Moves the deadline to what a reply proves: the expiry is at least `ttl` after `sentAt`. */
  private prove(sentAt: number, ttl: number): void {
    this.deadline = Math.max(this.deadline, sentAt + ttl - driftOf(ttl))
    this.options.hooks.extended()
  }

  /** One timer entry: the next keep-alive tick or the deadline, whichever comes first. */
  private arm(): void {
    this.cancel?.()
    if (this.phase !== "held") return
    const at = this.extending ? this.deadline : Math.min(this.nextTick ?? Infinity, this.deadline)
    this.cancel = this.timer.schedule(at, this.onTimer)
  }

  private readonly onTimer = (): void => {
    if (this.phase !== "held") return
    const now = this.timer.now()
    if (now >= this.deadline) return this.lose(this.options.acq.keepAlive === false ? "expired" : "unconfirmed")
    if (!this.extending && this.nextTick !== undefined && now >= this.nextTick) {
      this.extending = true
      this.fork(this.keep())
    }
    this.arm()
  }

  /** Works out the next tick from the keep-alive schedule, then re-arms; a failure loses the lease. */
  private planNext(): Effect.Effect<void> {
    const keepAlive = this.options.acq.keepAlive
    const now = this.timer.now()
    const step: Effect.Effect<number> = keepAlive === false
      ? Effect.succeed(Infinity)
      : keepAlive.every !== undefined
      ? Effect.succeed(now + keepAlive.every)
      : Effect.map(keepAlive.schedule.step(now, undefined, this.tickState), ([state, _, decision]) => {
        this.tickState = state
        return ScheduleDecision.isDone(decision) ? Infinity : Math.max(now, ScheduleIntervals.start(decision.intervals))
      })
    return step.pipe(
      Effect.map((tick) => {
        this.extending = false
        this.nextTick = tick
        this.arm()
      }),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => this.lose("unconfirmed")).pipe(
          Effect.zipRight(Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("lease keeper failed", cause)),
          Effect.annotateLogs("lock.id", this.id)
        )
      )
    )
  }

  /** One keep-alive step: extend to the full lease, then plan the next tick. */
  private keep(): Effect.Effect<void> {
    const sentAt = this.timer.now()
    const { acq, ops, token } = this.options
    return ops.extend(token, acq.lease, "set", this.deadline).pipe(
      Effect.matchEffect({
        onFailure: (error) => this.log("warning", `lease extension failed (${error.message})`),
        onSuccess: (ttl) =>
          Effect.sync(() => {
            if (this.phase !== "held") return
            if (ttl <= 0) return this.lose("expired")
            this.prove(sentAt, ttl)
          })
      }),
      Effect.zipRight(Effect.suspend(() => this.planNext()))
    )
  }

  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.phase === "released") return Effect.void
      this.phase = "released"
      this.cancel?.()
      const now = this.timer.now()
      return this.options.ops.release(this.options.token, now + Math.max(RELEASE_LIMIT, this.deadline - now)).pipe(
        Effect.matchEffect({
          onFailure: (error) => this.log("warning", `could not release the lease; it will expire (${error.message})`),
          onSuccess: (released) => (released ? Effect.void : this.log("debug", "lease was no longer held at release"))
        })
      )
    })
  }

  private log(level: "warning" | "debug", message: string): Effect.Effect<void> {
    return (level === "warning" ? Effect.logWarning(message) : Effect.logDebug(message)).pipe(
      Effect.annotateLogs("lock.id", this.id)
    )
  }

  extend(amount: Duration.DurationInput): Effect.Effect<boolean, RedisError | InvalidOptions> {
    return Effect.flatMap(validate.millis("extend", amount, 1), (ms) => {
      if (this.phase !== "held") return Effect.succeed(false)
      const sentAt = this.timer.now()
      return Effect.map(this.options.ops.extend(this.options.token, ms, "add", this.deadline), (ttl) => {
        if (ttl <= 0) {
          this.lose("expired")
          return false
        }
        if (this.phase !== "held") return false
        this.prove(sentAt, ttl)
        return true
      })
    })
  }

  guard<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockLost, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(self)), (child) => {
        const interrupt = () => child.unsafeInterruptAsFork(FiberId.none)
        if (this.phase === "lost") interrupt()
        else (this.guards ??= new Set()).add(interrupt)
        return restore(Fiber.await(child)).pipe(
          Effect.onInterrupt(() => Fiber.interrupt(child)),
          Effect.ensuring(Effect.sync(() => this.guards?.delete(interrupt))),
          Effect.flatMap((exit): Effect.Effect<A, E | LockLost> =>
            Exit.isFailure(exit) && this.lostError !== undefined && Cause.isInterruptedOnly(exit.cause)
              ? Effect.fail(this.lostError)
              : exit
          )
        )
      })
    )
  }
}

/** Holds a won lease: keeps it alive until it is released or lost. */
export const hold = (options: HoldOptions): Held => new Lease(options)
