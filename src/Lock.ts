/**
 * Distributed locks on Redis, as Effect values.
 *
 * Two shapes over the same scripts:
 *
 * - {@link make} — a handle with the `@upstash/lock` contract: `acquire` / `release` / `extend` /
 *   `status`, booleans included, same options and defaults (lease 10 s, 3 attempts, 100 ms apart).
 * - {@link acquire} / {@link withLock} — the lock as a scoped resource: released when the scope closes,
 *   kept alive by a fiber driven by a `Schedule`, and work guarded by it is interrupted with `LockLost`
 *   as soon as the lease cannot be confirmed. Every acquisition carries a strictly increasing fence.
 *
 * A lease is a time-bounded promise from one Redis: it makes duplicate work rare (efficiency); for
 * correctness, pass {@link Lease.fence} to the resource you protect and have it reject older fences.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const nightly = Effect.gen(function*() {
 *   const lease = yield* Lock.acquire({ id: "nightly-report", lease: "30 seconds", timeout: "5 seconds" })
 *   yield* Effect.log(`writing with fence ${lease.fence}`)
 * }).pipe(Effect.scoped)
 *
 * Effect.runPromise(nightly.pipe(Effect.provide(Memory.layer)))
 *
 * @since 0.1.0
 */
import {
  Clock,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  FiberId,
  Metric,
  MetricBoundaries,
  Option,
  Ref,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  type Scope
} from "effect"
import { dual } from "effect/Function"
import { DEFAULT_PREFIX, type LockKeys, lockKeys } from "./internal/keys.js"
import * as scripts from "./internal/lockScripts.js"
import { randomToken } from "./internal/token.js"
import * as validate from "./internal/validate.js"
import { InvalidOptions, LockLost, LockNotAcquired, type RedisError } from "./LockError.js"
import { Redis, type Subscriber } from "./Redis.js"

/**
 * How often to try and how long to wait between tries. `attempts` counts every try, the first included.
 *
 * @since 0.1.0
 */
export interface RetryOptions {
  /** Tries in all, at least 1. Default 3. */
  readonly attempts?: number | undefined
  /** Wait after each failed try but the last. A number is milliseconds. Default 100 ms. */
  readonly delay?: Duration.DurationInput | undefined
}

/**
 * Options shared by every entry point (the `@upstash/lock` options, without `redis`, which is a Layer).
 *
 * @since 0.1.0
 */
export interface Options {
  /** The resource's name. 1 to 1024 characters; any text is fine (it is never spliced into Lua). */
  readonly id: string
  /** How long a lease lasts without extension. A number is milliseconds. Default 10 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  readonly retry?: RetryOptions | undefined
  /** Namespace for every key. Default `"effect-lock:"`; the lock's key is `<prefix>lock:{<id>}`. */
  readonly prefix?: string | undefined
}

/**
 * Options of {@link acquire}, {@link withLock} and {@link withLockIfAvailable}.
 *
 * @since 0.1.0
 */
