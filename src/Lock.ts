/**
 * Distributed locks on Redis, as Effect values.
 *
 * Two shapes over the same scripts:
 *
 * - {@link make} — a handle with the `@upstash/lock` contract: `acquire` / `release` / `extend` /
 *   `status`, booleans included, same options and defaults (lease 10 s, 3 attempts, 100 ms apart).
 * - {@link acquire} — the lock as a scoped resource: released when the scope closes, kept alive on a
 *   `Schedule`; `lease.lost` fails with `LockLost` as soon as the lease cannot be confirmed.
 * - {@link withLock} / {@link withLease} — run an effect while holding the lock; it is interrupted with
 *   `LockLost` if the lease is lost. `withLease` hands the body the lease (and its fence).
 *
 * Every acquisition carries a strictly increasing fence. The machinery lives in `internal/lock/`: the
 * line of waiters (`line.ts`), the held lease and its keeper (`lease.ts`), the parity handle
 * (`handle.ts`).
 *
 * A lease is a time-bounded promise from one Redis: it makes duplicate work rare (efficiency); for
 * correctness, pass {@link Lease.fence} to the resource you protect and have it reject older fences.
 *
 * Run programs with `NodeRuntime.runMain` (as the examples do): on SIGINT/SIGTERM it interrupts the
 * program, so scopes close and held locks are released at once instead of waiting out their lease.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const nightly = Effect.gen(function*() {
 *   const lease = yield* Lock.acquire({ id: "nightly-report", lease: "30 seconds", timeout: "5 seconds" })
 *   yield* Effect.log(`writing with fence ${lease.fence}`)
 * }).pipe(Effect.scoped)
 *
 * nightly.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Data, Duration, type Option, type Schedule, type Scope } from "effect"
import { dual } from "effect/Function"
import { metrics as coreMetrics } from "./internal/core/metrics.js"
import * as handle from "./internal/lock/handle.js"
import * as inspection from "./internal/lock/inspect.js"
import * as internal from "./internal/lock/lock.js"
import * as many from "./internal/lock/many.js"
import type { InvalidOptions, LockLost, LockNotAcquired, RedisError } from "./LockError.js"
import type { Redis } from "./Redis.js"

/**
 * How often to try and how long to wait between tries. `attempts` counts every try, the first included.
 *
 * @since 0.1.0
 * @category models
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
 * @category models
 */
export interface Options {
  /** The resource's name. 1 to 1024 characters; any text is fine (it is never spliced into Lua). */
  readonly id: string
  /** How long a lease lasts without extension. A number is milliseconds. Default 10 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  readonly retry?: RetryOptions | undefined
  /** Namespace for every key. Default `"effect-lock:"`; the lock's key is `<prefix>lock:{<id>}`. */
  readonly prefix?: string | undefined
  /**
   * How long the fence counter stays in Redis after the last acquisition. A number is milliseconds.
   * Default 7 days. A counter that expired (or that a restart without persistence lost) starts again
   * from the server's clock in microseconds, above every fence it gave before: fences of one id still
   * strictly increase, and no key is left without a TTL.
   */
  readonly fenceTtl?: Duration.DurationInput | undefined
}

/**
 * Options of {@link acquire}, {@link withLock} and {@link withLockIfAvailable}.
 *
 * @since 0.1.0
 * @category models
 */
