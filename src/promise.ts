/**
 * The Promise API, for code not written in Effect: `Lock`, `Semaphore` and `Debounce` as classes whose
 * methods return Promises, over the same scripts, leases and layers as the Effect API.
 *
 * - {@link Lock} has the `@upstash/lock` contract (`acquire` / `release` / `extend` / `getStatus`,
 *   same options and defaults), so moving from `@upstash/lock` is an import change; and, beyond it,
 *   {@link Lock.using} and {@link Lock.acquireOrThrow}: a kept-alive lease whose `AbortSignal` aborts the
 *   moment the lease is lost, released by `await using`.
 * - `redis` is an `ioredis` client (`Redis` or `Cluster`), an `@upstash/redis` client, or any layer of
 *   effect-lock's `Redis` service (`Memory.layer` for the embedded store, `IoRedis.layer(…)`, …).
 *   Every object given the same client shares one runtime; a client you pass in is never closed.
 * - Rejections are the Error classes of this module ({@link LockNotAcquired}, {@link LockLost},
 *   {@link RedisError}, {@link InvalidOptions}): `instanceof` works, `_tag` and the fields are those of
 *   the Effect error, which is their `cause`. Errors your own callbacks throw come back unchanged.
 * - Nothing of it keeps the process alive while none of its promises is pending: a script ends after
 *   its last `await`, an idle client or a held lease does not hold it open.
 *
 * @example
 * import { Redis } from "ioredis"
 * import { Lock } from "effect-lock/promise"
 *
 * const redis = new Redis("redis://127.0.0.1:6379")
 * const lock = new Lock({ id: "nightly-report", redis, lease: 30_000 })
 *
 * // @upstash/lock style
 * if (await lock.acquire()) {
 *   try {
 *     console.log("writing the report")
 *   } finally {
 *     await lock.release()
 *   }
 * }
 *
 * // kept alive while the work runs; `signal` aborts if the lease is lost
 * await lock.using(async (signal) => {
 *   await fetch("https://example.com/rebuild", { method: "POST", signal })
 * }, { timeout: 5_000 })
 *
 * await redis.quit()
 *
 * @since 0.1.0
 */
import type { Duration, Layer } from "effect"
import type * as EffectDebounce from "./Debounce.js"
import * as connection from "./internal/promise/connection.js"
import * as debounce from "./internal/promise/debounce.js"
import * as errors from "./internal/promise/errors.js"
import * as lock from "./internal/promise/lock.js"
import * as semaphore from "./internal/promise/semaphore.js"
import type * as EffectLock from "./Lock.js"
import type * as LockError from "./LockError.js"
import type { Redis } from "./Redis.js"
import type * as EffectSemaphore from "./Semaphore.js"

/**
 * What an ioredis client (`Redis` or `Cluster`, the package's own dependency) looks like to this
 * module: how it is told apart from an `@upstash/redis` client.
 *
 * @since 0.1.0
 * @category clients
 */
export interface IoRedisClient {
  readonly isCluster: boolean
  readonly duplicate: (...args: Array<any>) => unknown
  readonly evalsha: (...args: Array<any>) => Promise<unknown>
}

/**
 * What an `@upstash/redis` client (any entry: `@upstash/redis`, `/cloudflare`, `/fastly`) looks like to
 * this module. Waiters on it poll rather than hold Server-Sent-Events streams open (an open stream keeps
 * the process from ending after its last call); for push wake-ups pass `Upstash.layerClient(redis)`
 * instead, and {@link dispose} it at the end.
 *
 * @since 0.1.0
 * @category clients
 */
