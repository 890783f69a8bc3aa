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
import { type Cause, type Context, Effect, Either, Layer } from "effect"
import { RUN_LOCK_PREFIX, withRunLock } from "./internal/debounce/runLock.js"
import * as scripts from "./internal/debounce/scripts.js"
import { DEFAULT_PREFIX } from "./internal/keys.js"
import * as validate from "./internal/validate.js"
import { InvalidOptions, RedisError } from "./LockError.js"
import { Redis } from "./Redis.js"

/**
 * What happened to one call.
 *
 * - `Ran`: the callback ran in this call (`edge` says why) and returned `result`.
 * - `Superseded`: a later call in the same burst took over; it runs (or ran) with its arguments.
 * - `Suppressed`: (leading mode) the burst already ran on its first call.
 *
 * @since 0.1.0
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
 */
export type DebounceError = RedisError | InvalidOptions

/**
 * A debounced operation.
 *
 * @since 0.1.0
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
 * @since 0.1.0
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
  /** Namespace for every key. Default `"effect-lock:"`; state lives under `<prefix>debounce:{<id>}…`. */
  readonly prefix?: string | undefined
}

/** The callback's success type, whether it returns an Effect, a Promise or a value. */
export type Success<Out> = Out extends Effect.Effect<infer A, infer _E, infer _R> ? A : Awaited<Out>
/** The callback's error type: its Effect's, or `UnknownException` for a rejected Promise or a throw. */
export type Failure<Out> = Out extends Effect.Effect<infer _A, infer E, infer _R> ? E : Cause.UnknownException
/** The callback's requirements. */
export type Requirements<Out> = Out extends Effect.Effect<infer _A, infer _E, infer R> ? R : never

const DEFAULT_WAIT = 1000
const MAX_KEY_LENGTH = 511

/** How deep call arguments may nest (arrays and objects), so that checking and encoding them stay bounded. */
const MAX_DEPTH = 512

/**
 * Whether `u` survives JSON as itself: strings, finite numbers, booleans, null, arrays and plain objects,
 * nested at most `MAX_DEPTH` deep.
 */
const isPlainJson = (u: unknown, seen: Set<unknown> = new Set(), depth = 0): boolean => {
  if (u === null || typeof u === "string" || typeof u === "boolean") return true
  if (typeof u === "number") return Number.isFinite(u)
  if (typeof u !== "object" || seen.has(u) || depth >= MAX_DEPTH) return false
  seen.add(u)
  const proto = Object.getPrototypeOf(u)
  const ok = Array.isArray(u)
    ? u.every((item) => isPlainJson(item, seen, depth + 1))
    : (proto === Object.prototype || proto === null) &&
      Object.values(u).every((value) => isPlainJson(value, seen, depth + 1))
  seen.delete(u)
  return ok
}

const isPromiseLike = (u: unknown): u is PromiseLike<unknown> =>
  u !== null && typeof u === "object" && typeof (u as { then?: unknown }).then === "function"

/** The callback's outcome as an Effect, whichever of the three shapes it returned. */
const runCallback = <Out>(out: Out): Effect.Effect<Success<Out>, Failure<Out>, Requirements<Out>> =>
  (Effect.isEffect(out)
    ? out
    : isPromiseLike(out)
    ? Effect.tryPromise(() => out)
    : Effect.succeed(out)) as Effect.Effect<Success<Out>, Failure<Out>, Requirements<Out>>

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
 */