export interface AcquireOptions extends Omit<Options, "retry"> {
  /**
   * How to wait for a held lock: {@link RetryOptions}, or any `Schedule` fed the `LockNotAcquired` of each
   * failed try. Default: 3 tries 100 ms apart; when `timeout` is set, tries until it: on each wake-up
   * where the backend pushes them (and every 2 s regardless), else every 100 ms.
   */
  readonly retry?: RetryOptions | Schedule.Schedule<unknown, LockNotAcquired> | undefined
  /** Give up waiting after this long, with `LockNotAcquired` (reason `"timeout"`). */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Wait in line (default `true`): waiters are served first come, first served, and a release hands the
   * lock straight to the next waiter, woken over pub/sub where the backend has it (polling bounded by the
   * holder's lease where it does not). `false`: every try is a plain SET NX, whoever comes first wins.
   */
  readonly fair?: boolean | undefined
  /**
   * When to extend the lease while it is held; each extension resets it to the full `lease`. Default:
   * every third of the lease. `false` disables extension: the lease then simply runs out.
   */
  readonly keepAlive?: Schedule.Schedule<unknown, void> | false | undefined
}

/**
 * What the handle's parity `acquire` may override for one call (as in `@upstash/lock`).
 *
 * @since 0.1.0
 */
export interface AcquireOverrides {
  readonly lease?: Duration.DurationInput | undefined
  readonly retry?: RetryOptions | undefined
  /** A caller-chosen owner token instead of a random one (used only when the handle holds none; it
   * may not start with `~`, which marks a lock reserved for a waiter). */
  readonly uuid?: string | undefined
}

/**
 * Who holds a lock, as seen by one handle.
 *
 * @since 0.1.0
 */
export type State = Data.TaggedEnum<{
  Free: {}
  HeldByMe: { readonly remaining: Duration.Duration }
  HeldByOther: { readonly remaining: Duration.Duration }
}>

/**
 * Constructors and matchers for {@link State}.
 *
 * @since 0.1.0
 */
export const State = Data.taggedEnum<State>()

/**
 * The `@upstash/lock`-compatible handle returned by {@link make}.
 *
 * @since 0.1.0
 */
export interface Lock {
  readonly id: string
  /**
   * Tries up to `retry.attempts` times to take the lock; `true` when this handle holds it afterwards. On a
   * handle that already holds the lock, it renews the lease (same fence) and succeeds. A failed call never
   * forgets a token the handle holds.
   */
  readonly acquire: (overrides?: AcquireOverrides) => Effect.Effect<boolean, RedisError | InvalidOptions>
  /** Releases the lock if this handle holds it; `true` when it did. */
  readonly release: Effect.Effect<boolean, RedisError>
  /** Adds time (a number is milliseconds) to the lease if this handle holds it; `true` when it did. */
  readonly extend: (amount: Duration.DurationInput) => Effect.Effect<boolean, RedisError | InvalidOptions>
  /** `"ACQUIRED"` when this handle holds the lock, else `"FREE"` (also when another owner holds it). */
  readonly status: Effect.Effect<"ACQUIRED" | "FREE", RedisError>
  /** The richer status: free, held by this handle, or held by another owner, with the time left. */
  readonly state: Effect.Effect<State, RedisError>
  /** The fencing token of this handle's current acquisition, if it has one. */
  readonly fence: Effect.Effect<Option.Option<number>>
}

/**
 * A held lease, returned by {@link acquire}. It lives as long as the scope it was acquired in.
 *
 * @since 0.1.0
 */
export interface Lease {
  readonly id: string
  /** Strictly greater than the fence of every earlier acquisition of this id. */
  readonly fence: number
  /** Fails with `LockLost` once the lease is lost; never succeeds. Race your work against it. */
  readonly lost: Effect.Effect<never, LockLost>
  /** Whether the lease has been lost. */
  readonly isLost: Effect.Effect<boolean>
  /** The local deadline: `Clock` milliseconds before which the lease is known to hold. */
  readonly validUntil: Effect.Effect<number>
  /** Adds time to the lease; `false` when the lease is no longer ours. */
  readonly extend: (amount: Duration.DurationInput) => Effect.Effect<boolean, RedisError | InvalidOptions>
}

/**
 * Counters and timings of every lock in the process. Read them with `Metric.value`, or export them with
 * any Effect metrics exporter.
 *
 * @since 0.1.0
 */
export const metrics = {
  attempts: Metric.counter("effect_lock_acquire_attempts", { description: "tries to acquire a lock" }),
  acquired: Metric.counter("effect_lock_acquired", { description: "successful acquisitions" }),
  waitMillis: Metric.histogram(
    "effect_lock_wait_ms",
    MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
    "time from the first try to the acquisition"
  ),
  extensions: Metric.counter("effect_lock_extensions", { description: "confirmed lease extensions" }),
  lost: Metric.counter("effect_lock_lost", { description: "leases lost while held" })
} as const

const DEFAULT_LEASE = 10_000
/** How long a released lock stays reserved for the waiter it was handed to (a dead waiter blocks no longer). */
const RESERVATION = 1000
/** The line of waiters expires this long after the last one joined (unless leases are longer). */
const QUEUE_TTL = 60_000
/** A waiter woken by pushes still looks this often, in case a message was lost. */
const RECHECK = 2000
const DEFAULT_ATTEMPTS = 3
const DEFAULT_DELAY = 100

/** Milliseconds taken off a lease when computing its local deadline (clock drift, as in Redlock). */
const driftOf = (lease: number): number => Math.floor(lease * 0.01) + 2

interface Retry {
  readonly attempts: number
  readonly delay: number
}

const parseRetry = (retry: RetryOptions | undefined, fallback: Retry): Effect.Effect<Retry, InvalidOptions> =>
  retry === undefined
    ? Effect.succeed(fallback)
    : Effect.all({
      attempts: validate.orDefault(retry.attempts, fallback.attempts, (u) => validate.integer("retry.attempts", u, 1)),
      delay: validate.orDefault(retry.delay, fallback.delay, (u) => validate.millis("retry.delay", u, 0))
    })

const parseLease = (u: unknown, fallback: number) => validate.orDefault(u, fallback, (u) => validate.millis("lease", u, 1))

const parseBase = (options: Omit<Options, "retry">) =>
  Effect.all({
    id: validate.text("id", options?.id),
    lease: parseLease(options?.lease, DEFAULT_LEASE),
    prefix: validate.orDefault(options?.prefix, DEFAULT_PREFIX, (u) => validate.prefix("prefix", u))
  })

const retrySchedule = ({ attempts, delay }: Retry): Schedule.Schedule<unknown, unknown> =>
  Schedule.spaced(delay).pipe(Schedule.intersect(Schedule.recurs(attempts - 1)))

/** One lock id's operations for one owner token, over the Redis service. */
const operations = (redis: Redis["Type"], keys: LockKeys) => ({
  /** The `@upstash/lock` SET NX, outside the line of waiters. */
  tryAcquire: (token: string, lease: number) =>
    redis.run(scripts.acquire, [keys.lock, keys.fence], [token, String(lease)]).pipe(
      Metric.trackAll(metrics.attempts, 1)
    ),
  /** In line: takes the lock if it is this waiter's turn, else joins (or stays in) the line. */
  tryAcquireFair: (token: string, lease: number, recheck: boolean) =>
    redis.run(scripts.acquireFair, [keys.lock, keys.fence, keys.queue], [
      token,
      String(lease),
      String(RESERVATION),
      keys.channel,
      String(Math.max(QUEUE_TTL, lease * 4)),
      recheck ? "1" : "0"
    ]).pipe(Metric.trackAll(metrics.attempts, 1)),
  release: (token: string) =>
    redis.run(scripts.release, [keys.lock, keys.queue], [token, String(RESERVATION), keys.channel]),
  dequeue: (token: string) =>
    redis.run(scripts.dequeue, [keys.lock, keys.queue], [token, String(RESERVATION), keys.channel]),
  extend: (token: string, ms: number, mode: "add" | "set") =>
    redis.run(scripts.extend, [keys.lock], [token, String(ms), mode]),
  state: (token: string) =>
    Effect.map(redis.run(scripts.status, [keys.lock], [token]), (reply): State =>
      reply._tag === "Free" ? State.Free() : State[reply._tag]({ remaining: Duration.millis(reply.remaining) }))
})

/**
 * Tries `attempt` again on the schedule while it fails with `LockNotAcquired` (the schedule is fed each
 * one); any other failure, such as a Redis fault, stops at once.
 */
const retryWhileHeld = <A, E, R>(
  attempt: Effect.Effect<A, E | LockNotAcquired, R>,
  schedule: Schedule.Schedule<unknown, LockNotAcquired>
): Effect.Effect<A, E | LockNotAcquired, R> =>
  Effect.flatMap(Schedule.driver(schedule), (driver) => {
    const loop: Effect.Effect<A, E | LockNotAcquired, R> = Effect.catchIf(
      attempt,
      (e): e is LockNotAcquired => e instanceof LockNotAcquired,
      (e) => Effect.matchEffect(driver.next(e), { onFailure: () => Effect.fail(e), onSuccess: () => loop })
    )
    return loop
  })

/**
 * Tries until the lock is won, the schedule gives up, or a Redis fault stops it. Between tries a waiter
 * sleeps until the first of: its wake-up (the lock was handed to it), the end of the current holder's
 * lease or reservation, or the schedule's next delay. When the lock is handed to another waiter, the
 * sleep is cut to that reservation's length: if that waiter is dead, the next one looks as soon as the
 * reservation lapses. Before it first waits it makes sure the lock's channel is subscribed, then looks
 * once more, so a release published meanwhile is never missed. A waiter that gives up or is
 * interrupted leaves the line (and passes on a reservation made for it).
 *
 * The parity handle keeps its own loop (`retryWhileHeld`): its contract is exactly `attempts` tries
 * `delay` apart, which these lease-bounded wake-ups would change.
 */
const waitForTurn = <A>(options: {
  readonly attempt: (recheck: boolean) => Effect.Effect<A, LockNotAcquired | RedisError, Scope.Scope>
  readonly schedule: Schedule.Schedule<unknown, LockNotAcquired>
  readonly subscriber: Subscriber | undefined
  readonly channel: string
  readonly token: string
  readonly leave: Effect.Effect<boolean, RedisError>
  readonly reservation: number
}): Effect.Effect<A, LockNotAcquired | RedisError, Scope.Scope> =>
  Effect.gen(function*() {
    const { attempt, channel, subscriber, token } = options
    // Made on the first wait only: an uncontended acquisition needs none of this.
    let driver: Schedule.ScheduleDriver<unknown, LockNotAcquired> | undefined
    // The wake-up of the current wait. Made before each try (once listening), so a message that
    // arrives while the try is on its way is not lost.
    let woken = Deferred.unsafeMake<void>(FiberId.none)
    // Completed when the lock is handed to another waiter.
    let handedOff = woken
    const listener = (message: string) => Deferred.unsafeDone(message === token ? woken : handedOff, Exit.void)
    // Listen before the first try only if messages can already arrive; otherwise a failed try subscribes,
    // starts listening, and looks again. An uncontended acquisition thus costs no pub/sub bookkeeping.
    let listening = subscriber !== undefined && subscriber.isActive(channel)
      ? yield* subscriber.listen(channel, listener)
      : undefined
    let subscribed = listening !== undefined
    let waited = false

    /**
     * Sleeps `ms`, restarting at the reservation's length whenever the lock is handed to someone else.
     * `first` is the hand-off signal made before the last try, so a hand-off since then is not missed.
     */
    const nap = (ms: number, first: Deferred.Deferred<void>) =>
      Effect.gen(function*() {
        let left = ms
        let other = first
        while (true) {
          const outcome = yield* Effect.raceFirst(
            Effect.as(Effect.sleep(left), "slept" as const),
            Effect.as(Deferred.await(other), "handed off" as const)
          )
          if (outcome === "slept") return
          left = options.reservation + 1
          other = handedOff = Deferred.unsafeMake<void>(FiberId.none)
        }
      })

    const loop = (recheck: boolean): Effect.Effect<A, LockNotAcquired | RedisError, Scope.Scope> =>
      Effect.suspend(() => {
        if (listening !== undefined) {
          woken = Deferred.unsafeMake<void>(FiberId.none)
          handedOff = Deferred.unsafeMake<void>(FiberId.none)
        }
        const wake = woken
        const other = handedOff
        return Effect.catchIf(
          attempt(recheck),
          (e): e is LockNotAcquired => e instanceof LockNotAcquired,
          (e) =>
            Effect.gen(function*() {
              waited = true
              if (subscriber !== undefined && !subscribed) {
                listening ??= yield* subscriber.listen(channel, listener)
                yield* subscriber.subscribe(channel)
                subscribed = true
                return yield* loop(true)
              }
              driver ??= yield* Schedule.driver(options.schedule)
              // Until the holder's lease (or a reservation) ends; when woken by pushes, at least every
              // RECHECK ms all the same, in case a message was lost with a connection.
              const bound = Math.max(1, listening === undefined ? e.remaining + 1 : Math.min(e.remaining + 1, RECHECK))
              const turn = listening === undefined
                ? Effect.sleep(bound) // no push here: look again when the holder's lease or reservation ends
                : Effect.raceFirst(Deferred.await(wake), nap(bound, other))
              yield* Effect.raceFirst(Effect.mapError(driver.next(e), () => e), turn)
              return yield* loop(true)
            })
        )
      })

    return yield* loop(false).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) || !waited
          ? Effect.void
          : options.leave.pipe(Effect.interruptible, Effect.timeout(1000), Effect.ignore)
      ),
      Effect.ensuring(Effect.suspend(() => (listening === undefined ? Effect.void : listening.remove)))
    )
  })

