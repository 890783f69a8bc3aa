/**
 * A test kit for your own code, on the embedded store: provide {@link layer} instead of `Memory.layer`
 * and, from inside the test, make the things happen that are hard to make happen against a real Redis:
 *
 * - {@link steal} a lock from its holder, or {@link expire} its lease, as a paused process would see it;
 * - make the next operations fail with `RedisError` ({@link failNext}) or never answer ({@link hangNext});
 * - read the whole keyspace ({@link keyspace}), e.g. to check that nothing is left behind.
 *
 * Time is Effect's `Clock`, as with `Memory.layer`, so everything runs under `TestClock`.
 *
 * @example
 * import { it } from "@effect/vitest"
 * import { Effect, Exit, Fiber, TestClock } from "effect"
 * import { Lock } from "effect-lock"
 * import * as MemoryTest from "effect-lock/Redis/MemoryTest"
 *
 * it.effect("my job stops when its lease is taken", () =>
 *   Effect.gen(function*() {
 *     const job = yield* Effect.never.pipe(Lock.withLock({ id: "job", lease: "3 seconds" }), Effect.fork)
 *     yield* TestClock.adjust("1 second")
 *     yield* MemoryTest.steal("job")
 *     yield* TestClock.adjust("1 second") // the next keep-alive finds another owner
 *     const exit = yield* Fiber.await(job)
 *     if (!Exit.isFailure(exit)) throw new Error("the job should have stopped")
 *   }).pipe(Effect.provide(MemoryTest.layer)))
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Ref, type Scope } from "effect"
import { DEFAULT_FENCE_TTL, nextFenceLocal } from "../internal/core/lua.js"
import { DEFAULT_PREFIX, lockKeys } from "../internal/keys.js"
import { randomToken } from "../internal/token.js"
import { RedisError } from "../LockError.js"
import * as Redis from "../Redis.js"
import * as MemoryInspect from "./internal/memoryInspect.js"
import * as Memory from "./Memory.js"

/**
 * One key of the store: its value (a string, or the members of a list or sorted set, in order: e.g. waiters in
 * line) and its `PTTL` in milliseconds (-1: no expiry).
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly value: string | ReadonlyArray<string>
  readonly pttl: number
}

/**
 * The `prefix` the lock was made with, when it is not the default `"effect-lock:"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  readonly prefix?: string | undefined
}

/**
 * The kit, as a service next to the store it controls.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Another owner takes the lock now, whoever holds it, as if the holder's lease had run out and someone
   * else had acquired it: a new token for `lease` (default 10 seconds) and the next fence, which it
   * returns. The holder finds out at its next keep-alive or release, as it would on Redis.
   */
  readonly steal: (
    id: string,
    options?: LockOptions & { readonly lease?: Duration.DurationInput }
  ) => Effect.Effect<number>
  /**
   * The lock's lease runs out now: the key is gone (waiters in line stay in line), as if the holder had
   * been paused past its lease. The holder finds out at its next keep-alive or release.
   */
  readonly expire: (id: string, options?: LockOptions) => Effect.Effect<void>
  /** The next `n` operations (script runs) fail with `RedisError`, without touching the store. */
  readonly failNext: (n: number) => Effect.Effect<void>
  /**
   * The next `n` operations never answer, without touching the store: like a real backend, each fails
   * with `RedisError` at its deadline (an acquisition's `timeout`, a lease's end), or waits until
   * interrupted when it has none.
   */
  readonly hangNext: (n: number) => Effect.Effect<void>
  /** Drops the faults not yet used up. */
  readonly heal: Effect.Effect<void>
  /** Every live key, in the order it was first written. */
  readonly keyspace: Effect.Effect<Readonly<Record<string, Entry>>>
}

/**
 * The test kit's service: the store's faults and views, provided by {@link layer}.
 *
 * @since 0.1.0
 * @category tags
 */
export class MemoryTest extends Context.Tag("effect-lock/Redis/MemoryTest")<MemoryTest, Service>() {}

/**
 * A store and its kit, as {@link make} builds them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  /** The embedded store, faults included: provide it as `Redis`. */
  readonly redis: Redis.Service
  readonly kit: Service
}

type Fault = "fail" | "hang"

/** What a real backend does with a request that gets no answer: a `RedisError` at its deadline, if it has one. */
const noAnswer = (
  operation: string,
  timer: Redis.Timer,
  deadline: number | undefined
): Effect.Effect<never, RedisError> =>
  deadline === undefined ?
    Effect.never :
    Effect.async<never, RedisError>((resume) =>
      Effect.sync(timer.schedule(deadline, () =>
        resume(Effect.fail(new RedisError({ operation, detail: "no answer before the deadline" })))))
    )

const count = (name: string, n: number) =>
  Number.isSafeInteger(n) && n >= 0
    ? Effect.succeed(n)
    : Effect.dieMessage(`MemoryTest.${name}: expected an integer ≥ 0, received ${n}`)