export interface UpstashClient {
  readonly eval: (script: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
  readonly evalsha: (sha1: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
}

/**
 * Where the locks live:
 *
 * - an ioredis `Redis` or `Cluster` you made (through `IoRedis.layerClient`);
 * - an `@upstash/redis` client you made (through `Upstash.layerClient`);
 * - a layer of the `Redis` service: `Memory.layer` (the embedded store, one process), `MemoryTest.layer`,
 *   `IoRedis.layer({ url })`, `Upstash.layerConfig()`… A layer that creates its client owns it: call
 *   {@link dispose} when you are done with it.
 *
 * Objects given the same value share one runtime (one timer, one subscriber connection for waiters).
 *
 * @since 0.1.0
 * @category clients
 */
export type Client = IoRedisClient | UpstashClient | Layer.Layer<Redis, unknown>

/**
 * How often to try and how long to wait between tries (a number is milliseconds), as `@upstash/lock`'s
 * `retry`: default 3 tries, 100 ms apart.
 *
 * @since 0.1.0
 * @category options
 */
export type RetryOptions = EffectLock.RetryOptions

/**
 * Options of {@link Lock}: `@upstash/lock`'s (`id`, `redis`, `lease` in ms, default 10 s, `retry`), and
 * `prefix` (the key is `<prefix>lock:{<id>}`, default prefix `"effect-lock:"`).
 *
 * @since 0.1.0
 * @category options
 */
export interface LockOptions extends EffectLock.Options {
  readonly redis: Client
}

/**
 * What one `acquire` may override (as in `@upstash/lock`): `lease`, `retry`, and a caller-chosen `uuid`.
 *
 * @since 0.1.0
 * @category options
 */
export type AcquireConfig = EffectLock.AcquireOverrides

/**
 * How {@link Lock.using} and {@link Lock.acquireOrThrow} wait for the lock.
 *
 * @since 0.1.0
 * @category options
 */
export interface HoldOptions {
  /**
   * Wait in line at most this long (a number is milliseconds); then `LockNotAcquired` (reason
   * `"timeout"`). Without it, the lock's `retry` (default 3 tries, 100 ms apart).
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** Tries and delay instead of the lock's. */
  readonly retry?: RetryOptions | undefined
  /** This holding's lease instead of the lock's; it is extended every third of it while held. */
  readonly lease?: Duration.DurationInput | undefined
  /** `false`: plain tries that do not wait in line (default `true`: first come, first served). */
  readonly fair?: boolean | undefined
}

/**
 * A held lease, from `acquireOrThrow`: kept alive until released. `await using lease = …` releases it
 * at the end of the block.
 *
 * @example
 * import { Lock } from "effect-lock/promise"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * declare const writeLedger: (entry: { readonly fence: number }, signal: AbortSignal) => Promise<void>
 *
 * const lock = new Lock({ id: "ledger", redis: Memory.layer })
 * {
 *   await using lease = await lock.acquireOrThrow({ timeout: "5 seconds" })
 *   await writeLedger({ fence: lease.fence }, lease.signal)
 * } // released here
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  readonly id: string
  /** Strictly greater than the fence of every earlier holding of this id: hand it to what you write. */
  readonly fence: number
  /**
   * Aborted, with a {@link LockLost} as its `reason`, the moment the lease is found lost (the key taken
   * or gone, or no extension confirmed in time); with a {@link RedisError} if the client is closed
   * meanwhile. Pass it to `fetch` and the like.
   */
  readonly signal: AbortSignal
  /** Whether `signal` has aborted. */
  readonly lost: boolean
  /** Adds time (a number is milliseconds); `false` when the lease is no longer held. */
  extend(amount: Duration.DurationInput): Promise<boolean>
  /** Stops keeping the lease and releases it; never rejects, and does nothing the second time. */
  release(): Promise<void>
  /** {@link Lease.release}. */
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * `@upstash/lock`'s status: `"ACQUIRED"` when this object holds the lock, else `"FREE"`.
 *
 * @since 0.1.0
 * @category models
 */
export type LockStatus = "ACQUIRED" | "FREE"

/**
 * Who holds the lock, as seen by one {@link Lock}; `remaining` is in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export type State =
  | { readonly _tag: "Free" }
  | { readonly _tag: "HeldByMe"; readonly remaining: number }
  | { readonly _tag: "HeldByOther"; readonly remaining: number }

/**
 * A distributed lock (see {@link Lock}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Lock {
  readonly id: string
  /**
   * Tries up to `retry.attempts` times, `retry.delay` apart; `true` when this object holds the lock
   * afterwards. On an object that holds it already, renews the lease (same fence). Contention is
   * `false`; a Redis fault rejects with {@link RedisError}, a bad option with {@link InvalidOptions}.
   */
  acquire(config?: AcquireConfig): Promise<boolean>
  /** Releases the lock if this object holds it; `true` when it did. */
  release(): Promise<boolean>
  /** Adds time to the lease if this object holds it (a number is milliseconds); `true` when it did. */
  extend(amount: Duration.DurationInput): Promise<boolean>
  /** `"ACQUIRED"` when this object holds the lock, else `"FREE"` (also when another owner does). */
  getStatus(): Promise<LockStatus>
  /** The richer status: free, held by this object, or held by another owner, with the time left. */
  getState(): Promise<State>
  /** The fence of this object's current acquisition, if it holds the lock. */
  getFence(): Promise<number | undefined>
  /**
   * Waits for the lock (see {@link HoldOptions}) and returns the {@link Lease}, kept alive until
   * released; rejects with {@link LockNotAcquired} when it is not acquired. Independent of
   * `acquire`/`release`: it takes a lease of its own.
   */
  acquireOrThrow(options?: HoldOptions): Promise<Lease>
  /**
   * Runs `f` while holding the lock: acquire (as `acquireOrThrow`), run, release. `signal` aborts the
   * moment the lease is lost; `using` then rejects with that {@link LockLost} once `f` has settled,
   * whatever `f` returned. Otherwise it settles as `f` did.
   */
  using<A>(f: (signal: AbortSignal) => A | PromiseLike<A>, options?: HoldOptions): Promise<A>
}

/**
 * Makes a lock; nothing is sent to Redis until a method runs. The options are checked then, and a bad
 * one rejects every call with {@link InvalidOptions}.
 *
 * @example
 * import { Redis } from "@upstash/redis"
 * import { Lock } from "effect-lock/promise"
 *
 * const lock = new Lock({ id: "invoice-42", redis: Redis.fromEnv(), lease: 5000, retry: { attempts: 3, delay: 100 } })
 * if (await lock.acquire()) {
 *   await lock.extend(2000) // + 2 s
 *   await lock.release()
 * }
 *
 * @since 0.1.0
 * @category constructors
 */
export const Lock: new(options: LockOptions) => Lock = lock.Lock

/**
 * Options of {@link Semaphore}: `id`, `redis`, `permits` (how many exist: every process using the id
 * must agree), `lease` (default 10 s) and `prefix`.
 *
 * @since 0.1.0
 * @category options
 */
export interface SemaphoreOptions extends EffectSemaphore.Options {
  readonly redis: Client
}

/**
 * How one holding of a {@link Semaphore} waits: {@link HoldOptions} without `lease` (the semaphore's),
 * and how many permits it takes.
 *
 * @since 0.1.0
 * @category options
 */
export interface TakeOptions extends Omit<HoldOptions, "lease"> {
  /** How many of the semaphore's permits this holding takes, all at once: 1 (default) to `permits`. */
  readonly permits?: number | undefined
}

/**
 * A distributed counting semaphore (see {@link Semaphore}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Semaphore {
  readonly id: string
  readonly permits: number
  /** Takes permits (waiting as `options` say) and returns them as a {@link Lease}, kept alive until released. */
  acquireOrThrow(options?: TakeOptions): Promise<Lease>
  /** Runs `f` holding permits, as {@link Lock.using} does with the lock. */
  using<A>(f: (signal: AbortSignal) => A | PromiseLike<A>, options?: TakeOptions): Promise<A>
  /** Permits free now. */
  available(): Promise<number>
}

