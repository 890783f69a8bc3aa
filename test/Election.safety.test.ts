/**
 * Never two leaders: the election's multi-process checker (./safety/electionChecker.ts) with 5 OS
 * processes and 200 terms, through a SIGKILL and a SIGSTOP of the leader, CLIENT KILL, SCRIPT FLUSH and
 * a restart of redis-server. `npm run check:safety` runs it longer.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Checker from "./safety/electionChecker.js"

describe("Election across processes", () => {
  it.live(
    "5 processes × 200 terms through SIGKILL, SIGSTOP, CLIENT KILL, SCRIPT FLUSH and a restart: never two leaders",
    () =>
      Effect.gen(function*() {
        const report = yield* Checker.run({ processes: 5, terms: 200, rounds: 1 })
        expect(report.terms.length).toBeGreaterThanOrEqual(200)
        expect(report.faults).toEqual({ sigkill: 1, sigstop: 1, clientKill: 1, scriptFlush: 1, restart: 1 })
        expect(report.overlaps).toEqual([])
        expect(report.inversions).toEqual([])
        expect(report.logInversions).toBe(0)
        expect(report.writes).toBeGreaterThan(report.terms.length)
        // The terms are consecutive: a restart (with persistence) did not set the counter back.
        expect(report.terms.map((t) => t.term)).toEqual(report.terms.map((_, i) => report.terms[0]!.term + i))
      }).pipe(Effect.provide(NodeContext.layer)),
    90_000
  )
})