export interface AcquireOptions extends Omit<Options, "retry"> {
  /**
   * How to wait for a held lock: {@link RetryOptions}, or any `Schedule` fed the `LockNotAcquired` of each
   * failed try. Default: 3 tries 100 ms apart; when `timeout` is set, tries until it: on each wake-up
   * where the backend pushes them (and every 400 ms regardless, which keeps the waiter's place in line),
   * else every 100 ms.
   */
  readonly retry?: RetryOptions | Schedule.Schedule<unknown, LockNotAcquired> | undefined
  /**
   * The whole acquisition ends by this long, whatever Redis does: `LockNotAcquired` (reason `"timeout"`)
   * when the lock was held all along, `RedisError` when Redis did not answer in time.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Wait in line (default `true`): waiters are served first come, first served, and a release hands the
   * lock straight to the next waiter, woken over pub/sub where the backend has it (polling bounded by the
   * holder's lease where it does not). `false`: every try is a plain SET NX, whoever comes first wins.
   */
  readonly fair?: boolean | undefined
  /**
   * When to extend the lease while it is held; each extension makes it at least the full `lease` again.
   * Default: every third of the lease. `false` disables extension: the lease then simply runs out.
   */
  readonly keepAlive?: Schedule.Schedule<unknown, void> | false | undefined
  /**
   * Label this lock's metrics with `lock.id` (default `false`: one id per label value is the user's
   * choice of cardinality).
   */
  readonly metricsLabel?: boolean | undefined
  /**
   * How many replicas must have the winning write (Redis `WAIT` on the master of the lock's slot)
   * before the lock counts as held: a failover then cannot lose it or repeat its fence. Default 0 (no
   * wait). Not confirmed within `replicaTimeout`: the lock is given back and the acquisition fails with
   * a `RedisError` (operation `"wait"`). Only on backends with replicas (ioredis); on others, any value
   * above 0 is `InvalidOptions`.
   *
   * @example
   * import { Effect } from "effect"
   * import { Lock } from "effect-lock"
   *
   * const confirmed = Lock.withLock({ id: "ledger", replicas: 1, replicaTimeout: "50 millis" })(
   *   Effect.log("the lock and its fence are on a replica")
   * )
   */
  readonly replicas?: number | undefined
  /**
   * How long to wait for `replicas` to confirm (less than the lease, and never past `timeout`). While
   * it waits, other commands on the connection to that master wait too. Default 100 ms.
   */
  readonly replicaTimeout?: Duration.DurationInput | undefined
}

/**
 * What the handle's parity `acquire` may override for one call (as in `@upstash/lock`).
 *
 * @since 0.1.0
 * @category models
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
 * @category models
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
 * @category combinators
 */
export const State = Data.taggedEnum<State>()

/**
 * The `@upstash/lock`-compatible handle returned by {@link make}.
 *
 * @since 0.1.0
 * @category models
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
 * @category models
 */
export interface Lease {
  readonly id: string
  /** Strictly greater than the fence of every earlier acquisition of this id. */
  readonly fence: number
  /** Fails with `LockLost` once the lease is lost; never succeeds. Race your work against it. */
  readonly lost: Effect.Effect<never, LockLost>
  /** Whether the lease has been lost. */
  readonly isLost: Effect.Effect<boolean>
  /**
   * The local deadline before which the lease is known to hold, in monotonic milliseconds
   * (`Clock.currentTimeNanos` / 1e6, which a wall-clock step does not move). It only ever moves later.
   */
  readonly validUntil: Effect.Effect<number>
  /** Adds time to the lease (never shortens it); `false` when the lease is no longer ours. */
  readonly extend: (amount: Duration.DurationInput) => Effect.Effect<boolean, RedisError | InvalidOptions>
}

/**
 * Counters and timings of every lock in the process. Read them with `Metric.value`, or export them with
 * any Effect metrics exporter. They carry the label `lock.id` only for acquisitions with
 * `metricsLabel: true`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = coreMetrics.Lock

/**
 * Makes an `@upstash/lock`-compatible handle. Nothing is sent to Redis until a method runs.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
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
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Lock, InvalidOptions, Redis> =>
  handle.make(
    options,
    (reply) => reply._tag === "Free" ? State.Free() : State[reply._tag]({ remaining: Duration.millis(reply.remaining) })
  )

/**
 * Acquires a lease for the lifetime of the current scope.
 *
 * - Waits for a held lock in line (or on `retry`), bounded by `timeout`; failing that, `LockNotAcquired`.
 * - Releases the lease when the scope closes, however it closes.
 * - Extends it on `keepAlive`. When an extension finds the lock gone or taken, or none is confirmed
 *   before the local deadline — the lease measured from just *before* the request that won it, minus
 *   1% + 2 ms for clock drift — `lease.lost` fails with `LockLost`. The work is not interrupted by
 *   `acquire` itself: race it against `lease.lost`, or use {@link withLease}, which does.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const lease = yield* Lock.acquire({ id: "ledger", lease: "10 seconds", timeout: "30 seconds" })
 *     yield* Effect.log(`fence ${lease.fence}`)
 *   })
 * )
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquire = (
  options: AcquireOptions
): Effect.Effect<Lease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> => internal.acquire(options)

/**
 * Runs `f(lease)` while holding the lock: acquire, run, release. The body gets the {@link Lease}, so it
 * can pass `lease.fence` to what it writes. If the lease is lost mid-way, the body is interrupted and
 * the result fails with `LockLost`. Only the lease is scoped here: resources the body adds to a `Scope`
 * belong to the caller's.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const write = (fence: number) => Effect.log(`UPDATE ledger SET … WHERE fence < ${fence}`)
 * const program = Lock.withLease({ id: "ledger", timeout: "5 seconds" }, (lease) => write(lease.fence))
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLease = <A, E, R>(
  options: AcquireOptions,
  f: (lease: Lease) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  internal.withHeld(options, f)

/**
 * Runs an effect while holding the lock: acquire, run, release. If the lease is lost mid-way, the
 * effect is interrupted and the result fails with `LockLost`. Use {@link withLease} when the effect
 * needs the fence.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const sendDigest = Effect.log("sending the digest")
 * const once = sendDigest.pipe(Lock.withLock({ id: "digest", timeout: "2 seconds" }))
 * once.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category combinators
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
  <A, E, R>(self: Effect.Effect<A, E, R>, options: AcquireOptions) => internal.withHeld(options, () => self)
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
 * @category combinators
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
    internal.withHeldIfAvailable(options, self)
)

/**
 * Options of {@link acquireAll} and {@link withLocks}: {@link AcquireOptions} for several ids at once.
 * `timeout` bounds the whole acquisition; every other option applies to each id.
 *
 * @since 0.1.0
 * @category models
 */
