/**
 * The test kit users get for their own code: steal and expire a lock, inject faults, read the keyspace,
 * all under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FastCheck, Fiber, Option, TestClock } from "effect"
import * as Lock from "../../src/Lock.js"
import * as MemoryTest from "../../src/Redis/MemoryTest.js"

const WEEK = 7 * 24 * 60 * 60 * 1000

const failure = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

describe("MemoryTest", () => {
  it.effect("steal: the guarded work is interrupted with LockLost at the next keep-alive, and the thief's fence is higher", () =>
    Effect.gen(function*() {
      const guarded = yield* Effect.never.pipe(Lock.withLock({ id: "guarded", lease: "3 seconds" }), Effect.fork)
      yield* TestClock.adjust("1 second")
      const thief = yield* MemoryTest.steal("guarded")
      expect(thief).toBe(2)
      const keyspace = yield* MemoryTest.keyspace
      expect(keyspace["effect-lock:lock:{guarded}"]).toEqual({ value: expect.stringMatching(/^stolen-/), pttl: 10_000 })
      expect(keyspace["effect-lock:lock:{guarded}:fence"]).toEqual({ value: "2", pttl: WEEK })
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(guarded)
      expect(failure(exit)).toEqual(Option.some(expect.objectContaining({ _tag: "LockLost", id: "guarded", fence: 1 })))
      // the thief still holds it: our release changed nothing
      expect((yield* MemoryTest.keyspace)["effect-lock:lock:{guarded}"]?.value).toMatch(/^stolen-/)
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("steal takes a lease of the length asked for, under the prefix asked for", () =>
    Effect.gen(function*() {
      yield* MemoryTest.steal("x", { lease: "250 millis", prefix: "app:" })
      expect(yield* MemoryTest.keyspace).toEqual({
        "app:lock:{x}": { value: expect.stringMatching(/^stolen-/), pttl: 250 },
        "app:lock:{x}:fence": { value: "1", pttl: WEEK }
      })
      const lock = yield* Lock.make({ id: "x", prefix: "app:" })
      expect(yield* lock.acquire({ retry: { attempts: 1 } })).toBe(false)
      yield* TestClock.adjust("251 millis")
      expect(yield* lock.acquire({ retry: { attempts: 1 } })).toBe(true)
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("expire: the holder loses its lease and another owner acquires at once, with the next fence", () =>
    Effect.gen(function*() {
      const guarded = yield* Effect.never.pipe(Lock.withLock({ id: "job", lease: "3 seconds" }), Effect.fork)
      yield* TestClock.adjust("1 second")
      yield* MemoryTest.expire("job")
      const next = yield* Lock.make({ id: "job" })
      expect(yield* next.acquire({ retry: { attempts: 1 } })).toBe(true)
      expect(yield* next.fence).toEqual(Option.some(2))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(guarded)
      expect(failure(exit)).toEqual(Option.some(expect.objectContaining({ _tag: "LockLost", fence: 1 })))
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("failNext: the next n operations fail with RedisError and change nothing; then the store answers again", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make({ id: "flaky" })
      yield* MemoryTest.failNext(2)
      const first = yield* Effect.flip(lock.acquire({ retry: { attempts: 1 } }))
      expect(first).toMatchObject({ _tag: "RedisError", detail: "fault injected by MemoryTest" })
      expect((yield* Effect.flip(lock.status))._tag).toBe("RedisError")
      expect(yield* MemoryTest.keyspace).toEqual({})
      expect(yield* lock.acquire({ retry: { attempts: 1 } })).toBe(true)
      expect(yield* lock.status).toBe("ACQUIRED")
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("hangNext: the next operation never answers, so only a timeout ends it; the one after answers", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make({ id: "slow" })
      yield* MemoryTest.hangNext(1)
      const hung = yield* lock.status.pipe(Effect.timeout("5 seconds"), Effect.fork)
      yield* TestClock.adjust("4 seconds")
      expect(yield* Fiber.poll(hung)).toEqual(Option.none())
      yield* TestClock.adjust("1 second")
      expect((yield* Effect.flip(Fiber.join(hung)))._tag).toBe("TimeoutException")
      expect(yield* lock.status).toBe("FREE")
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("faults are used in the order asked for, and heal drops the rest", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make({ id: "order" })
      yield* MemoryTest.failNext(1)
      yield* MemoryTest.hangNext(1)
      yield* MemoryTest.failNext(1)
      expect((yield* Effect.flip(lock.status))._tag).toBe("RedisError")
      const hung = yield* Effect.fork(lock.status)
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.poll(hung)).toEqual(Option.none())
      yield* Fiber.interrupt(hung)
      yield* MemoryTest.heal
      expect(yield* lock.status).toBe("FREE")
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("keyspace: what a released lock leaves behind is its fence counter only", () =>
    Effect.gen(function*() {
      yield* Effect.void.pipe(Lock.withLock({ id: "tidy" }))
      expect(yield* MemoryTest.keyspace).toEqual({ "effect-lock:lock:{tidy}:fence": { value: "1", pttl: WEEK } })
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("a fault count that is not an integer ≥ 0 is a defect naming the call", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(MemoryTest.failNext(-1))
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("MemoryTest.failNext")
      const nan = yield* Effect.exit(MemoryTest.hangNext(Number.NaN))
      expect(Exit.isFailure(nan) && Cause.pretty(nan.cause)).toContain("MemoryTest.hangNext")
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect.prop("for any number of injected failures, a retry that outlasts them gets the lock", [
    FastCheck.integer({ min: 0, max: 5 })
  ], ([n]) =>
    Effect.gen(function*() {
      yield* MemoryTest.failNext(n)
      const fence = yield* Effect.map(Lock.acquire({ id: "retried" }), (lease) => lease.fence).pipe(
        Effect.retry({ times: 5, while: (e) => e._tag === "RedisError" }),
        Effect.scoped
      )
      expect(fence).toBe(1)
    }).pipe(Effect.provide(MemoryTest.layer)))
})
