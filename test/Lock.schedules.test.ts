/**
 * Zero-delay schedules have a floor (1 ms between tries, a tenth of the lease between keep-alive steps),
 * and a win heard late is extended at once instead of lost for nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule, TestClock } from "effect"
import { Lock } from "../src/index.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"

const on = (client: FaultyRedis.FaultyRedis) => client.layer.pipe(Layer.provide(Memory.layer))

describe("schedules that would spin", () => {
  it.effect("retry: Schedule.forever tries at most once a millisecond", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "spin", lease: "1 minute" })
      expect(yield* holder.acquire()).toBe(true)
      const waiter = yield* Effect.fork(
        Effect.scoped(Lock.acquire({ id: "spin", fair: false, retry: Schedule.forever, timeout: 100 }))
      )
      yield* TestClock.adjust(100)
      const error = yield* Effect.flip(Fiber.join(waiter))
      expect(error._tag).toBe("LockNotAcquired")
      // one try, then one per millisecond at most, until the 100 ms timeout
      expect(client.runs("lock.acquire")).toBeLessThanOrEqual(1 + 1 + 100)
      expect(client.runs("lock.acquire")).toBeGreaterThan(10)
    }).pipe(Effect.provide(on(client)))
  })

  it.effect("keepAlive: Schedule.forever extends at most every tenth of the lease", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const held = yield* Effect.fork(
        Lock.withLock({ id: "keep", lease: 1000, keepAlive: Schedule.forever })(Effect.sleep("1 second"))
      )
      for (let i = 0; i < 100; i++) yield* TestClock.adjust(10)
      yield* Fiber.join(held)
      expect(client.runs("lock.extend")).toBeLessThanOrEqual(11)
      expect(client.runs("lock.extend")).toBeGreaterThanOrEqual(5)
    }).pipe(Effect.provide(on(client)))
  })
})

describe("a win heard late", () => {
  it.effect("with less than one keep-alive interval left, it is extended at once and kept", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      // the winning try's answer takes 800 ms of a 1 s lease: 190 ms are left, under the 333 ms interval
      client.on("lock.acquireFair", FaultyRedis.DelayReply(800), { nth: 1 })
      const held = yield* Effect.fork(
        Lock.withLease({ id: "late", lease: 1000 }, (lease) => Effect.zipRight(Effect.sleep("2 seconds"), lease.isLost))
      )
      yield* TestClock.adjust(800)
      yield* TestClock.adjust(1)
      expect(client.runs("lock.extendMany")).toBe(1)
      for (let i = 0; i < 200; i++) yield* TestClock.adjust(10)
      expect(yield* Fiber.join(held)).toBe(false)
    }).pipe(Effect.provide(on(client)))
  })
})