/**
 * Makes an `@upstash/lock`-compatible handle. Nothing is sent to Redis until a method runs.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Effect.gen(function*() {
 *   const lock = yield* Lock.make({ id: "invoice-42", lease: 5000, retry: { attempts: 3, delay: 100 } })
 *   if (yield* lock.acquire()) {
 *     yield* Effect.log("working")
 *     yield* lock.extend(2000)
 *     yield* lock.release
 *   }
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Memory.layer)))
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<Lock, InvalidOptions, Redis> =>
  Effect.gen(function*() {
    const base = yield* parseBase(options)
    const retry = yield* parseRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY })
    const redis = yield* Redis
    const ops = operations(redis, lockKeys(base.prefix, base.id))
    const held = yield* Ref.make(Option.none<{ readonly token: string; readonly fence: number }>())
    const tokenOr = (fallback: string) =>
      Effect.map(Ref.get(held), Option.match({ onNone: () => fallback, onSome: (h) => h.token }))

    const acquire = (overrides?: AcquireOverrides) =>
      Effect.gen(function*() {
        const lease = yield* parseLease(overrides?.lease, base.lease)
        const tries = yield* parseRetry(overrides?.retry, retry)
        const uuid = yield* validate.orDefault(overrides?.uuid, randomToken(), (u) =>
          Effect.filterOrFail(validate.text("uuid", u), (t) => !t.startsWith("~"), () =>
            new InvalidOptions({ option: "uuid", expected: "a token not starting with \"~\" (reserved)", received: validate.render(u) })))
        const token = yield* tokenOr(uuid)
        const attempt = Effect.flatMap(ops.tryAcquire(token, lease), (reply) =>
          reply.acquired
            ? Ref.set(held, Option.some({ token, fence: reply.fence }))
            : Effect.fail(new LockNotAcquired({ id: base.id, remaining: reply.remaining, reason: "held" })))
        return yield* retryWhileHeld(attempt, retrySchedule(tries)).pipe(
          Effect.as(true),
          Effect.catchTag("LockNotAcquired", () => Effect.succeed(false))
        )
      }).pipe(Effect.withSpan("Lock.acquire", { attributes: { "lock.id": base.id }, captureStackTrace: false }))

    const release = Effect.flatMap(Ref.get(held), (current) =>
      Option.match(current, {
        onNone: () => Effect.succeed(false),
        onSome: ({ token }) =>
          Effect.tap(ops.release(token), (released) => (released ? Ref.set(held, Option.none()) : Effect.void))
      }))

    const extend = (amount: Duration.DurationInput) =>
      Effect.flatMap(validate.millis("extend", amount, 1), (ms) =>
        Effect.flatMap(Ref.get(held), (current) =>
          Option.match(current, {
            onNone: () => Effect.succeed(false),
            onSome: ({ token }) => Effect.map(ops.extend(token, ms, "add"), (ttl) => ttl > 0)
          })))

    const state = Effect.flatMap(tokenOr(""), ops.state)

    return {
      id: base.id,
      acquire,
      release,
      extend,
      state,
      status: Effect.map(state, (s) => (s._tag === "HeldByMe" ? "ACQUIRED" as const : "FREE" as const)),
      fence: Effect.map(Ref.get(held), Option.map((h) => h.fence))
    }
  })

/**
 * Acquires a lease for the lifetime of the current scope.
 *
 * - Waits for a held lock on `retry` (bounded by `timeout`); failing that, `LockNotAcquired`.
 * - Releases the lease when the scope closes, however it closes.
 * - Extends it on `keepAlive` in a fiber of the scope. When an extension finds the lock gone or taken,
 *   or none is confirmed before the local deadline — the lease measured from just *before* the request
 *   that won it, minus 1% + 2 ms for clock drift — `lease.lost` fails with `LockLost`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const lease = yield* Lock.acquire({ id: "ledger", lease: "10 seconds", timeout: "30 seconds" })
 *     yield* Effect.log(`fence ${lease.fence}`)
 *   })
 * )
 * Effect.runPromise(program.pipe(Effect.provide(Memory.layer)))
 *
 * @since 0.1.0
 */
