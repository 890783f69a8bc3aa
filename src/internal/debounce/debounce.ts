/**
 * `Debounce.make`: options checked once, then each call marks the burst in Redis, waits, settles, and
 * the call that is due runs the callback under its key's run lock (`runLock.ts`).
 *
 * A burst's run is owed until it has finished (`scripts.ts`): the call that runs it holds a claim on it,
 * renewed while it waits for the run lock and runs. A superseded call leaves a watch on the service's
 * timer (one per key and debounce): when the owner's claim lapses (its caller died, or was interrupted),
 * the watch adopts the run and runs it in the background, in the Redis layer's scope. So a burst whose
 * last caller dies still runs, within its wait and one lease, while any caller's process is alive; and
 * the next call of any process adopts it too.
 */
import { Cause, Duration, Effect, Either } from "effect"
import type { Debounce, Failure, Options, Outcome, Requirements, Success } from "../../Debounce.js"
import { InvalidOptions, RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { DEFAULT_PREFIX, hashTag } from "../keys.js"
import { DEFAULT_LEASE } from "../lock/options.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import { RUN_LOCK_PREFIX, withRunLock } from "./runLock.js"
import * as scripts from "./scripts.js"

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
    const lease = yield* validate.orDefault(options?.lease, DEFAULT_LEASE, (u) => validate.millis("lease", u, 1))
    const leading = options.leading === true
    const keyOf = options.key
    const redis = yield* Redis
    const context = yield* Effect.context<Requirements<Out>>()
    // State outlives the longest window it must remember, then expires.
    const ttl = String(Math.min(validate.MAX_MILLIS, Math.max(wait, maxWait) * 4 + 1000))
    // While a run is owed, the state lives at least two leases (renewed every third of one).
    const keep = String(Math.min(validate.MAX_MILLIS, Math.max(Number(ttl), lease * 2)))
    const claimArgs = { lease: String(lease), keep }

    const keysOf = (key: string) => {
      const base = `${prefix}debounce:${hashTag(id)}:${encodeURIComponent(key)}`
      return [`${base}:seq`, `${base}:args`, `${base}:first`, `${base}:owner`] as const
    }
    const ownerKeysOf = (keys: ReturnType<typeof keysOf>) => [keys[0], keys[1], keys[3]] as const

    /** Runs the callback under the run lock; `finished` runs right after it, still under the lock. */
    const run = (
      key: string,
      args: Args,
      edge: "leading" | "trailing" | "maxWait",
      finished: Effect.Effect<void> = Effect.void
    ) =>
      Effect.suspend(() => runCallback(options.callback(...args))).pipe(
        Effect.provide(context),
        // the callback's own failure travels past the lock's error handling untouched
        Effect.either,
        Effect.tap(() => finished),
        // Runs never overlap: each holds the run lock of its key, waiting for a run still going.
        // Its fence counter expires with the rest of the key's state (nobody reads these fences).
        withRunLock({ id, key, prefix, wait, lease, fenceTtl: Number(ttl) }),
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
        if (typeof key !== "string" || key.length > MAX_KEY_LENGTH || !validate.isPrintable(key)) {
          return yield* new InvalidOptions({
            option: "key",
            expected: `a string of at most ${MAX_KEY_LENGTH} characters, ${validate.PRINTABLE}`,
            received: validate.render(key)
          })
        }
        const keys = keysOf(key)
        const token = randomToken()
        const marked = yield* scripts.mark.run(redis, keys, {
          args: JSON.stringify(args),
          ttl,
          mode: leading ? "leading" : "trailing",
          wait: String(wait),
          maxWait: String(maxWait),
          token,
          claim: String(Math.min(validate.MAX_MILLIS, wait + lease))
        })
        if (leading) {
          return marked.runNow === undefined ? { _tag: "Suppressed" } as const : yield* run(key, args, marked.runNow)
        }
        yield* Effect.sleep(wait)
        const settled = yield* scripts.settle.run(redis, keys, {
          seq: String(marked.seq),
          maxWait: String(maxWait),
          ttl,
          token,
          ...claimArgs
        })
        if (settled._tag === "Superseded") {
          if (settled.ownerLeft !== undefined) watch(key, settled.ownerLeft)
          return { _tag: "Superseded" } as const
        }
        return yield* settled.owed
          ? owing(key, token, settled.seq, settled.args as unknown as Args)
          : run(key, settled.args as unknown as Args, settled.edge)
      }).pipe(Effect.withSpan("Debounce.call", { attributes: { "debounce.id": id } }))

    /**
     * Runs a run this caller owes: its claim is renewed every third of the lease while it waits for the
     * run lock and runs; once the callback has finished (whatever its outcome), still under the run
     * lock, the run is no longer owed. A run that did not finish (its caller stopped, its run lock was
     * lost) stays owed: a watch adopts it once the claim lapses.
     */
    const owing = (key: string, token: string, seq: number, args: Args) => {
      const keys = ownerKeysOf(keysOf(key))
      const step = Duration.millis(Math.max(1, Math.floor(lease / 3)))
      const renewing = scripts.renew.run(redis, keys, { token, ...claimArgs }).pipe(
        Effect.ignore,
        Effect.delay(step),
        Effect.forever
      )
      const finished = Effect.ignore(scripts.done.run(redis, keys, { token, seq: String(seq) }))
      return Effect.raceFirst(run(key, args, "trailing", finished), renewing)
    }

    /** The keys this debounce watches on the service's timer (one watch each). */
    const watched = new Set<string>()

    /**
     * Looks at the burst of `key` once the owner's claim would have lapsed (in `ownerLeft` ms): no run
     * owed, the watch ends; the owner still holds its claim, look again when it would lapse; the claim
     * lapsed, adopt the run and run it here, in the background.
     */
    const watch = (key: string, ownerLeft: number): void => {
      if (watched.has(key)) return
      watched.add(key)
      const token = randomToken()
      const look = (after: number): void =>
        void redis.timer.schedule(redis.timer.now() + after + 1, () => redis.timer.fork(check))
      const check: Effect.Effect<void> = scripts.settle.run(redis, keysOf(key), {
        seq: "0",
        maxWait: "0",
        ttl,
        token,
        ...claimArgs
      }).pipe(
        Effect.flatMap((settled) => {
          if (settled._tag === "Superseded") {
            if (settled.ownerLeft === undefined) watched.delete(key)
            else look(settled.ownerLeft)
            return Effect.void
          }
          watched.delete(key)
          return owing(key, token, settled.seq, settled.args as unknown as Args).pipe(
            Effect.zipRight(Effect.logInfo("ran a debounced run whose caller was gone")),
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause)
                ? Effect.void // the layer closed: the run stays owed
                : Effect.logWarning("a debounced run whose caller was gone failed", cause)
            )
          )
        }),
        // Redis not answering: look again after a lease.
        Effect.catchAll(() => Effect.sync(() => look(lease))),
        Effect.annotateLogs({ "debounce.id": id, "debounce.key": key })
      )
      look(ownerLeft)
    }

    return { id, call } as Debounce<Args, Success<Out>, Failure<Out>>
  })
