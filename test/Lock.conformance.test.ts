import { describe, it, layer } from "@effect/vitest"
import { Cause, Effect, Fiber, TestClock } from "effect"
import * as Memory from "../src/Redis/Memory.js"
import { lockConformance } from "./conformance/lock.js"
import * as RedisServer from "./utils/RedisServer.js"

describe("Memory", () => {
  lockConformance({
    name: "Memory (TestClock)",
    test: (name, body) => it.scoped(name, () => body.pipe(Effect.provide(Memory.layer))),
    elapse: (ms) => TestClock.adjust(ms),
    within: (ms, self) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(self)
        yield* TestClock.adjust(ms)
        return yield* Fiber.join(fiber)
      }),
    shortLease: 1000,
    margin: 0,
    exactTime: true
  })
})

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })("IoRedis", (it) => {
  lockConformance({
    name: "IoRedis (redis-server)",
    test: (name, body) => it.scoped(name, () => body.pipe(Effect.provide(RedisServer.ioredis))),
    elapse: (ms) => Effect.sleep(ms),
    within: (ms, self) =>
      Effect.timeoutFailCause(self, { duration: ms * 10, onTimeout: () => Cause.die(`not done within ${ms * 10} ms`) }),
    shortLease: 300,
    margin: 200,
    exactTime: false
  })
})