/**
 * Makes a semaphore: at most `permits` permits held at a time across every process using the id, fair
 * and fenced, each holding kept alive while held.
 *
 * @example
 * import { Redis } from "ioredis"
 * import { Semaphore } from "effect-lock/promise"
 *
 * const partnerApi = new Semaphore({ id: "partner-api", redis: new Redis(), permits: 5 })
 * const call = (order: number) =>
 *   partnerApi.using((signal) => fetch(`https://partner.example/orders/${order}`, { signal }), { timeout: 10_000 })
 * await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(call))
 *
 * @since 0.1.0
 * @category constructors
 */
export const Semaphore: new(options: SemaphoreOptions) => Semaphore = semaphore.Semaphore

/**
 * What happened to one call: `Ran` (the callback ran in this call; `result` is its value),
 * `Superseded` (a later call took over) or `Suppressed` (leading edge: the burst already ran).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A> = EffectDebounce.Outcome<A>

/**
 * Options of {@link Debounce}: `@upstash/lock`'s (`id`, `redis`, `wait` in ms, default 1 s,
 * `callback`), plus `maxWait`, `leading`, `key`, `lease` and `prefix` as in the Effect `Debounce`.
 *
 * @since 0.1.0
 * @category options
 */
export interface DebounceOptions<Args extends ReadonlyArray<unknown>, A>
  extends Omit<EffectDebounce.Options<Args, unknown>, "callback">
{
  readonly redis: Client
  /** Runs with the last call's arguments (plain JSON values); may return a Promise. */
  readonly callback: (...args: Args) => A | PromiseLike<A>
}

/**
 * A debounced operation (see {@link Debounce}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Debounce<Args extends ReadonlyArray<unknown>, A> {
  readonly id: string
  /**
   * Records a call and resolves once its fate is decided (after `wait`, or at once on the leading edge).
   * A callback that throws rejects the call that ran it with that error.
   */
  call(...args: Args): Promise<Outcome<A>>
}

