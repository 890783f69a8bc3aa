/**
 * Liveness and timeouts under faults: no waiter left in line by a stopped try, dead waiters that cost at most ~one reservation in all, a
 * try applied twice that joins once, and timeouts that hold whatever Redis does. Memory store under
 * TestClock, each process a FaultyRedis client over the one store. Public API only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Option, Schedule, TestClock } from "effect"
import * as Lock from "../src/Lock.js"
import * as Memory from "../src/Redis/Memory.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { eventually } from "./utils/live.js"

/**
 * Moves the TestClock `step` ms at a time until `fiber` is done; the time that took, or Infinity when
 * it is still running after `limit` ms.
 */
const timeToDone = <A, E>(fiber: Fiber.Fiber<A, E>, limit: number, step = 10) =>
  Effect.gen(function*() {
    let elapsed = 0
    yield* Effect.yieldNow()
    while (Option.isNone(yield* Fiber.poll(fiber))) {
      if (elapsed >= limit) return Infinity
      yield* TestClock.adjust(step)
      elapsed += step
    }
    return elapsed
  })

/** Lets the in-process store and the fibers on it run until `done` holds (no clock time passes). */
const settle = (done: () => boolean) => eventually(Effect.sync(done), (holds) => holds)

/** One waiter for `id`, as a daemon fiber (a fiber stuck in an uninterruptible try must not hang the test). */
const waitFor = (id: string, client: FaultyRedis.FaultyRedis, options: Partial<Lock.AcquireOptions> = {}) =>
  Effect.forkDaemon(
    Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "1 minute", ...options }), (lease) => lease.fence)).pipe(
      Effect.provide(client.layer)
    )
  )

const RESERVATION = 1000

describe("waiters stopped during their first try leave the line", () => {
  it.effect(
    "20 waiters stopped while their first try is in flight (timeout 10 ms or interrupted) cost a free lock nothing",
    () =>
      Effect.gen(function*() {
        const id = "first-try"
        const holder = yield* Lock.make({ id, lease: 60_000 })
        expect(yield* holder.acquire()).toBe(true)
        // Their process has 40 ms round trips: every try is applied at once and answered 40 ms later.
        const slow = FaultyRedis.make()
        slow.on("lock.acquireFair", FaultyRedis.DelayReply(40))
        const timedOut = yield* Effect.forEach(Array.from({ length: 10 }), () => waitFor(id, slow, { timeout: 10 }))
        const interrupted = yield* Effect.forEach(Array.from({ length: 10 }), () => waitFor(id, slow))
        yield* settle(() => slow.runs("lock.acquireFair") >= 20)
        yield* TestClock.adjust(5)
        yield* Effect.forEach(interrupted, Fiber.interruptFork)
        yield* TestClock.adjust(200)
        for (const fiber of [...timedOut, ...interrupted]) expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)

        yield* TestClock.adjust(1000)
        yield* holder.release
        // Nobody is waiting any more: the next comer gets the lock at once (at worst after one reservation).
        const fresh = yield* waitFor(id, FaultyRedis.make())
        const waited = yield* timeToDone(fresh, 30_000, 50)
        expect(waited).toBeLessThanOrEqual(RESERVATION + 100) // was 20 s: one reservation per stale token
      }).pipe(Effect.provide(Memory.layer)),
    30_000
  )
})

describe("any number of dead waiters stalls a free lock for at most ~one reservation", () => {
  for (const dead of [2, 15]) {
    it.effect(
      `${dead} waiters whose process died: the live waiter behind them gets the released lock within ~1 s`,
      () =>
        Effect.gen(function*() {
          const id = `dead-${dead}`
          const holder = yield* Lock.make({ id, lease: 60_000 })
          expect(yield* holder.acquire()).toBe(true)
          // Each dead waiter is a process that joined the line, then lost its connection and died.
          for (let i = 0; i < dead; i++) {
            const client = FaultyRedis.make()
            yield* waitFor(id, client)
            yield* settle(() => client.runs("lock.acquireFair") >= 1)
            client.cut()
          }
          const live = yield* waitFor(id, FaultyRedis.make())
          yield* TestClock.adjust(10_000) // they have been dead a while when the holder lets go
          yield* holder.release
          const waited = yield* timeToDone(live, 60_000, 50)
          expect(waited).toBeLessThanOrEqual(RESERVATION + 200) // was `dead` × 1 s
        }).pipe(Effect.provide(Memory.layer)),
      30_000
    )
  }
})

