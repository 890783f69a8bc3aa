/**
 * A distributed read-write lock: any number of readers together, or one writer alone, across every
 * process that uses the same id. Shaped like Effect's own `TReentrantLock` (`readLock`, `writeLock`,
 * `withReadLock`, `withWriteLock`).
 *
 * - **Fair**: arrivals are served in order. Readers that reach the head of the line together enter
 *   together; a waiting writer holds back every reader that arrives after it, so a stream of readers never
 *   starves a writer, and a stream of writers never starves a reader.
 * - **Fenced**: every write lease has a fence that strictly increases per id; a read lease carries the
 *   fence of the last write granted before it (the version it reads).
 * - Each holder has its own expiring entry (Redis `TIME`): a dead reader's hold lapses on its own when its
 *   lease ends, never taking the other readers' with it. Holds are kept alive while held, like a lock's.
 * - Waiters are woken over pub/sub where the backend pushes, else they poll.
 *
 * The options are `Lock.acquire`'s, and mean the same: `timeout`, `retry`, `fair`, `keepAlive`,
 * `replicas`, `prefix`. The keys of an id are `<prefix>rwlock:{<id>}…`.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { ReadWriteLock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const readPrices = Effect.log("reading prices").pipe(ReadWriteLock.withReadLock({ id: "prices", timeout: "5 seconds" }))
 * const writePrices = Effect.log("writing prices").pipe(
 *   ReadWriteLock.withWriteLock({ id: "prices", timeout: "5 seconds" })
 * )
 * const program = Effect.all([readPrices, readPrices, writePrices, readPrices], { concurrency: "unbounded" })
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import { dual } from "effect/Function"
import { metrics as coreMetrics } from "./internal/core/metrics.js"
import * as internal from "./internal/rwlock/rwlock.js"
import type { AcquireOptions, Lease } from "./Lock.js"
import type { InvalidOptions, LockLost, LockNotAcquired, RedisError } from "./LockError.js"
import type { Redis } from "./Redis.js"

/**
 * Options of every entry point: `Lock.AcquireOptions`, with the same meanings and defaults (lease
 * 10 seconds; 3 tries 100 ms apart, or until `timeout`; in line; kept alive every third of the lease).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends AcquireOptions {}

/**
 * A read held: a lock's `Lease` whose `fence` is the fence of the last write granted before it (0 if
 * there was none). It lives as long as the scope it was taken in.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadLease extends Lease {}

/**
 * A write held: a lock's `Lease` whose `fence` is strictly greater than every earlier write's of this id.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteLease extends Lease {
  /**
   * Becomes a reader in one atomic step, with no writer in between: the readers waiting behind it are let
   * in, and the returned read lease carries this write's fence. It is the same hold, in the same scope
   * (kept alive and released as before); from then on this lease no longer excludes readers. Calling it
   * again returns the same read lease. Fails with `LockLost` when the write was already lost.
   */
  readonly downgrade: Effect.Effect<ReadLease, LockLost | RedisError>
}

/**
 * The shape of {@link withReadLock} and {@link withWriteLock}: data-last (`self.pipe(withReadLock(options))`)
 * or data-first (`withReadLock(self, options)`).
 *
 * @since 0.1.0
 * @category models
 */
export interface WithLock {
  (options: Options): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: Options
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis>
}

/**
 * Counters and timings of every read-write lock in the process, with the same names as the lock's,
 * tagged `lock.primitive: "ReadWriteLock"`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = coreMetrics.ReadWriteLock

/**
 * Takes a read for the lifetime of the current scope: waits while a writer holds or waits ahead, bounded
 * by `timeout` (failing that, `LockNotAcquired`), and keeps the read alive until the scope closes.
 *
 * @example
 * import { Effect } from "effect"
 * import { ReadWriteLock } from "effect-lock"
 *
 * const report = Effect.scoped(Effect.gen(function*() {
 *   const read = yield* ReadWriteLock.readLock({ id: "catalog", timeout: "10 seconds" })
 *   yield* Effect.log(`reading catalog version ${read.fence}`)
 * }))
 *
 * @since 0.1.0
 * @category combinators
 */
export const readLock = (
  options: Options
): Effect.Effect<ReadLease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  internal.readLock(options)

/**
 * Takes the write for the lifetime of the current scope: waits until nobody holds and every earlier
 * waiter has had its turn, bounded by `timeout`; kept alive until the scope closes.
 *
 * @example
 * import { Effect } from "effect"
 * import { ReadWriteLock } from "effect-lock"
 *
 * const publish = Effect.scoped(Effect.gen(function*() {
 *   const write = yield* ReadWriteLock.writeLock({ id: "catalog", timeout: "10 seconds" })
 *   yield* Effect.log(`writing catalog version ${write.fence}`)
 *   const read = yield* write.downgrade
 *   yield* Effect.log(`still reading version ${read.fence}, readers let in`)
 * }))
 *
 * @since 0.1.0
 * @category combinators
 */
export const writeLock = (
  options: Options
): Effect.Effect<WriteLease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  internal.writeLock(options)

/**
 * Runs an effect while holding a read: take, run, release. If the read is lost mid-way, the effect is
 * interrupted and the result fails with `LockLost`.
 *
 * @example
 * import { Effect } from "effect"
 * import { ReadWriteLock } from "effect-lock"
 *
 * const read = Effect.log("reading").pipe(ReadWriteLock.withReadLock({ id: "catalog" }))
 *
 * @since 0.1.0
 * @category combinators
 */
export const withReadLock: WithLock = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, options: Options) => internal.withReadLock(options, self)
)

/**
 * Runs an effect while holding the write: take, run, release. If the write is lost mid-way, the effect is
 * interrupted and the result fails with `LockLost`.
 *
 * @example
 * import { Effect } from "effect"
 * import { ReadWriteLock } from "effect-lock"
 *
 * const write = Effect.log("writing").pipe(ReadWriteLock.withWriteLock({ id: "catalog", timeout: "5 seconds" }))
 *
 * @since 0.1.0
 * @category combinators
 */
export const withWriteLock: WithLock = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, options: Options) => internal.withWriteLock(options, self)
)