export const make = <Args extends ReadonlyArray<unknown>, Out>(
  options: Options<Args, Out>
): Effect.Effect<Debounce<Args, Success<Out>, Failure<Out>>, InvalidOptions, Redis | Requirements<Out>> =>
  Effect.gen(function*() {
    const id = yield* validate.text("id", options?.id, 512)
    const wait = yield* validate.orDefault(options?.wait, DEFAULT_WAIT, (u) => validate.millis("wait", u, 1))
    const maxWait = yield* validate.orDefault(
      options?.maxWait,
      0,
      (u) =>
        Effect.filterOrFail(validate.millis("maxWait", u, 1), (ms) => ms >= wait, () =>
          new InvalidOptions({
            option: "maxWait",
            expected: `a duration of at least wait (${wait} ms)`,
            received: validate.render(u)
          }))
    )
    // the run lock's prefix adds RUN_LOCK_PREFIX, and a Lock's prefix is at most 256 characters
    const prefix = yield* validate.orDefault(
      options?.prefix,
      DEFAULT_PREFIX,
      (u) => validate.prefix("prefix", u, 256 - RUN_LOCK_PREFIX.length)
    )
    if (typeof options?.callback !== "function") {
      return yield* new InvalidOptions({
        option: "callback",
        expected: "a function",
        received: validate.render(options?.callback)
      })
    }
    const leading = options.leading === true
    const keyOf = options.key
    const redis = yield* Redis
    const context = yield* Effect.context<Requirements<Out>>()
    // State outlives the longest window it must remember, then expires.
    const ttl = String(Math.min(validate.MAX_MILLIS, Math.max(wait, maxWait) * 4 + 1000))

    const keysOf = (key: string) => {
      const base = `${prefix}debounce:{${id}}:${encodeURIComponent(key)}`
      return [`${base}:seq`, `${base}:args`, `${base}:first`] as const
    }

    const run = (key: string, args: Args, edge: "leading" | "trailing" | "maxWait") =>
      Effect.suspend(() => runCallback(options.callback(...args))).pipe(
        Effect.provide(context),
        // the callback's own failure travels past the lock's error handling untouched
        Effect.either,
        // Runs never overlap: each holds the run lock of its key, waiting for a run still going.
        // Its fence counter expires with the rest of the key's state (nobody reads these fences).
        withRunLock({ id, key, prefix, wait, fenceTtl: Number(ttl) }),
        Effect.catchTags({
          // no limit on the wait, and options checked by make: neither can happen
          LockNotAcquired: (error) => Effect.die(error),
          InvalidOptions: (error) => Effect.die(error),
          LockLost: (lost) => Effect.fail(new RedisError({ operation: "debounce run lock", detail: lost.message }))
        }),
        Effect.flatMap((result): Effect.Effect<Outcome<Success<Out>>, Failure<Out>> =>
          Either.match(result, {
            onLeft: Effect.fail,
            onRight: (result) => Effect.succeed({ _tag: "Ran", edge, result })
          })
        ),
        // the run lock talks to the same Redis as the debounce, whatever the caller's context holds
        Effect.provideService(Redis, redis)
      )

    const call = (...args: Args) =>
      Effect.gen(function*() {
        if (!isPlainJson(args)) {
          return yield* new InvalidOptions({
            option: "arguments",
            expected: "plain JSON values (strings, finite numbers, booleans, null, arrays, plain objects), " +
              `nested at most ${MAX_DEPTH} deep`,
            received: "a value JSON cannot carry"
          })
        }
        const key = keyOf === undefined ? "" : keyOf(...args)
        if (typeof key !== "string" || key.length > MAX_KEY_LENGTH || !validate.isWellFormed(key)) {
          return yield* new InvalidOptions({
            option: "key",
            expected: `a string of at most ${MAX_KEY_LENGTH} characters, without lone surrogates`,
            received: validate.render(key)
          })
        }
        const keys = keysOf(key)
        const marked = yield* scripts.mark.run(redis, keys, {
          args: JSON.stringify(args),
          ttl,
          mode: leading ? "leading" : "trailing",
          wait: String(wait),
          maxWait: String(maxWait)
        })
        if (leading) {
          return marked.runNow === undefined ? { _tag: "Suppressed" } as const : yield* run(key, args, marked.runNow)
        }
        yield* Effect.sleep(wait)
        const settled = yield* scripts.settle.run(redis, keys, {
          seq: String(marked.seq),
          maxWait: String(maxWait),
          ttl
        })
        if (settled._tag === "Superseded") return settled
        return yield* run(key, settled.args as unknown as Args, settled.edge)
      }).pipe(Effect.withSpan("Debounce.call", { attributes: { "debounce.id": id } }))

    return { id, call } as Debounce<Args, Success<Out>, Failure<Out>>
  })

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

/** The argument types of a Debounce service type. */
export type ArgsOf<S> = S extends Debounce<infer Args, any, any> ? Args : never

/**
 * What a callback may return for a tag's `Debounce<Args, A, E>`: an Effect of `A` failing with `E`, a
 * value `A`, or (when `E` admits `UnknownException`) a Promise of `A`.
 */
export type ResultFor<S> = S extends Debounce<any, infer A, infer E>
  ? Effect.Effect<A, E, any> | A | (Cause.UnknownException extends E ? PromiseLike<A> : never)
  : never
