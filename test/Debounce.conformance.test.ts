/** The Debounce conformance suite on every backend: Memory (TestClock), IoRedis and Upstash (real servers). */
import { describe, it, layer } from "@effect/vitest"
import { Cause, Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as Upstash from "../src/Redis/Upstash.js"
import { type Backend, debounceConformance } from "./conformance/debounce.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

describe("Memory", () => {
  debounceConformance({
    name: "Memory (TestClock)",
    test: (name, body) =>
      it.scoped(name, () => Effect.flatMap(Memory.make, (store) => body(Layer.succeed(Redis, store)))),
    within: (ms, self) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(self)
        yield* TestClock.adjust(ms)
        return yield* Fiber.join(fiber)
      }),
    wait: 1000
  })
})

const onServer = (name: string, test: Backend["test"]): Backend => ({
  name,
  test,
  within: (ms, self) =>
    Effect.timeoutFailCause(self, { duration: ms * 10, onTimeout: () => Cause.die(`not done within ${ms * 10} ms`) }),
  wait: 300
})

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })("IoRedis", (it) => {
  debounceConformance(
    onServer(
      "IoRedis (redis-server)",
      (name, body) =>
        it.scoped(
          name,
          () => Effect.flatMap(RedisServer.RedisServer, (s) => body(IoRedis.layer({ url: s.url }).pipe(Layer.orDie)))
        )
    )
  )
})

layer(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)), { timeout: 30_000, excludeTestServices: true })(
  "Upstash",
  (it) => {
    debounceConformance(
      onServer(
        "Upstash (@upstash/redis → REST fixture → redis-server)",
        (name, body) =>
          it.scoped(
            name,
            () =>
              Effect.flatMap(UpstashServer.UpstashServer, (s) =>
                body(Upstash.layer({ url: s.url, token: Redacted.make(s.token) }).pipe(Layer.orDie)))
          )
      )
    )
  }
)