describe("joining the line is idempotent per token", () => {
  it.effect(
    "a first try the transport applied twice costs the next waiter nothing later",
    () =>
      Effect.gen(function*() {
        const id = "twice"
        const holder = yield* Lock.make({ id, lease: 60_000 })
        expect(yield* holder.acquire()).toBe(true)
        const a = FaultyRedis.make()
        a.on("lock.acquireFair", FaultyRedis.Duplicate, { nth: 1 }) // e.g. ioredis resending after a reset
        let aHolds = false
        const aLetsGo = yield* Deferred.make<void>()
        const fa = yield* Effect.forkDaemon(
          Lock.withLock({ id, timeout: "1 minute" })(
            Effect.zipRight(Effect.sync(() => void (aHolds = true)), Deferred.await(aLetsGo))
          )
            .pipe(Effect.provide(a.layer))
        )
        yield* settle(() => a.runs("lock.acquireFair") >= 1)
        const b = FaultyRedis.make()
        const bGotAt = yield* Deferred.make<number>()
        const fb = yield* Effect.forkDaemon(
          Lock.withLock({ id, timeout: "1 minute" })(
            Effect.flatMap(Clock.currentTimeMillis, (now) => Deferred.succeed(bGotAt, now))
          ).pipe(
            Effect.provide(b.layer)
          )
        )
        yield* settle(() => b.runs("lock.acquireFair") >= 1)
        yield* holder.release
        yield* settle(() => aHolds) // handed over by push: no time passes
        const releasedAt = yield* Clock.currentTimeMillis
        yield* Deferred.succeed(aLetsGo, undefined)
        yield* Fiber.join(fa)
        // B is next in line once A lets go: it gets the lock at once (was ~1 s: handed to A's stale entry),
        // and it did get it (it did not fail).
        const waited = yield* timeToDone(fb, 30_000)
        expect(waited).toBeLessThanOrEqual(100)
        yield* Fiber.join(fb)
        expect((yield* Deferred.await(bGotAt)) - releasedAt).toBeLessThanOrEqual(100) // was ~1 s: handed to A's stale entry
      }).pipe(Effect.provide(Memory.layer)),
    30_000
  )
})

describe("an acquisition returns by its timeout whatever Redis does, and silence is a RedisError", () => {
  for (const fair of [true, false]) {
    for (
      const [what, fault] of [["never applied", FaultyRedis.Hang], ["applied", FaultyRedis.HangAfterApply]] as const
    ) {
      it.effect(
        `a first try that is never answered (${what}, fair: ${fair}): RedisError at the timeout, not a hang`,
        () =>
          Effect.gen(function*() {
            const id = `silent-${what}-${fair}`
            const client = FaultyRedis.make()
            client.on(fair ? "lock.acquireFair" : "lock.acquire", fault)
            const fiber = yield* waitFor(id, client, { timeout: "1 second", fair })
            const waited = yield* timeToDone(fiber, 5000, 20)
            expect(waited).toBeLessThanOrEqual(1000 + 20)
            const error = yield* Effect.flip(Fiber.join(fiber))
            expect(error._tag).toBe("RedisError") // Redis said nothing: not "another copy is on it"
          }).pipe(Effect.provide(Memory.layer)),
        30_000
      )
    }
  }

  it.effect(
    "withLock with a timeout on a Redis that stops answering mid-wait returns by the timeout",
    () =>
      Effect.gen(function*() {
        const id = "silent-midway"
        const holder = yield* Lock.make({ id, lease: 60_000 })
        expect(yield* holder.acquire()).toBe(true)
        const client = FaultyRedis.make()
        const fiber = yield* Effect.forkDaemon(
          Lock.withLock({ id, timeout: "2 seconds", retry: Schedule.spaced("100 millis") })(Effect.void).pipe(
            Effect.provide(client.layer)
          )
        )
        yield* TestClock.adjust(450)
        client.on("*", FaultyRedis.Hang) // Redis is paused
        const waited = yield* timeToDone(fiber, 5000, 20)
        expect(450 + waited).toBeLessThanOrEqual(2000 + 20)
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(["RedisError", "LockNotAcquired"]).toContain(error._tag)
      }).pipe(Effect.provide(Memory.layer)),
    30_000
  )

  it.effect(
    "an outage is a RedisError even when a retry schedule and a timeout are given",
    () =>
      Effect.gen(function*() {
        yield* MemoryTest.hangNext(1000) // Redis is paused
        const fiber = yield* Effect.forkDaemon(
          Effect.scoped(Lock.acquire({ id: "silent-retry", timeout: 500, retry: { attempts: 10, delay: 50 } }))
        )
        const waited = yield* timeToDone(fiber, 5000, 20)
        expect(waited).toBeLessThanOrEqual(500 + 20)
        expect((yield* Effect.flip(Fiber.join(fiber)))._tag).toBe("RedisError")
      }).pipe(Effect.provide(MemoryTest.layer)),
    30_000
  )
})
