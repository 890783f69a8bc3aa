/**
 * A zero or tiny timeout means one try answered by Redis, never an outage made up by the deadline; a
 * wait that ends while a later try is on the wire is a timeout; silence from the start is a RedisError.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, TestClock } from "effect"
import { Lock } from "../src/index.js"
import { FIRST_ANSWER } from "../src/internal/core/line.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"

const on = (client: FaultyRedis.FaultyRedis) => client.layer.pipe(Layer.provide(Memory.layer))

describe("timeouts shorter than a round trip", () => {
  for (const timeout of [0, -0, 1]) {
    it.effect(`timeout ${Object.is(timeout, -0) ? "-0" : timeout} on a free lock whose answer takes 5 ms acquires`, () => {
      const client = FaultyRedis.make()
      return Effect.gen(function*() {
        client.on("lock.acquire*", FaultyRedis.DelayReply(5))
        const fiber = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id: "now", timeout }), (l) => l.fence))
        )
        yield* TestClock.adjust(5)
        expect(yield* Fiber.join(fiber)).toBe(1)
      }).pipe(Effect.provide(on(client)))
    })
  }

  it.effect("timeout 0 on a held lock is one try: LockNotAcquired, not RedisError", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "held" })
      expect(yield* holder.acquire()).toBe(true)
      client.on("lock.acquire*", FaultyRedis.DelayReply(5))
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "held", timeout: 0 })))
      yield* TestClock.adjust(5)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toMatchObject({ _tag: "LockNotAcquired", reason: "timeout" })
      expect(client.runs("lock.acquireFair")).toBe(1)
    }).pipe(Effect.provide(on(client)))
  })

  it.effect("a later try still on the wire when the timeout passes ends as a timeout, and leaves the line", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "busy" })
      expect(yield* holder.acquire()).toBe(true)
      // the waiter's second try is applied, but its answer comes long after the 300 ms timeout
      client.on("lock.acquireFair", FaultyRedis.DelayReply(5000), { nth: 2 })
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "busy", timeout: 300 })))
      yield* TestClock.adjust(5000)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toMatchObject({ _tag: "LockNotAcquired", reason: "timeout" })
      expect(client.calls).toContain("lock.leave")
    }).pipe(Effect.provide(on(client)))
  })

  it.effect(`a first try that is never answered is a RedisError ${FIRST_ANSWER} ms after a zero timeout`, () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      client.on("lock.acquire*", FaultyRedis.Hang)
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "silent", timeout: 0 })))
      yield* TestClock.adjust(FIRST_ANSWER - 1)
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : exit).toBe("RedisError")
    }).pipe(Effect.provide(on(client)))
  })
})
