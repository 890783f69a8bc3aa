/**
 * `npm run check:safety [processes] [sections]`: the mutual-exclusion checker with larger defaults
 * (8 processes × 100 critical sections) on a private redis-server, or on REDIS_URL if set.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as RedisServer from "../test/utils/RedisServer.js"
import * as Checker from "../test/safety/checker.js"

const [processes = 8, sections = 100] = process.argv.slice(2).map(Number)

const program = Effect.gen(function*() {
  const server = yield* RedisServer.RedisServer
  yield* Console.log(`${processes} processes × ${sections} critical sections on ${server.url}…`)
  const report = yield* Checker.run({ redisUrl: server.url, processes, sections })
  const expected = processes * sections
  yield* Console.log(`critical sections: ${report.sections.length} (expected ${expected})`)
  yield* Console.log(`counter:           ${report.counter} (expected ${expected}; lower means a lost update)`)
  yield* Console.log(`overlaps:          ${report.overlaps.length}`)
  yield* Console.log(`fence inversions:  ${report.fenceInversions.length}`)
  yield* Console.log(`exit codes:        ${report.exitCodes.join(" ")}`)
  const ok = report.sections.length === expected && report.counter === expected && report.overlaps.length === 0 &&
    report.fenceInversions.length === 0 && report.exitCodes.every((c) => c === 0)
  yield* Console.log(ok ? "SAFE" : "UNSAFE")
  if (!ok) return yield* Effect.fail("mutual exclusion violated")
})

NodeRuntime.runMain(program.pipe(Effect.provide(RedisServer.layer), Effect.provide(NodeContext.layer)))
