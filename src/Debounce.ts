/**
 * Distributed debounce: many calls, from any number of processes, within `wait` collapse into one run
 * of the callback, with the last call's arguments (the `@upstash/lock` `Debounce` contract).
 *
 * A debounced operation is a service: declare a tag for it and provide it with {@link layer}. `call`
 * says what happened to that call: it ran here (with the callback's result), or a later call superseded
 * it, or (leading edge) it fell inside a burst that already ran.
 *
 * Beyond the parity: `maxWait` (a run at least once per `maxWait` under a steady stream of calls),
 * `leading` (run on the first call of a burst, then stay quiet), per-key debouncing (`key`), runs that
 * never overlap (each run holds a Lock), and state in Redis that always carries a TTL, under its own
 * key namespace.
 *
 * @example
 * import { Context, Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Debounce } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * class Reindex extends Context.Tag("app/Reindex")<Reindex, Debounce.Debounce<[tenant: string], number>>() {}
 *
 * const ReindexLive = Debounce.layer(Reindex, {
 *   id: "reindex",
 *   wait: "2 seconds",
 *   key: (tenant) => tenant,
 *   callback: (tenant) => Effect.as(Effect.log(`reindexing ${tenant}`), 1)
 * })
 *
 * const program = Effect.flatMap(Reindex, (reindex) => reindex.call("acme"))
 * program.pipe(Effect.provide(ReindexLive), Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { type Cause, type Context, Effect, Layer } from "effect"
import * as internal from "./internal/debounce/debounce.js"
import type { InvalidOptions, RedisError } from "./LockError.js"
import type { Redis } from "./Redis.js"

/**
 * What happened to one call.
 *
 * - `Ran`: the callback ran in this call (`edge` says why) and returned `result`.
 * - `Superseded`: a later call in the same burst took over; it runs (or ran) with its arguments. If that
 *   call dies first, another caller adopts the run (within `wait` + `lease`): the burst still runs once.
 * - `Suppressed`: (leading mode) the burst already ran on its first call.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A> =
  | { readonly _tag: "Ran"; readonly edge: "leading" | "trailing" | "maxWait"; readonly result: A }
  | { readonly _tag: "Superseded" }
  | { readonly _tag: "Suppressed" }

/**
 * Every error a call can fail with, besides the callback's own: `InvalidOptions` for arguments JSON
 * cannot carry (or a `key` that is not a string of at most 511 characters), `RedisError` for a Redis fault,
 * including a run lock that could not be kept (the run was interrupted). Waiting for a run still going
 * has no limit, so there is no `LockNotAcquired`.
 *
 * @since 0.1.0
 * @category models
 */
export type DebounceError = RedisError | InvalidOptions

/**
 * A debounced operation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Debounce<Args extends ReadonlyArray<unknown>, A, E = never> {
  readonly id: string
  /**
   * Records a call and resolves once its fate is decided: after `wait` (trailing), or at once (leading).
   * Arguments must be plain JSON values, nested at most 512 deep (they travel through Redis to whichever
   * call runs).
   */
  readonly call: (...args: Args) => Effect.Effect<Outcome<A>, E | DebounceError>
}

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Args extends ReadonlyArray<unknown>, Out> {
  /** The operation's name: 1 to 512 characters. */
  readonly id: string
  /**
   * What to run: returns an Effect (its requirements stay in the layer's type), a Promise or a value.
   * It receives the last call's arguments.
   */
  readonly callback: (...args: Args) => Out
  /** Quiet time that ends a burst. A number is milliseconds. Default 1 second. */
  readonly wait?: Duration.DurationInput | undefined
  /** Under a steady stream of calls, run at least once per `maxWait` (≥ `wait`). Default: none. */
  readonly maxWait?: Duration.DurationInput | undefined
  /** Run on the first call of a burst, then suppress until the burst goes quiet. Default false. */
  readonly leading?: boolean | undefined
  /**
   * Debounce per key: calls for one key never suppress another's. A key is a well-formed string of at
   * most 511 characters. Default: one key for all calls.
   */
  readonly key?: ((...args: Args) => string) | undefined
  /**
   * The lease of a run: a run holds its key's run lock, and its claim on the burst, for this long,
   * renewed while it runs. A burst whose last caller dies (during its wait or its run) is run by
   * another caller within `wait` and one lease. A number is milliseconds. Default 10 seconds.
   */
  readonly lease?: Duration.DurationInput | undefined
  /** Namespace for every key. Default `"effect-lock:"`; state lives under `<prefix>debounce:{<id>}…`. */
  readonly prefix?: string | undefined
}