export interface AcquireAllOptions extends Omit<AcquireOptions, "id"> {
  /**
   * The ids to take: 1 to 1,000, all different (anything else is `InvalidOptions`, with nothing sent). Ids
   * whose keys share a hash slot are taken by one script, at once: every id on one server; on a Redis
   * Cluster, ids with a common `{tag}` at their start (e.g. `"{order-7}:stock"`, `"{order-7}:invoice"`).
   */
  readonly ids: ReadonlyArray<string>
}

/**
 * Takes several locks, all or none, for the lifetime of the current scope: one {@link Lease} per id, in
 * the order of `ids`, each with its own fence. Never holding some while reporting failure: if the rest
 * cannot be had within `timeout`, everything taken is released before the failure is reported.
 *
 * Two callers asking for overlapping sets, in any order, never deadlock: ids that share a hash slot (all
 * of them, on one server) are taken by one atomic script, waiting in every id's line; ids across slots
 * (on a Redis Cluster) are taken one slot after the other in one global order. Ids taken together are
 * kept alive together, and lost together.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const transfer = Effect.scoped(Effect.gen(function*() {
 *   const [from, to] = yield* Lock.acquireAll({ ids: ["account-1", "account-2"], timeout: "5 seconds" })
 *   yield* Effect.log(`moving money with fences ${from.fence} and ${to.fence}`)
 * }))
 * transfer.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquireAll = (
  options: AcquireAllOptions
): Effect.Effect<ReadonlyArray<Lease>, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  many.acquireAll(options)

/**
 * Runs an effect while holding several locks ({@link acquireAll}): take them all, run, release them. If
 * any lease is lost mid-way, the effect is interrupted and the result fails with `LockLost`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 *
 * const rebalance = Effect.log("both shards are mine").pipe(
 *   Lock.withLocks({ ids: ["shard-3", "shard-8"], timeout: "10 seconds" })
 * )
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLocks: {
  (options: AcquireAllOptions): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: AcquireAllOptions
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, options: AcquireAllOptions) => many.withLocks(options, self)
)

/**
 * What {@link inspect} sees of a lock: `free`, `held`, or `reserved` (just released and handed to the next
 * waiter, who has a moment to claim it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Inspection {
  readonly id: string
  readonly state: "free" | "held" | "reserved"
  /** Milliseconds left on the holder's lease (or the reservation); 0 when free. */
  readonly remaining: number
  /** The fence of the latest acquisition (the holder's, when held); 0 if the lock was never taken. */
  readonly fence: number
}

/**
 * A read-only look at a lock, for an observer that holds no token (a dashboard, the command line's
 * `status`): one script, nothing written. Options as the lock's: `id` and `prefix`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 *
 * const report = Effect.map(Lock.inspect({ id: "nightly-report" }), (lock) => `${lock.state}, fence ${lock.fence}`)
 *
 * @since 0.1.0
 * @category inspection
 */
export const inspect: (
  options: { readonly id: string; readonly prefix?: string | undefined }
) => Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> = inspection.inspect
