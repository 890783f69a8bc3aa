/** The Lock conformance suite on every backend: Memory (TestClock), IoRedis and Upstash (real servers). */
import { describe, it, layer } from "@effect/vitest"
import { Cause, Effect, Fiber, Layer, type Scope, TestClock } from "effect"
import type { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import { type Backend, lockConformance } from "./conformance/lock.js"
import { semaphoreConformance } from "./conformance/semaphore.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

const memory: Backend = {
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
}

describe("Memory", () => {
  lockConformance(memory)
  semaphoreConformance(memory)
})

/** A backend on a real server: the wall clock, with margins for a loaded two-core machine. */
const onServer = <R>(
  name: string,
  backend: Layer.Layer<Redis, unknown, R>,
  test: (name: string, self: () => Effect.Effect<void, unknown, R | Scope.Scope>) => void
): Backend => ({
  name,
  test: (name, body) => test(name, () => body.pipe(Effect.provide(backend))),
  elapse: (ms) => Effect.sleep(ms),
  within: (ms, self) =>
    Effect.timeoutFailCause(self, { duration: ms * 10, onTimeout: () => Cause.die(`not done within ${ms * 10} ms`) }),
  shortLease: 300,
  margin: 200,
  exactTime: false
})

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })("IoRedis", (it) => {
  lockConformance(onServer("IoRedis (redis-server)", RedisServer.ioredis, it.scoped))
  semaphoreConformance(onServer("IoRedis (redis-server)", RedisServer.ioredis, it.scoped))
})

layer(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)), { timeout: 30_000, excludeTestServices: true })(
  "Upstash",
  (it) => {
    const upstash = onServer("Upstash (@upstash/redis → REST fixture → redis-server)", UpstashServer.upstash, it.scoped)
    lockConformance(upstash)
    semaphoreConformance(upstash)
  }
)