/**
 * The callback's success type, whether it returns an Effect, a Promise or a value.
 *
 * @since 0.1.0
 * @category models
 */
export type Success<Out> = Out extends Effect.Effect<infer A, infer _E, infer _R> ? A : Awaited<Out>
/**
 * The callback's error type: its Effect's, or `UnknownException` for a rejected Promise or a throw.
 *
 * @since 0.1.0
 * @category models
 */
export type Failure<Out> = Out extends Effect.Effect<infer _A, infer E, infer _R> ? E : Cause.UnknownException
/**
 * The callback's requirements.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements<Out> = Out extends Effect.Effect<infer _A, infer _E, infer R> ? R : never

/**
 * Builds a debounced operation. Options are checked here, once, before anything reaches Redis: a bad one
 * fails with `InvalidOptions` (the only error `make` has), so options built at run time can be handled.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Debounce } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Effect.gen(function*() {
 *   const save = yield* Debounce.make({ id: "autosave", wait: 500, callback: (doc: string) => Effect.log(doc) })
 *   yield* Effect.all([save.call("draft 1"), save.call("draft 2")], { concurrency: "unbounded" })
 * })
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <Args extends ReadonlyArray<unknown>, Out>(
  options: Options<Args, Out>
) => Effect.Effect<Debounce<Args, Success<Out>, Failure<Out>>, InvalidOptions, Redis | Requirements<Out>> =
  internal.make

/**
 * Provides a debounced operation as the service of `tag`. The callback's requirements stay in the
 * layer's type; its error type is `never`. Options written in code are checked when the layer is built,
 * and a bad one stops it with an `InvalidOptions` defect (its message names the option), rather than
 * adding an error every layer above it would carry. For options that come from outside, use {@link make}
 * and handle its `InvalidOptions`.
 *
 * @example
 * import { Context, Effect } from "effect"
 * import { Debounce } from "effect-lock"
 *
 * class Notify extends Context.Tag("app/Notify")<Notify, Debounce.Debounce<[userId: string], void>>() {}
 *
 * const NotifyLive = Debounce.layer(Notify, {
 *   id: "notify",
 *   wait: "5 seconds",
 *   maxWait: "1 minute",
 *   key: (userId) => userId,
 *   callback: (userId) => Effect.log(`one digest for ${userId}`)
 * })
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, S extends Debounce<any, any, any>, Out extends ResultFor<S>>(
  tag: Context.Tag<I, S>,
  options: Options<ArgsOf<S>, Out>
): Layer.Layer<I, never, Redis | Requirements<Out>> =>
  Layer.effect(
    tag,
    Effect.orDie(
      make<ArgsOf<S>, Out>(options) as unknown as Effect.Effect<S, InvalidOptions, Redis | Requirements<Out>>
    )
  )

/**
 * The argument types of a Debounce service type.
 *
 * @since 0.1.0
 * @category models
 */
export type ArgsOf<S> = S extends Debounce<infer Args, any, any> ? Args : never

/**
 * What a callback may return for a tag's `Debounce<Args, A, E>`: an Effect of `A` failing with `E`, a
 * value `A`, or (when `E` admits `UnknownException`) a Promise of `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type ResultFor<S> = S extends Debounce<any, infer A, infer E>
  ? Effect.Effect<A, E, any> | A | (Cause.UnknownException extends E ? PromiseLike<A> : never)
  : never
