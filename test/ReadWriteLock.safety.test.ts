/**
 * The read-write lock and `Lock.withLocks` across OS processes on a real redis-server: six processes of
 * readers and writers under SIGSTOP and SIGKILL faults never have a writer beside anyone, readers do
 * overlap, write fences increase, no read carries a fence older than a write before it, and nobody waiting
 * is overtaken by a later arrival it cannot share with; two processes taking `[a, b]` and `[b, a]` 1,000
 * times each never deadlock. Longer runs: `npm run check:safety`.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Checker from "./safety/checker.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

describe("ReadWriteLock across OS processes (redis-server)", () => {
  it("the analysis finds a writer beside a reader, a stale read and an overtaking", () => {
    const at = (process: number, m: "r" | "w", fence: number, arrive: number, start: number, end: number) => ({
      process,
      m,
      fence,
      arrive,
      start,
      end,
      valid: true
    })
    const report = Checker.analyseReadWrite(
      [
        at(0, "w", 1, 0, 10, 20),
        at(1, "r", 1, 0, 15, 30),
        at(2, "r", 0, 0, 40, 50),
        at(3, "w", 2, 100, 200, 210),
        at(4, "r", 2, 150, 160, 170)
      ],
      [],
      10
    )
    expect(report.writerBeside).toHaveLength(1)
    expect(report.staleReads).toBe(1)
    expect(report.overtaken).toBe(1)
  })

  it.scopedLive(
    "6 processes of readers and writers with SIGSTOP/SIGKILL faults: never a writer beside anyone, FIFO, fences in order",
    () =>
      Effect.gen(function*() {
        const { url } = yield* RedisServer.startFresh()
        const report = yield* Checker.runReadWrite({
          redisUrl: url,
          processes: 6,
          fibers: 2,
          sections: 14,
          faultEvery: 700,
          kills: 1
        })
        expect(report.sections.length).toBeGreaterThan(60)
        expect(report.writerBeside).toEqual([])
        expect(report.readOverlaps).toBeGreaterThan(0)
        expect(report.fenceInversions).toBe(0)
        expect(report.staleReads).toBe(0)
        expect(report.overtaken).toBe(0)
        expect(report.sigstops).toBeGreaterThan(0)
        // Every process ends on its own, but the one SIGKILLed.
        expect(report.exitCodes.filter((c) => c !== 0).length).toBe(report.sigkills)
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )

  it.scopedLive(
    "two processes calling withLocks on [a, b] and [b, a] 1,000 times each never deadlock",
    () =>
      Effect.gen(function*() {
        const { url } = yield* RedisServer.startFresh()
        const a = yield* uniqueId("pair-a")
        const b = yield* uniqueId("pair-b")
        const results = yield* Checker.runPairs({ redisUrl: url, ids: [a, b], count: 1000 })
        expect(results).toEqual([{ done: 1000, code: 0 }, { done: 1000, code: 0 }])
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )
})
