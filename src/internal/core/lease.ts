/**
 * A held lease: its local deadline, its keeper, its loss and its release — the same for every primitive.
 *
 * - The deadline is in the service timer's monotonic milliseconds, measured from *before* the request
 *   that proved it, minus a drift margin. It only ever moves later, to what a reply proves: the extend
 *   scripts never shorten an expiry, so the proof of any reply holds whatever order replies arrive in.
 * - The lease is a small state machine ({@link Phase}, one {@link transition} function). Keeping it forks
 *   nothing until a keep-alive step is due: one entry on the service's timer waits for the next step or
 *   the deadline, whichever is first. A step (an extension, or the next instant of a user's schedule)
 *   runs in a fiber of the service's layer (`Timer.fork`), so closing the layer stops every keeper.
 * - Loss completes `lost`, interrupts the guarded work, and never goes unnoticed: a keeper that fails
 *   for any reason loses the lease.
 */
import { Cause, Data, Deferred, type Duration, Effect, Exit, Fiber, FiberId, type Schedule } from "effect"
import type { Lease as PublicLease } from "../../Lock.js"
import { type InvalidOptions, LockLost, type RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import * as validate from "../validate.js"
import { persist } from "./persist.js"
import type { ExtendBatch, Resource } from "./resource.js"
import { type Stepper, stepper } from "./schedule.js"

/** Milliseconds taken off a lease when computing its local deadline (clock drift, as in Redlock). */
export const driftOf = (lease: number): number => Math.floor(lease * 0.01) + 2

/** The shortest pause between keep-alive steps of a user's schedule, as a fraction of the lease. */
const MIN_STEP_FRACTION = 10

/** A release waits at least this long for an answer (more while the lease still runs). */
const RELEASE_LIMIT = 1000

/**
 * The instant of a default keep-alive step due `every` ms after `now`, on a grid of a quarter of
 * `every` (rounded down: a step is never later than asked), so that the steps of many leases taken a
 * little apart fall on the same instants and go in one script.
 */
const onGrid = (now: number, every: number): number => {
  const q = Math.max(1, Math.floor(every / 4))
  return Math.max(now + 1, Math.floor((now + every) / q) * q)
}

/**
 * The keep-alive of every lease on one Redis service. Leases whose step comes due in the same turn of
 * the timer are extended in one script (one per Cluster slot), each with its own reply: a lease its
 * owner no longer holds is lost alone. It also hears a restart of the server, and loses every lease
 * on it at once.
 */
class Keeper {
  private readonly held = new Set<Lease>()
  private due: Array<Lease> = []
  readonly restarts: boolean

  constructor(private readonly redis: Redis.Service) {
    this.restarts = redis.onRestart !== undefined
    redis.onRestart?.(() => {
      for (const lease of Array.from(this.held)) lease.restarted()
    })
  }

  add(lease: Lease): void {
    this.held.add(lease)
  }
  remove(lease: Lease): void {
    this.held.delete(lease)
  }

  /** A lease's step is due: it goes in the next batch, sent once this turn of the timer is over. */
  enqueue(lease: Lease): void {
    if (this.due.push(lease) === 1) this.redis.timer.fork(Effect.zipRight(Effect.yieldNow(), this.flush))
  }

  private readonly flush: Effect.Effect<void> = Effect.suspend(() => {
    const due = this.due
    this.due = []
    const slotOf = this.redis.slotOf
    const groups = new Map<ExtendBatch, Map<number, Array<Lease>>>()
    for (const lease of due) {
      const batch = lease.batch!
      let slots = groups.get(batch.script)
      if (slots === undefined) groups.set(batch.script, slots = new Map())
      const slot = slotOf === undefined ? 0 : slotOf(batch.key)
      const leases = slots.get(slot)
      if (leases === undefined) slots.set(slot, [lease])
      else leases.push(lease)
    }
    const sends: Array<Effect.Effect<void>> = []
    for (const [script, slots] of groups) for (const leases of slots.values()) sends.push(this.send(script, leases))
    return sends.length === 1 ? sends[0]! : Effect.all(sends, { concurrency: "unbounded", discard: true })
  })

  private send(script: ExtendBatch, leases: ReadonlyArray<Lease>): Effect.Effect<void> {
    const sentAt = this.redis.timer.now()
    const n = leases.length
    const keys = new Array<string>(n)
    const tokens = new Array<string>(n)
    const ms = new Array<number>(n)
    let deadline = 0
    for (let i = 0; i < n; i++) {
      const lease = leases[i]!
      keys[i] = lease.batch!.key
      tokens[i] = lease.token
      ms[i] = lease.leaseMs
      deadline = Math.max(deadline, lease.deadlineMs)
    }
    return script.run(this.redis, keys, tokens, ms, deadline).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.zipRight(
            Effect.sync(() => {
              for (const lease of leases) lease.settle(sentAt, undefined)
            }),
            Effect.logWarning(`lease extension failed for ${n} lease(s) (${error.message})`)
          ),
        onSuccess: (ttls) =>
          Effect.sync(() => {
            for (let i = 0; i < n; i++) leases[i]!.settle(sentAt, ttls[i] ?? 0)
          })
      })
    )
  }
}

