/**
 * A distributed counting semaphore: at most `permits` holders' worth of permits at a time, across every
 * process that uses the same id. Shaped like Effect's own `Effect.Semaphore` (`withPermits(n)(self)`), so
 * a local semaphore can be swapped for a distributed one.
 *
 * - Each holding has its own server-side expiry (Redis `TIME`) and is kept alive while held, like a
 *   lock's lease: the permits of a dead holder come back when its lease ends.
 * - `n` permits are taken all at once or not at all.
 * - Waiters are served first come, first served: a waiter for many permits is never overtaken by later
 *   waiters asking for fewer. They are woken over pub/sub where the backend pushes, else they poll.
 * - Every holding gets a fence, strictly increasing per id.
 *
 * It runs on the lock's machinery (the line of waiters, the lease keeper), so `timeout`, `retry`,
 * `fair` and `keepAlive` mean what they mean for `Lock.acquire`; errors are the lock's, naming the
 * semaphore's id.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Semaphore } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Effect.gen(function*() {
 *   const partnerApi = yield* Semaphore.make({ id: "partner-api", permits: 5 })
 *   const call = (i: number) => Effect.log(`call ${i}`).pipe(partnerApi.withPermits(1, { timeout: "10 seconds" }))
 *   yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], call, { concurrency: "unbounded" })
 * })
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Option, Schedule, Scope } from "effect"
import * as internal from "./internal/semaphore/semaphore.js"
import type { Lease, RetryOptions } from "./Lock.js"
import type { InvalidOptions, LockLost, LockNotAcquired, RedisError } from "./LockError.js"
import type { Redis } from "./Redis.js"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The resource's name, 1 to 1024 characters. Its keys are `<prefix>semaphore:{<id>}…`. */
  readonly id: string
  /**
   * How many permits exist: an integer ≥ 1. Every process using one id must agree: while anyone holds or
   * waits, a take with another value fails with `InvalidOptions` (option `"permits"`); once the semaphore
   * is empty, the next take's value is the one in force.
   */
  readonly permits: number
  /** How long a holding lasts without extension. A number is milliseconds. Default 10 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  /** Namespace for every key. Default `"effect-lock:"`. */
  readonly prefix?: string | undefined
  /**
   * How long the fence counter stays in Redis after the last take. A number is milliseconds.
   * Default 7 days. A counter that expired (or that a restart without persistence lost) starts again
   * from the server's clock in microseconds, above every fence it gave before: fences of one id still
   * strictly increase, and no key is left without a TTL.
   */
  readonly fenceTtl?: Duration.DurationInput | undefined
}

/**
 * How one take waits and keeps its permits; the same meanings as `Lock.AcquireOptions`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TakeOptions {
  /** The whole take ends by this long: `LockNotAcquired` (reason `"timeout"`), or `RedisError`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How to wait: default 3 tries 100 ms apart; with `timeout`, until it. */
  readonly retry?: RetryOptions | Schedule.Schedule<unknown, LockNotAcquired> | undefined
  /**
   * Wait in line (default `true`). `false`: plain tries that never join the line — and never overtake
   * anyone in it: they take only when nobody waits.
   */
  readonly fair?: boolean | undefined
  /** When to extend the holding; default every third of the lease; `false`: never. */
  readonly keepAlive?: Schedule.Schedule<unknown, void> | false | undefined
}

/**
 * Permits held, returned by `take`: a lock's `Lease` (`id` is the semaphore's, `fence` strictly
 * increases per semaphore id, `validUntil` is the holding's local deadline). They live as long as the
 * scope they were taken in.
 *
 * @since 0.1.0
 * @category models
 */
export interface Permits extends Lease {}

/**
 * A distributed semaphore, made by {@link make}. `n` is an integer from 1 to `permits`; anything else
 * is `InvalidOptions`, with nothing sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Semaphore {
  readonly id: string
  readonly permits: number
  /**
   * Takes `n` permits (waiting as `options` say), runs `self`, gives them back. If the holding is lost
   * mid-way, `self` is interrupted and the result fails with `LockLost`.
   */
  readonly withPermits: (n: number, options?: TakeOptions) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R>
  /** Runs `self` with `n` permits if they are free now and nobody waits: `Option.none` otherwise. */
  readonly withPermitsIfAvailable: (n: number) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R>
  /** Takes `n` permits until the scope closes; kept alive meanwhile. */
  readonly take: (
    n: number,
    options?: TakeOptions
  ) => Effect.Effect<Permits, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope>
  /** Permits free now (expired holdings count as free), out of this handle's `permits`. */
  readonly available: Effect.Effect<number, RedisError>
}

/**
 * Makes a semaphore handle. Nothing is sent to Redis until it is used.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Semaphore } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const exports = Effect.gen(function*() {
 *   const heavy = yield* Semaphore.make({ id: "heavy-exports", permits: 2, lease: "30 seconds" })
 *   yield* Effect.scoped(Effect.gen(function*() {
 *     const permits = yield* heavy.take(1, { timeout: "1 minute" })
 *     yield* Effect.log(`exporting with fence ${permits.fence}`)
 *   }))
 * })
 * exports.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Semaphore, InvalidOptions, Redis> = internal.make