/**
 * Builds a fresh embedded store (as `Memory.make` does) and its kit. Faults are taken in the order they
 * were asked for: `failNext(2)` then `hangNext(1)` fails two operations and hangs the third.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Store, never, Scope.Scope> = Effect.gen(function*() {
  const memory = yield* Memory.make
  const store = MemoryInspect.inspect(memory)
  if (store === undefined) return yield* Effect.dieMessage("MemoryTest: the store of Memory.make is not inspectable")
  const faults = yield* Ref.make<ReadonlyArray<Fault>>([])
  const nextFault = Ref.modify(
    faults,
    (pending): readonly [Fault | undefined, ReadonlyArray<Fault>] => [pending[0], pending.slice(1)]
  )
  const atomically = <A>(f: (keyspace: Redis.Keyspace) => A) =>
    Effect.map(Clock.currentTimeMillis, (now) => store.atomically(now, f))
  const addFaults = (name: string, fault: Fault) => (n: number) =>
    Effect.flatMap(
      count(name, n),
      (n) => Ref.update(faults, (pending) => [...pending, ...Array.from({ length: n }, () => fault)])
    )

  const redis = Redis.Redis.of({
    ...memory,
    run: (script, keys, args, deadline) =>
      Effect.flatMap(nextFault, (fault) =>
        fault === "fail"
          ? Effect.fail(new RedisError({ operation: `eval ${script.name}`, detail: "fault injected by MemoryTest" }))
          : fault === "hang"
          ? noAnswer(`eval ${script.name}`, memory.timer, deadline)
          : memory.run(script, keys, args, deadline))
  })

  const kit: Service = {
    steal: (id, options = {}) =>
      atomically((keyspace) => {
        const keys = lockKeys(options.prefix ?? DEFAULT_PREFIX, id)
        keyspace.set(
          keys.lock,
          `stolen-${randomToken()}`,
          Math.max(1, Duration.toMillis(options.lease ?? "10 seconds"))
        )
        return nextFenceLocal(keyspace, keys.fence, DEFAULT_FENCE_TTL)
      }),
    expire: (id, options = {}) =>
      atomically((keyspace) => void keyspace.del(lockKeys(options.prefix ?? DEFAULT_PREFIX, id).lock)),
    failNext: addFaults("failNext", "fail"),
    hangNext: addFaults("hangNext", "hang"),
    heal: Ref.set(faults, []),
    keyspace: Effect.map(
      Clock.currentTimeMillis,
      (now) => Object.fromEntries(store.entries(now).map(({ key, ...entry }) => [key, entry]))
    )
  }
  return { redis, kit } as const
})

/**
 * A fresh embedded store, as `Memory.layer`, with its kit: provides both `Redis` and {@link MemoryTest}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Redis.Redis | MemoryTest> = Layer.scopedContext(
  Effect.map(make, ({ kit, redis }) => Context.make(Redis.Redis, redis).pipe(Context.add(MemoryTest, kit)))
)

/**
 * Another owner takes the lock now; returns its fence. See {@link Service.steal}.
 *
 * @since 0.1.0
 * @category test kit
 */
export const steal = (
  id: string,
  options?: LockOptions & { readonly lease?: Duration.DurationInput }
): Effect.Effect<number, never, MemoryTest> => Effect.flatMap(MemoryTest, (kit) => kit.steal(id, options))

/**
 * The lock's lease runs out now. See {@link Service.expire}.
 *
 * @since 0.1.0
 * @category test kit
 */
export const expire = (id: string, options?: LockOptions): Effect.Effect<void, never, MemoryTest> =>
  Effect.flatMap(MemoryTest, (kit) => kit.expire(id, options))

/**
 * The next `n` operations fail with `RedisError`.
 *
 * @since 0.1.0
 * @category test kit
 */
export const failNext = (n: number): Effect.Effect<void, never, MemoryTest> =>
  Effect.flatMap(MemoryTest, (kit) => kit.failNext(n))

/**
 * The next `n` operations never answer.
 *
 * @since 0.1.0
 * @category test kit
 */
export const hangNext = (n: number): Effect.Effect<void, never, MemoryTest> =>
  Effect.flatMap(MemoryTest, (kit) => kit.hangNext(n))

/**
 * Drops the faults not yet used up.
 *
 * @since 0.1.0
 * @category test kit
 */
export const heal: Effect.Effect<void, never, MemoryTest> = Effect.flatMap(MemoryTest, (kit) => kit.heal)

/**
 * Every live key with its value and `PTTL`.
 *
 * @since 0.1.0
 * @category test kit
 */
export const keyspace: Effect.Effect<Readonly<Record<string, Entry>>, never, MemoryTest> = Effect.flatMap(
  MemoryTest,
  (kit) => kit.keyspace
)