const keepers = new WeakMap<Redis.Service, Keeper>()
const keeperOf = (redis: Redis.Service): Keeper => {
  let keeper = keepers.get(redis)
  if (keeper === undefined) keepers.set(redis, keeper = new Keeper(redis))
  return keeper
}

/** When to extend: every `every` ms (the default), on a schedule of the user's, or never (`false`). */
export type KeepAlive =
  | false
  | { readonly every: number; readonly schedule?: undefined }
  | { readonly every?: undefined; readonly schedule: Schedule.Schedule<unknown, void> }

/** What the core reports of a lease's life (metrics and logs, per primitive). */
export interface Hooks {
  readonly extended: () => void
  readonly lost: (reason: LockLost["reason"]) => Effect.Effect<void>
}

/** A held lease, as every primitive hands it out (the public `Lease`), plus what `with…` and the scope need of it. */
export interface Held extends PublicLease {
  /** Runs `self` until it ends or the lease is lost (then `LockLost`). */
  readonly guard: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LockLost, R>
  /** Stops keeping the lease and releases it; never fails. */
  readonly release: Effect.Effect<void>
}

/**
 * The phases of a lease. `Idle`: held, the next keep-alive step is due at `tick` (`Infinity`: none);
 * `Busy`: held, a step is in flight (only the deadline is watched meanwhile); `Lost` and `Released` are
 * final, except that a lost lease is still released (an owner-checked no-op).
 */
export type Phase = Data.TaggedEnum<{
  Idle: { readonly tick: number }
  Busy: {}
  Lost: { readonly reason: LockLost["reason"] }
  Released: {}
}>
export const Phase = Data.taggedEnum<Phase>()

/**
 * What happens to a lease: its timer entry comes due at `now` (lost at the `deadline` for `reason`), the
 * next step is planned at `tick`, a reply proves it `Lose`t, or it is released.
 */
export type Event =
  | { readonly _tag: "Due"; readonly now: number; readonly deadline: number; readonly reason: LockLost["reason"] }
  | { readonly _tag: "Planned"; readonly tick: number }
  | { readonly _tag: "Lose"; readonly reason: LockLost["reason"] }
  | { readonly _tag: "Release" }

const BUSY = Phase.Busy()
const RELEASED = Phase.Released()

const isHeld = (phase: Phase): phase is Extract<Phase, { _tag: "Idle" | "Busy" }> =>
  phase._tag === "Idle" || phase._tag === "Busy"

/** The one transition function: the phase after `event` (the same object when nothing changes). */
export const transition = (phase: Phase, event: Event): Phase => {
  switch (event._tag) {
    case "Due":
      if (!isHeld(phase)) return phase
      if (event.now >= event.deadline) return Phase.Lost({ reason: event.reason })
      return phase._tag === "Idle" && event.now >= phase.tick ? BUSY : phase
    case "Planned":
      return phase._tag === "Busy" ? Phase.Idle({ tick: event.tick }) : phase
    case "Lose":
      return isHeld(phase) ? Phase.Lost({ reason: event.reason }) : phase
    case "Release":
      return phase._tag === "Released" ? phase : RELEASED
  }
}

export interface HoldOptions {
  readonly resource: Resource<unknown>
  readonly lease: number
  readonly keepAlive: KeepAlive
  readonly redis: Redis.Service
  readonly token: string
  readonly fence: number
  /** When the winning try was sent (timer ms): the lease started no earlier. */
  readonly sentAt: number
  readonly hooks: Hooks
}

/**
 * One held lease. A class, so that an uncontended acquisition allocates one object and few closures:
 * what only keep-alive or loss needs is made when it is needed.
 */