export const acquire = (
  options: AcquireOptions
): Effect.Effect<Lease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Effect.gen(function*() {
    const base = yield* parseBase(options)
    const timeout = yield* validate.orDefault(options?.timeout, undefined, (u) => validate.millis("timeout", u, 0))
    const redis = yield* Redis
    const fair = options?.fair !== false
    // Where releases wake waiters, waiting until the timeout needs no polling at all.
    const push = fair && redis.subscriber !== undefined
    const schedule: Schedule.Schedule<unknown, LockNotAcquired> = Schedule.isSchedule(options?.retry)
      ? options.retry
      : options?.retry === undefined && timeout !== undefined
      ? Schedule.spaced(push ? Duration.infinity : Duration.millis(DEFAULT_DELAY))
      : retrySchedule(yield* parseRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY }))
    const keepAlive = options?.keepAlive === undefined
      ? Schedule.spaced(Math.max(1, Math.floor(base.lease / 3)))
      : options.keepAlive

    const keys = lockKeys(base.prefix, base.id)
    const ops = operations(redis, keys)
    const token = randomToken()
    const drift = driftOf(base.lease)
    const startedAt = yield* Clock.currentTimeMillis

    let lastRemaining = 0
    // The local deadline: until it passes, the lease is known to hold. Set once the lock is won.
    const deadline = yield* Ref.make(0)
    // A release waits at most for what is left of the lease (and 1 s at least): after that Redis drops
    // the key anyway, and a scope must not hang on an unreachable Redis.
    const release = Effect.gen(function*() {
      const left = (yield* Ref.get(deadline)) - (yield* Clock.currentTimeMillis)
      // Finalizers run uninterruptibly: the release must be made interruptible for the timeout to cut it.
      const released = yield* ops.release(token).pipe(Effect.interruptible, Effect.timeout(Math.max(1000, left)))
      if (!released) yield* Effect.logDebug("lease was no longer held at release")
    }).pipe(
      Effect.catchAll((error) => Effect.logWarning(`could not release the lease; it will expire (${error.message})`))
    )
    /** One try; on success the release is registered in the scope. */
    const attempt = (recheck: boolean) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          const sentAt = yield* Clock.currentTimeMillis
          const reply = yield* (fair ? ops.tryAcquireFair(token, base.lease, recheck) : ops.tryAcquire(token, base.lease))
          if (!reply.acquired) {
            lastRemaining = reply.remaining
            return yield* new LockNotAcquired({ id: base.id, remaining: reply.remaining, reason: "held" })
          }
          yield* Ref.set(deadline, sentAt + base.lease - drift)
          return { fence: reply.fence, sentAt }
        }),
        () => release
      )
    const waited = waitForTurn({
      attempt,
      schedule,
      subscriber: fair ? redis.subscriber : undefined,
      channel: keys.channel,
      token,
      leave: fair ? ops.dequeue(token) : Effect.succeed(false),
      reservation: RESERVATION
    })
    const won = yield* timeout === undefined ? waited : waited.pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new LockNotAcquired({ id: base.id, remaining: lastRemaining, reason: "timeout" })
      })
    )

    const acquiredAt = yield* Clock.currentTimeMillis
    yield* Metric.increment(metrics.acquired)
    yield* Metric.update(metrics.waitMillis, acquiredAt - startedAt)

    const lost = yield* Deferred.make<never, LockLost>()
    const lose = (reason: LockLost["reason"]) =>
      Deferred.fail(lost, new LockLost({ id: base.id, fence: won.fence, reason })).pipe(
        Effect.zipRight(Metric.increment(metrics.lost)),
        Effect.zipRight(Effect.logWarning(`lease lost (${reason})`))
      )

    /** Extends by `ms` ("add") or to `ms` ("set"); on success moves the local deadline. */
    const extendBy = (ms: number, mode: "add" | "set") =>
      Effect.gen(function*() {
        const sentAt = yield* Clock.currentTimeMillis
        const ttl = yield* ops.extend(token, ms, mode)
        if (ttl <= 0) return false
        yield* Ref.set(deadline, sentAt + ttl - driftOf(ttl))
        yield* Metric.increment(metrics.extensions)
        return true
      })

    // One fiber keeps the lease. It sleeps until the next keep-alive tick (stepped from the schedule)
    // or the local deadline, whichever comes first. At a tick it extends, waiting no longer than the
    // deadline; at the deadline, unless an extension moved it, the lease is lost.
    let tickState = keepAlive === false ? undefined : keepAlive.initial
    const nextTick = (now: number): Effect.Effect<number> =>
      keepAlive === false
        ? Effect.succeed(Infinity)
        : Effect.map(keepAlive.step(now, undefined, tickState), ([state, _, decision]) => {
          tickState = state
          return ScheduleDecision.isDone(decision) ? Infinity : Math.max(now, ScheduleIntervals.start(decision.intervals))
        })
    const keeper: Effect.Effect<void> = Effect.gen(function*() {
      let tick = yield* nextTick(acquiredAt)
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const until = yield* Ref.get(deadline)
        if (now >= until) return yield* lose(keepAlive === false ? "expired" : "unconfirmed")
        if (now < tick) {
          yield* Effect.sleep(Math.min(until, tick) - now)
          continue
        }
        const extended = yield* extendBy(base.lease, "set").pipe(
          Effect.timeout(until - now),
          Effect.catchAll((error) => Effect.as(Effect.logWarning(`lease extension failed (${error.message})`), true))
        )
        if (!extended) return yield* lose("expired")
        tick = yield* nextTick(yield* Clock.currentTimeMillis)
      }
    })
    yield* keeper.pipe(Effect.interruptible, Effect.forkScoped)

    return {
      id: base.id,
      fence: won.fence,
      lost: Deferred.await(lost),
      isLost: Deferred.isDone(lost),
      validUntil: Ref.get(deadline),
      extend: (amount) =>
        Effect.flatMap(validate.millis("extend", amount, 1), (ms) =>
          Effect.flatMap(Deferred.isDone(lost), (isLost) => (isLost ? Effect.succeed(false) : extendBy(ms, "add"))))
    } satisfies Lease
  }).pipe(
    Effect.annotateLogs("lock.id", String(options?.id)),
    Effect.withSpan("Lock.acquire", { attributes: { "lock.id": options?.id }, captureStackTrace: false })
  )

