/** The bench's arithmetic (bench/stats.ts): hand-offs, re-takes and FIFO counts from section timestamps. */
import { describe, expect, it } from "@effect/vitest"
import * as Stats from "../bench/stats.js"

const s = (worker: number, asked: number, acquired: number, released: number) => ({ worker, asked, acquired, released })

describe("bench statistics", () => {
  it("hand-offs, re-takes and the most acquisitions a waiter sat through", () => {
    const run = Stats.contended(
      [s(0, 0, 0, 10), s(1, 1, 11, 20), s(0, 10.5, 21, 30), s(2, 2, 31, 40), s(2, 40, 40.5, 50)],
      { commands: 50, gaveUp: 1, counter: 5, expected: 6 }
    )
    expect(run.sections).toBe(5)
    expect(run.sectionsPerSecond).toBeCloseTo(100)
    // w0 → w1 after 1 ms, w1 → w0 after 1 ms, w0 → w2 after 1 ms; then w2 takes its own lock back.
    expect(run.handoffP50).toBe(1)
    expect(run.handoffMax).toBe(1)
    expect(run.retakes).toBeCloseTo(1 / 4)
    // w2 asked at 2 and got it at 31: w1 (11) and w0 (21) went first.
    expect(run.mostWaitedThrough).toBe(2)
    expect(run.commandsPerAcquisition).toBe(10)
    expect(run.counterOk).toBe(true)
    expect(run.cut).toBe(true)
  })

  it("semaphore runs: hand-off only for acquisitions that waited through a release", () => {
    // Two permits: w0 and w1 take at once; w2 waits from 1 until w0 releases at 10, takes at 12; w3 asks at
    // 30, after every release so far, and takes at once (no hand-off).
    const run = Stats.semaphore(
      [s(0, 0, 0, 10), s(1, 0, 0, 20), s(2, 1, 12, 25), s(3, 30, 30, 40)],
      { commands: 40, gaveUp: 0, expected: 4 }
    )
    expect(run.sections).toBe(4)
    expect(run.sectionsPerSecond).toBeCloseTo(100)
    expect(run.handoffP50).toBe(2)
    expect(run.handoffP99).toBe(2)
    expect(run.mostWaitedThrough).toBe(0)
    expect(run.commandsPerAcquisition).toBe(10)
    expect(run.cut).toBe(false)
  })

  it("a lost update shows in the counter check", () => {
    const run = Stats.contended([s(0, 0, 0, 1), s(1, 0, 1, 2)], { commands: 4, gaveUp: 0, counter: 1, expected: 2 })
    expect(run.counterOk).toBe(false)
    expect(run.cut).toBe(false)
  })

  it("uncontended cycle times and percentiles", () => {
    const run = Stats.uncontended(
      Array.from({ length: 100 }, (_, i) => s(0, i * 10, i * 10, i * 10 + 1 + (i === 99 ? 9 : 0))),
      400,
      0
    )
    expect(run.p50).toBe(1)
    expect(run.p99).toBe(1)
    expect(Stats.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100)).toBe(10)
    expect(Stats.median([3, 1, 2, 10])).toBe(2.5)
    expect(run.commandsPerCycle).toBe(4)
  })
})