class Lease implements Held {
  readonly id: string
  readonly fence: number
  private phase: Phase
  private deadline: number
  /** Made when someone waits for the loss, or at the loss (most leases never need one). */
  private lostSignal: Deferred.Deferred<never, LockLost> | undefined
  private lostError: LockLost | undefined
  private guards: Set<Fiber.RuntimeFiber<unknown, unknown>> | undefined
  private schedule: Stepper<void> | undefined
  private cancel: (() => void) | undefined
  private readonly timer: Redis.Timer
  private readonly keeper: Keeper
  /** Where its default keep-alive steps go in one script with others' (`undefined`: alone). */
  readonly batch: { readonly script: ExtendBatch; readonly key: string } | undefined
  private get minStep(): number {
    return Math.max(1, Math.floor(this.options.lease / MIN_STEP_FRACTION))
  }

  constructor(private readonly options: HoldOptions) {
    this.id = options.resource.id
    this.fence = options.fence
    this.timer = options.redis.timer
    this.keeper = keeperOf(options.redis)
    this.deadline = options.sentAt + options.lease - driftOf(options.lease)
    const keepAlive = options.keepAlive
    this.batch = keepAlive !== false && keepAlive.every !== undefined ? options.resource.ops.batch : undefined
    if (this.keeper.restarts) this.keeper.add(this)
    if (keepAlive !== false && keepAlive.schedule !== undefined) {
      // A schedule of the user's: its first step runs in a fiber, like every later one.
      this.schedule = stepper(keepAlive.schedule)
      this.phase = BUSY
      this.timer.fork(this.plan())
    } else {
      const now = this.timer.now()
      // A win heard late (less than one interval left) is extended at once, not lost for nothing.
      const tick = keepAlive === false
        ? Infinity
        : Math.min(onGrid(now, keepAlive.every), Math.max(now, this.deadline - keepAlive.every))
      this.phase = Phase.Idle({ tick })
    }
    this.arm()
  }

  get lost(): Effect.Effect<never, LockLost> {
    return Effect.suspend(() => Deferred.await(this.signal()))
  }
  get isLost(): Effect.Effect<boolean> {
    return Effect.sync(() => this.phase._tag === "Lost")
  }
  get validUntil(): Effect.Effect<number> {
    return Effect.sync(() => this.deadline)
  }

  private signal(): Deferred.Deferred<never, LockLost> {
    if (this.lostSignal === undefined) {
      this.lostSignal = Deferred.unsafeMake<never, LockLost>(FiberId.none)
      if (this.lostError !== undefined) Deferred.unsafeDone(this.lostSignal, Exit.fail(this.lostError))
    }
    return this.lostSignal
  }

  /** Applies `event`, and does what entering the new phase asks; `false` when the phase stayed. */
  private on(event: Event): boolean {
    const before = this.phase
    const after = transition(before, event)
    if (after === before) return false
    this.phase = after
    switch (after._tag) {
      case "Idle":
        this.arm()
        break
      case "Busy":
        if (this.batch !== undefined) this.keeper.enqueue(this)
        else this.timer.fork(this.keep())
        this.arm()
        break
      case "Lost":
        this.keeper.remove(this)
        this.onLost(after.reason)
        break
      case "Released":
        this.keeper.remove(this)
        this.cancel?.()
    }
    return true
  }

  private onLost(reason: LockLost["reason"]): void {
    this.cancel?.()
    const error = (this.lostError = new LockLost({ id: this.id, fence: this.fence, reason }))
    if (this.lostSignal !== undefined) Deferred.unsafeDone(this.lostSignal, Exit.fail(error))
    const guards = this.guards
    this.guards = undefined
    const report = this.options.hooks.lost(reason)
    this.timer.fork(
      guards === undefined
        ? report
        : Effect.zipRight(Effect.forEach(guards, Fiber.interruptFork, { discard: true }), report)
    )
  }

  private lose(reason: LockLost["reason"]): void {
    this.on({ _tag: "Lose", reason })
  }

  get token(): string {
    return this.options.token
  }
  get leaseMs(): number {
    return this.options.lease
  }
  get deadlineMs(): number {
    return this.deadline
  }

  /** The server restarted without the lock: lost now, not at the next step. */
  restarted(): void {
    this.lose("expired")
  }

  /**
   * The reply to a batched step sent at `sentAt`: the lock's PTTL (0: no longer ours), or `undefined`
   * when the batch failed (the deadline still stands); then the next step is planned.
   */
  settle(sentAt: number, ttl: number | undefined): void {
    if (this.phase._tag !== "Busy") return
    if (ttl !== undefined) {
      if (ttl <= 0) return this.lose("expired")
      this.prove(sentAt, ttl)
    }
    const every = (this.options.keepAlive as { readonly every: number }).every
    this.on({ _tag: "Planned", tick: onGrid(this.timer.now(), every) })
  }

  /** Moves the deadline to what a reply proves: the expiry is at least `ttl` after `sentAt`. */
  private prove(sentAt: number, ttl: number): void {
    this.deadline = Math.max(this.deadline, sentAt + ttl - driftOf(ttl))
    this.options.hooks.extended()
  }