/**
 * Runs an effect while holding the lock: acquire, run, release. If the lease is lost mid-way, the
 * effect is interrupted and the result fails with `LockLost`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const sendDigest = Effect.log("sending the digest")
 * const once = sendDigest.pipe(Lock.withLock({ id: "digest", timeout: "2 seconds" }))
 * Effect.runPromise(once.pipe(Effect.provide(Memory.layer)))
 *
 * @since 0.1.0
 */
export const withLock: {
  (options: AcquireOptions): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: AcquireOptions
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, options: AcquireOptions) =>
    Effect.scoped(Effect.flatMap(acquire(options), (lease) => guard(self, lease)))
)

/**
 * Runs an effect under the lock if it is free right now (one try, no waiting): `Option.some` of its
 * result, or `Option.none` when another owner holds the lock.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 *
 * const maybe = Effect.log("cron tick").pipe(Lock.withLockIfAvailable({ id: "cron" }))
 *
 * @since 0.1.0
 */
export const withLockIfAvailable: {
  (options: Omit<AcquireOptions, "retry" | "timeout" | "fair">): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R | Redis>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: Omit<AcquireOptions, "retry" | "timeout" | "fair">
  ): Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R | Redis>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, options: Omit<AcquireOptions, "retry" | "timeout" | "fair">) =>
    acquire({ ...options, retry: { attempts: 1 }, fair: false }).pipe(
      Effect.map(Option.some),
      Effect.catchTag("LockNotAcquired", () => Effect.succeed(Option.none<Lease>())),
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(Option.none<A>()),
        onSome: (lease) => Effect.map(guard(self, lease), Option.some)
      })),
      Effect.scoped
    )
)

/** Runs `self` until it ends or the lease is lost, whichever comes first. */
const guard = <A, E, R>(self: Effect.Effect<A, E, R>, lease: Lease): Effect.Effect<A, E | LockLost, R> =>
  Effect.raceFirst(self, lease.lost)