/**
 * Makes a debounced operation: calls from any number of processes within `wait` collapse into one run
 * of `callback`, with the last call's arguments.
 *
 * @example
 * import { Redis } from "@upstash/redis"
 * import { Debounce } from "effect-lock/promise"
 *
 * const reindex = new Debounce({
 *   id: "reindex",
 *   redis: Redis.fromEnv(),
 *   wait: 2000,
 *   callback: async (tenant: string) => console.log(`reindexing ${tenant}`)
 * })
 * const outcome = await reindex.call("acme") // { _tag: "Ran", … } or { _tag: "Superseded" }
 *
 * @since 0.1.0
 * @category constructors
 */
export const Debounce: new<Args extends ReadonlyArray<unknown>, A>(
  options: DebounceOptions<Args, A>
) => Debounce<Args, A> = debounce.Debounce

/**
 * Closes what this module opened for `redis`: leases still held through it are released (their signals
 * abort with a {@link RedisError}), then its subscriber connection, event streams and timer; for a
 * layer, whatever the layer owns. A client you passed in stays open, and the next call on it starts
 * afresh. An ioredis client that ends (`quit`) is disposed of by itself.
 *
 * @since 0.1.0
 * @category clients
 */
export const dispose: (redis: Client) => Promise<void> = connection.dispose

/**
 * The lock could not be acquired within the tries or the timeout: another owner holds it.
 *
 * @since 0.1.0
 * @category errors
 */
export interface LockNotAcquired extends Error {
  readonly _tag: "LockNotAcquired"
  readonly id: string
  /** Milliseconds the holder's lease still had when last seen (0 if unknown). */
  readonly remaining: number
  readonly reason: "held" | "timeout"
  readonly cause: LockError.LockNotAcquired
}

/**
 * The lock (or permits) could not be had: another owner holds it, or the timeout passed (`reason`).
 *
 * @since 0.1.0
 * @category errors
 */
export const LockNotAcquired: new(cause: LockError.LockNotAcquired) => LockNotAcquired = errors.LockNotAcquired

/**
 * A lease was lost while held: the key was taken or gone, or no extension was confirmed in time.
 *
 * @since 0.1.0
 * @category errors
 */
export interface LockLost extends Error {
  readonly _tag: "LockLost"
  readonly id: string
  /** The fence of the lost lease. */
  readonly fence: number
  readonly reason: "expired" | "unconfirmed"
  readonly cause: LockError.LockLost
}

/**
 * A held lease was lost (it expired, or could not be confirmed before its local deadline).
 *
 * @since 0.1.0
 * @category errors
 */
export const LockLost: new(cause: LockError.LockLost) => LockLost = errors.LockLost

/**
 * Redis, or the transport to it, failed (also: the client was closed while a call ran). Never carries
 * credentials.
 *
 * @since 0.1.0
 * @category errors
 */
export interface RedisError extends Error {
  readonly _tag: "RedisError"
  /** What was being done, e.g. `"eval lock.acquire"`. */
  readonly operation: string
  readonly detail: string
  readonly cause: LockError.RedisError
}

/**
 * Redis failed or did not answer in time; never reported as contention.
 *
 * @since 0.1.0
 * @category errors
 */
export const RedisError: new(cause: LockError.RedisError) => RedisError = errors.RedisError

/**
 * An option or argument was rejected before anything was sent to Redis.
 *
 * @since 0.1.0
 * @category errors
 */
export interface InvalidOptions extends Error {
  readonly _tag: "InvalidOptions"
  /** The option at fault, e.g. `"lease"`, `"retry.attempts"` or `"redis"`. */
  readonly option: string
  readonly expected: string
  readonly received: string
  readonly cause: LockError.InvalidOptions
}

/**
 * An option was rejected before anything was sent to Redis.
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidOptions: new(cause: LockError.InvalidOptions) => InvalidOptions = errors.InvalidOptions

/**
 * Every error this module rejects with (besides your callbacks' own).
 *
 * @since 0.1.0
 * @category errors
 */
export type PromiseError = LockNotAcquired | LockLost | RedisError | InvalidOptions

/**
 * `@upstash/lock`'s type names, so that its imports keep working.
 *
 * @since 0.1.0
 * @category @upstash/lock names
 */
export type LockCreateConfig = LockOptions

/**
 * `@upstash/lock`'s name for the options of `acquire`.
 *
 * @since 0.1.0
 * @category @upstash/lock names
 */
export type LockAcquireConfig = AcquireConfig

/**
 * `@upstash/lock`'s name for the retry options.
 *
 * @since 0.1.0
 * @category @upstash/lock names
 */
export type RetryConfig = RetryOptions

/**
 * `@upstash/lock`'s name for the options of `new Debounce`.
 *
 * @since 0.1.0
 * @category @upstash/lock names
 */
export type DebounceConfig<Args extends ReadonlyArray<unknown>, A> = DebounceOptions<Args, A>