  /** One timer entry: the next keep-alive step or the deadline, whichever comes first. */
  private arm(): void {
    this.cancel?.()
    const phase = this.phase
    if (phase._tag === "Idle") this.cancel = this.timer.schedule(Math.min(phase.tick, this.deadline), this.onTimer)
    else if (phase._tag === "Busy") this.cancel = this.timer.schedule(this.deadline, this.onTimer)
  }

  private readonly onTimer = (): void => {
    const reason = this.options.keepAlive === false ? "expired" : "unconfirmed"
    // Not due yet (the timer fires soon after, never before): its entry is spent, so wait again.
    if (!this.on({ _tag: "Due", now: this.timer.now(), deadline: this.deadline, reason })) this.arm()
  }

  /** Works out the next step's instant, then waits for it; a failure loses the lease. */
  private plan(): Effect.Effect<void> {
    const keepAlive = this.options.keepAlive
    const now = this.timer.now()
    const next: Effect.Effect<number | undefined> = keepAlive === false
      ? Effect.succeed(Infinity)
      : keepAlive.every !== undefined
      ? Effect.succeed(onGrid(now, keepAlive.every))
      : this.schedule!.next(now, undefined)
    return next.pipe(
      // A user's schedule steps at most every tenth of the lease (`Schedule.forever` would spin).
      Effect.map((tick) =>
        this.on({ _tag: "Planned", tick: tick === undefined ? Infinity : Math.max(tick, now + this.minStep) })
      ),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => this.lose("unconfirmed")).pipe(
          Effect.zipRight(Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("lease keeper failed", cause)),
          Effect.annotateLogs("lock.id", this.id)
        )
      )
    )
  }

  /** One keep-alive step: extend to the full lease, then plan the next one. */
  private keep(): Effect.Effect<void> {
    const sentAt = this.timer.now()
    const { lease, resource, token } = this.options
    return resource.ops.extend(token, lease, "set", this.deadline).pipe(
      Effect.matchEffect({
        onFailure: (error) => this.log("warning", `lease extension failed (${error.message})`),
        onSuccess: (ttl) =>
          Effect.sync(() => {
            if (this.phase._tag !== "Busy") return
            if (ttl <= 0) return this.lose("expired")
            this.prove(sentAt, ttl)
          })
      }),
      Effect.zipRight(Effect.suspend(() => this.plan()))
    )
  }

  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.phase._tag === "Released") return Effect.void
      this.on({ _tag: "Release" })
      const now = this.timer.now()
      const { redis, resource, token } = this.options
      // Unanswered, the release is retried in the background (owner-checked) until the lease would
      // have lapsed anyway.
      return persist(
        redis,
        (at) =>
          Effect.flatMap(
            resource.ops.release(token, at),
            (released) => released ? Effect.void : this.log("debug", "lease was no longer held at release")
          ),
        now + Math.max(RELEASE_LIMIT, this.deadline - now),
        this.deadline + driftOf(this.options.lease),
        (error) => this.log("warning", `release not answered (${error.message}); retrying until the lease ends`)
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
      if (!isHeld(this.phase)) return Effect.succeed(false)
      const sentAt = this.timer.now()
      return Effect.map(this.options.resource.ops.extend(this.options.token, ms, "add", this.deadline), (ttl) => {
        if (ttl <= 0) {
          this.lose("expired")
          return false
        }
        if (!isHeld(this.phase)) return false
        this.prove(sentAt, ttl)
        return true
      })
    })
  }

  guard<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockLost, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(self)), (child) => {
        if (this.phase._tag === "Lost") this.timer.fork(Fiber.interruptFork(child))
        else if (isHeld(this.phase)) (this.guards ??= new Set()).add(child)
        return restore(Fiber.await(child)).pipe(
          Effect.onInterrupt(() => Fiber.interrupt(child)),
          Effect.ensuring(Effect.sync(() => this.guards?.delete(child))),
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

/**
 * A lease handed out over a held one: the same hold (kept, lost and released with it), seen under its
 * own id and fence (one id of several taken together) or with more to it (a write lease's downgrade).
 */
export class Delegated implements PublicLease {
  constructor(protected readonly held: Held, readonly id: string = held.id, readonly fence: number = held.fence) {}
  get lost() {
    return this.held.lost
  }
  get isLost() {
    return this.held.isLost
  }
  get validUntil() {
    return this.held.validUntil
  }
  extend(amount: Duration.DurationInput) {
    return this.held.extend(amount)
  }
}
