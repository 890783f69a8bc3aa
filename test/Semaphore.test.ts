/**
 * Semaphore policy on the Memory backend under TestClock: the scripts' TypeScript twins, expiry of a
 * dead holder's permits, keep-alive, timeouts, interruption while waiting, loss, and a model-based
 * property test of the scripts. Time only moves when a test says so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Fiber, Option, TestClock } from "effect"
import { semaphoreKeys } from "../src/internal/keys.js"
import * as Memory from "../src/Redis/Memory.js"
import * as Semaphore from "../src/Semaphore.js"
import { readList } from "./utils/probe.js"
import { raw } from "./utils/semaphoreProbe.js"

const keysOf = (id: string) => semaphoreKeys("effect-lock:", id)

describe("Semaphore scripts (TypeScript twins)", () => {
  it.effect("take, extend, release and leave reply as documented", () =>
    Effect.gen(function*() {
      const s = yield* raw("twins")
      expect(yield* s.take("a", 2, 1000, true)).toEqual({ _tag: "Taken", fence: 1 })
      // A resent try renews the holding with the same fence.
      expect(yield* s.take("a", 2, 1000, true)).toEqual({ _tag: "Taken", fence: 1 })
      // b asks for 2 of the 1 left: it joins the line; the look is due when a's holding ends.
      expect(yield* s.take("b", 2, 1000, true)).toEqual({ _tag: "Waiting", remaining: 1000 })
      // c, plain, asks for 1: one is free, but b waits first.
      expect(yield* s.take("c", 1, 1000, false)).toEqual({ _tag: "Waiting", remaining: 1000 })
      expect(yield* s.line).toEqual(["b"])
      expect(yield* s.available).toBe(1)
      yield* TestClock.adjust(400)
      expect(yield* s.extend("a", 100, "add")).toBe(700)
      expect(yield* s.extend("a", 300, "set")).toBe(700) // never shortens
      expect(yield* s.extend("a", 900, "set")).toBe(900)
      expect(yield* s.extend("nobody", 300, "set")).toBe(0)
      expect(yield* s.take("a", 2, 1000, true, 5)).toEqual({ _tag: "Mismatch", permits: 3 })
      expect(yield* s.release("nobody")).toBe(false)
      expect(yield* s.release("a")).toBe(true)
      expect(yield* s.take("b", 2, 1000, true)).toEqual({ _tag: "Taken", fence: 2 })
      expect(yield* s.line).toEqual([])
      expect(yield* s.leave("b")).toBe(true)
      expect(yield* s.available).toBe(3)
      expect(yield* s.leave("b")).toBe(false)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("holdings expire at their score and gone waiters drop out of the line", () =>
    Effect.gen(function*() {
      const s = yield* raw("expiry")
      yield* s.take("a", 3, 500, true)
      yield* s.take("w", 1, 1000, true)
      yield* TestClock.adjust(500)
      expect(yield* s.available).toBe(0)
      yield* TestClock.adjust(1)
      expect(yield* s.available).toBe(3)
      // w stopped looking 1000 ms ago (alive ms): x is not held up by it.
      yield* TestClock.adjust(1000)
      expect(yield* s.take("x", 3, 1000, false)).toEqual({ _tag: "Taken", fence: 2 })
      expect(yield* s.line).toEqual([])
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Semaphore (TestClock)", () => {
  it.effect("a dead holder's permits come back when its lease ends, and a waiter takes them then", () =>
    Effect.gen(function*() {
      const s = yield* raw("dead")
      yield* s.take("dead-holder", 3, 2000, true)
      const sem = yield* Semaphore.make({ id: "dead", permits: 3 })
      const waiter = yield* Effect.fork(sem.withPermits(2, { timeout: 10_000 })(Effect.succeed("mine")))
      yield* TestClock.adjust(2000)
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(waiter)).toBe("mine")
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("a dead waiter at the head of the line holds the others up for one alive period, no more", () =>
    Effect.gen(function*() {
      const s = yield* raw("dead-head")
      yield* s.take("holder", 3, 10_000, false)
      // Joins the line first, asking for everything, then never looks again.
      expect(yield* s.take("dead-waiter", 3, 10_000, true)).toMatchObject({ _tag: "Waiting" })
      const sem = yield* Semaphore.make({ id: "dead-head", permits: 3 })
      const live = yield* Effect.fork(sem.withPermits(1, { timeout: 10_000 })(Effect.succeed("live")))
      yield* Effect.yieldNow()
      expect(yield* s.release("holder")).toBe(true)
      yield* TestClock.adjust(1000)
      expect(Option.isNone(yield* Fiber.poll(live))).toBe(true)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(live)).toBe("live")
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("bad take options are InvalidOptions, also on an options object used before with good values", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "options", permits: 2 })
      const options: { timeout: unknown } = { timeout: 100 }
      yield* Effect.scoped(sem.take(1, options as Semaphore.TakeOptions))
      options.timeout = -1
      expect(yield* Effect.flip(Effect.scoped(sem.take(1, options as Semaphore.TakeOptions)))).toMatchObject({
        _tag: "InvalidOptions",
        option: "timeout"
      })
      expect(yield* Effect.flip(Effect.scoped(sem.take(1, { fair: "yes" } as never)))).toMatchObject({ option: "fair" })
      expect(yield* sem.available).toBe(2)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("keep-alive holds the permits far past the lease", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "kept", permits: 2, lease: 3000 })
      const permits = yield* sem.take(2)
      yield* TestClock.adjust(30_000)
      expect(yield* permits.isLost).toBe(false)
      expect(yield* sem.available).toBe(0)
      expect(yield* sem.withPermitsIfAvailable(1)(Effect.void)).toEqual(Option.none())
    }).pipe(Effect.scoped, Effect.provide(Memory.layer)))

  it.effect("a take times out with LockNotAcquired naming the semaphore, and leaves the line", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "busy", permits: 1 })
      yield* sem.take(1)
      const waiter = yield* Effect.fork(Effect.flip(sem.take(1, { timeout: 2000 })))
      yield* TestClock.adjust(1999)
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(waiter)).toMatchObject({ _tag: "LockNotAcquired", id: "busy", reason: "timeout" })
      expect(yield* readList(keysOf("busy").queue)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Memory.layer)))

  it.effect("an interrupted head leaves the line and the next waiter, whose request fits, is woken at once", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "heads", permits: 3 })
      yield* sem.take(2)
      const big = yield* Effect.fork(sem.withPermits(3, { timeout: 60_000 })(Effect.succeed("big")))
      yield* Effect.yieldNow()
      const small = yield* Effect.fork(sem.withPermits(1, { timeout: 60_000 })(Effect.succeed("small")))
      yield* Effect.yieldNow()
      expect(yield* readList(keysOf("heads").queue)).toHaveLength(2)
      expect(Option.isNone(yield* Fiber.poll(small))).toBe(true)
      yield* Fiber.interrupt(big)
      expect(yield* Fiber.join(small)).toBe("small")
    }).pipe(Effect.scoped, Effect.provide(Memory.layer)))

  it.effect("a lost holding interrupts withPermits' body with LockLost naming the semaphore", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "lost", permits: 2, lease: 1000 })
      const fiber = yield* Effect.fork(Effect.flip(sem.withPermits(1, { keepAlive: false })(Effect.never)))
      yield* TestClock.adjust(1000)
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "LockLost", id: "lost" })
      expect(yield* sem.available).toBe(2)
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Semaphore (TestClock, whole API)", () => {
  const permits = 3
  const owner = fc.record({
    n: fc.integer({ min: 1, max: permits }),
    start: fc.integer({ min: 0, max: 500 }),
    hold: fc.integer({ min: 0, max: 1500 }),
    timeout: fc.integer({ min: 0, max: 3000 }),
    interruptAfter: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
    keepAlive: fc.boolean()
  })
  type Owner = typeof owner extends fc.Arbitrary<infer A> ? A : never
  const check = (owners: ReadonlyArray<Owner>) =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "api", permits, lease: 1000 })
      let inside = 0
      let most = 0
      const fibers = yield* Effect.forEach(owners, (o) => {
        const body = Effect.sync(() => {
          inside += o.n
          most = Math.max(most, inside)
        }).pipe(
          Effect.zipRight(Effect.sleep(o.hold)),
          Effect.ensuring(Effect.sync(() => void (inside -= o.n)))
        )
        const take = Effect.sleep(o.start).pipe(
          Effect.zipRight(
            sem.withPermits(o.n, { timeout: o.timeout, ...(o.keepAlive ? {} : { keepAlive: false }) })(body)
          ),
          Effect.ignore
        )
        return Effect.fork(o.interruptAfter === undefined ? take : Effect.timeout(take, o.interruptAfter))
      })
      for (let t = 0; t < 25; t++) yield* TestClock.adjust(200)
      for (const fiber of fibers) yield* Fiber.join(fiber).pipe(Effect.ignore)
      expect(most).toBeLessThanOrEqual(permits)
      expect(inside).toBe(0)
      expect(yield* sem.available).toBe(permits)
      expect(yield* readList(keysOf(sem.id).queue)).toEqual([])
    })

  it.effect.prop(
    "random owners (n, hold, timeout, interrupt, no keep-alive) never have more than `permits` inside",
    { owners: fc.array(owner, { minLength: 1, maxLength: 6 }) },
    ({ owners }) => check(owners).pipe(Effect.provide(Memory.layer)),
    { fastCheck: { numRuns: 25, endOnFailure: true } }
  )
})
