/**
 * `npm run check:safety [processes] [sections] [liveness seconds]`: the mutual-exclusion checker with
 * larger defaults (8 processes × 100 critical sections), then the randomized liveness checker (6 worker
 * processes × 8 waiting fibers for 60 s, with random interrupts and SIGKILLs of waiters and holders), on
 * a private redis-server, or on REDIS_URL if set; then the Semaphore's checker (the same processes ×
 * sections, three fibers each, permits = 3); then the read-write lock's checker (8 processes × 3 fibers ×
 * 40 reads or writes, SIGSTOP faults every 700 ms and two SIGKILLs) and two processes taking `[a, b]` and
 * `[b, a]` with `Lock.withLocks` 1,000 times each (`-- --only=rw`: these alone); then the election's
 * checker (6 processes running `runAsLeader`, 1000 terms, 4 rounds of SIGKILL and SIGSTOP of the leader,
 * CLIENT KILL, SCRIPT FLUSH and a restart of its own redis-server; `-- --only=election`: it alone).
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as Checker from "../test/safety/checker.js"
import * as ElectionChecker from "../test/safety/electionChecker.js"
import * as Liveness from "../test/safety/liveness.js"
import * as SemaphoreChecker from "../test/safety/semaphoreChecker.js"
import * as RedisServer from "../test/utils/RedisServer.js"

const args = process.argv.slice(2)
/** `--only=rw`: the read-write lock's checks alone. */
const onlyReadWrite = args.includes("--only=rw")
/** `--only=election`: the election's checker alone. */
const onlyElection = args.includes("--only=election")
const [processes = 8, sections = 100, livenessSeconds = 60] = args.filter((a) => !a.startsWith("--")).map(Number)

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

const readWrite = Effect.gen(function*() {
  const server = yield* RedisServer.RedisServer
  yield* Console.log(
    `\nread-write lock: 8 processes × 3 fibers × 40 reads or writes, SIGSTOP/SIGKILL faults, on ${server.url}…`
  )
  const report = yield* Checker.runReadWrite({
    redisUrl: server.url,
    processes: 8,
    fibers: 3,
    sections: 40,
    faultEvery: 700,
    kills: 2
  })
  yield* Console.log(
    `sections:          ${report.sections.length} (${report.reads} reads, ${report.writes} writes; ${report.invalid} lost to a fault, left out)`
  )
  yield* Console.log(`writer beside anyone: ${report.writerBeside.length}`)
  yield* Console.log(`readers overlapping:  ${report.readOverlaps} pairs`)
  yield* Console.log(`fence inversions:     ${report.fenceInversions} (writes); stale reads ${report.staleReads}`)
  yield* Console.log(
    `overtaken in line:    ${report.overtaken} of ${report.fairnessChecked} waits checked (most overtakers of one: ${report.mostOvertakers}); left out: waits through a SIGSTOP or one of ${report.stalls} event-loop stalls ≥ 150 ms`
  )
  yield* Console.log(
    `faults:               ${report.sigstops} SIGSTOPs, ${report.sigkills} SIGKILLs; ${report.processes} processes`
  )
  yield* Console.log(`exit codes:           ${report.exitCodes.join(" ")}`)
  const ok = report.writerBeside.length === 0 && report.readOverlaps > 0 && report.fenceInversions === 0 &&
    report.staleReads === 0 && report.overtaken === 0 &&
    report.exitCodes.filter((c) => c !== 0).length === report.sigkills
  yield* Console.log(ok ? "SAFE" : "UNSAFE")
  const started = Date.now()
  const pairs = yield* Checker.runPairs({ redisUrl: server.url, ids: ["pair-a", "pair-b"], count: 1000 })
  yield* Console.log(
    `withLocks [a, b] / [b, a]: ${pairs.map((p) => `${p.done} done (exit ${p.code})`).join(", ")} in ${
      Date.now() - started
    } ms`
  )
  const pairsOk = pairs.every((p) => p.done === 1000 && p.code === 0)
  yield* Console.log(pairsOk ? "NO DEADLOCK" : "DEADLOCK")
  return ok && pairsOk
})

const quantiles = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]?.toFixed(1) ?? "-"
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms (${sorted.length})`
}

const election = Effect.gen(function*() {
  const [processes, terms, rounds] = [6, 1000, 4]
  yield* Console.log(`\nelection: ${processes} processes running runAsLeader, ${terms} terms, ${rounds} fault rounds…`)
  const report = yield* ElectionChecker.run({ processes, terms, rounds, progress: (m) => Console.log(`  ${m}`) })
  const f = report.faults
  yield* Console.log(
    `terms:             ${report.terms.length} (${report.terms.filter((t) => !t.ended).length} never ended: killed)`
  )
  yield* Console.log(
    `faults:            SIGKILL ${f.sigkill} and SIGSTOP ${f.sigstop} of the leader, CLIENT KILL ${f.clientKill}, ` +
      `SCRIPT FLUSH ${f.scriptFlush}, restarts ${f.restart}`
  )
  yield* Console.log(`overlaps:          ${report.overlaps.length}`)
  yield* Console.log(`term inversions:   ${report.inversions.length}`)
  yield* Console.log(
    `fenced writes:     ${report.writes} (${report.staleRefused} refused as stale; log inversions ${report.logInversions})`
  )
  yield* Console.log(
    `hand-over gaps:    after an end ${quantiles(report.gaps.resign)}; after a SIGKILL (from the lost deadline) ${
      quantiles(report.gaps.sigkill)
    }`
  )
  const ok = report.terms.length >= terms && report.overlaps.length === 0 && report.inversions.length === 0 &&
    report.logInversions === 0
  yield* Console.log(ok ? "SAFE" : "UNSAFE")
  return ok
})

const program = Effect.gen(function*() {
  if (onlyElection) {
    if (!(yield* election)) return yield* Effect.fail("two leaders at once, or terms out of order")
    return
  }
  if (onlyReadWrite) {
    if (!(yield* readWrite)) return yield* Effect.fail("the read-write lock or withLocks failed its checks")
    return
  }
  const safe = yield* safety
  const live = yield* liveness
  const semaphoreSafe = yield* semaphore
  const readWriteSafe = yield* readWrite
  const electionSafe = yield* election
  if (!electionSafe) return yield* Effect.fail("two leaders at once, or terms out of order")
  if (!readWriteSafe) return yield* Effect.fail("the read-write lock or withLocks failed its checks")
  if (!safe) return yield* Effect.fail("mutual exclusion violated")
  if (!semaphoreSafe) return yield* Effect.fail("the semaphore let more than its permits in")
  if (!live) return yield* Effect.fail("the lock sat free too long while someone waited")
})

NodeRuntime.runMain(program.pipe(Effect.provide(RedisServer.layer), Effect.provide(NodeContext.layer)))
