/**
 * One OS process of the distributed demo: contends for the lock on REDIS_URL and increments a shared
 * counter with a deliberately non-atomic read-modify-write, which only the lock keeps correct.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Redis as IORedis } from "ioredis"
import * as IoRedis from "../src/Redis/IoRedis.js"
import { contend } from "./contend.js"

const [worker = "worker", counter = "effect-lock-demo:counter"] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const raw = yield* Effect.acquireRelease(
    Effect.sync(() => new IORedis(process.env.REDIS_URL!)),
    (c) => Effect.promise(() => c.quit())
  )
  const increment = Effect.gen(function*() {
    const value = Number(yield* Effect.promise(() => raw.get(counter)))
    yield* Effect.sleep(20)
    yield* Effect.promise(() => raw.set(counter, String(value + 1), "EX", 600))
  })
  yield* contend({ worker, id: "demo-report", rounds: 3, critical: increment })
}).pipe(Effect.scoped, Effect.provide(IoRedis.layerConfig()))

NodeRuntime.runMain(program)
