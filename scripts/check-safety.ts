/**
 * `npm run check:safety [processes] [sections] [liveness seconds]`: the mutual-exclusion checker with
 * larger defaults (8 processes × 100 critical sections), then the randomized liveness checker (6 worker
 * processes × 8 waiting fibers for 60 s, with random interrupts and SIGKILLs of waiters and holders), on
 * a private redis-server, or on REDIS_URL if set; then the Semaphore's checker (the same processes ×
 * sections, three fibers each, permits = 3).
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as Checker from "../test/safety/checker.js"
import * as Liveness from "../test/safety/liveness.js"
import * as SemaphoreChecker from "../test/safety/semaphoreChecker.js"
import * as RedisServer from "../test/utils/RedisServer.js"

const [processes = 8, sections = 100, livenessSeconds = 60] = process.argv.slice(2).map(Number)

/** One reservation (1 s) plus a round trip, with a margin for a busy machine. */
const STALL_BOUND = 1000 + 800

const safety = Effect.gen(function*() {
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
  return ok
})

const liveness = Effect.gen(function*() {
  const server = yield* RedisServer.RedisServer
  yield* Console.log(`\nliveness: 6 worker processes × 8 waiting fibers for ${livenessSeconds} s on ${server.url}…`)
  const report = yield* Liveness.run({
    redisUrl: server.url,
    processes: 6,
    fibers: 8,
    duration: livenessSeconds * 1000
  })
  yield* Console.log(
    `rounds:            ${report.rounds} (${report.acquisitions} acquisitions, ${report.gaveUp} gave up)`
  )
  yield* Console.log(`SIGKILLs:          ${report.waiterKills} waiter processes, ${report.holderKills} holders`)
  yield* Console.log(`worst stall:       ${report.worstStall} ms free while someone waited (bound ${STALL_BOUND} ms)`)
  yield* Console.log(`longest stalls:    ${report.stalls.map((s) => `${s.millis} ms at +${s.at} ms`).join(", ")}`)
  const ok = report.worstStall <= STALL_BOUND
  yield* Console.log(ok ? "LIVE" : "STALLED")
  return ok
})

const semaphore = Effect.gen(function*() {
  const server = yield* RedisServer.RedisServer
  const permits = 3
  yield* Console.log(
    `\nsemaphore: ${processes} processes × ${sections} sections, permits = ${permits}, on ${server.url}…`
  )
  const report = yield* SemaphoreChecker.run({ redisUrl: server.url, processes, sections, permits })
  const expected = processes * sections
  yield* Console.log(`sections:          ${report.sections.length} (expected ${expected}); counter ${report.counter}`)
  yield* Console.log(`most inside:       ${report.mostInside} (at most ${permits})`)
  yield* Console.log(`fences unique:     ${report.fencesUnique}`)
  yield* Console.log(`exit codes:        ${report.exitCodes.join(" ")}`)
  const ok = report.sections.length === expected && report.counter === expected && report.mostInside <= permits &&
    report.fencesUnique && report.exitCodes.every((c) => c === 0)
  yield* Console.log(ok ? "SAFE" : "UNSAFE")
  return ok
})

const program = Effect.gen(function*() {
  const safe = yield* safety
  const live = yield* liveness
  const semaphoreSafe = yield* semaphore
  if (!safe) return yield* Effect.fail("mutual exclusion violated")
  if (!semaphoreSafe) return yield* Effect.fail("the semaphore let more than its permits in")
  if (!live) return yield* Effect.fail("the lock sat free too long while someone waited")
})

NodeRuntime.runMain(program.pipe(Effect.provide(RedisServer.layer), Effect.provide(NodeContext.layer)))
