/**
 * The semaphore across OS processes on a real redis-server: P processes × K sections with permits = 3
 * never have more than 3 inside at once (sections timed by Redis TIME), every section runs once, every
 * holding has a fence of its own; and the permits of a holder killed with SIGKILL come back within one
 * lease.
 */
import type { CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, type Scope, Stream } from "effect"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Semaphore from "../src/Semaphore.js"
import * as Checker from "./safety/semaphoreChecker.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

const live = (name: string, body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor.CommandExecutor>) =>
  it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), 60_000)

describe("Semaphore across OS processes (redis-server)", () => {
  it("the sweep counts sections inside at once (touching ends do not overlap)", () => {
    const at = (start: number, end: number): Checker.Section => ({ fence: 0, start, end })
    expect(Checker.mostInside([at(0, 10), at(1, 9), at(2, 8), at(3, 7)])).toBe(4)
    expect(Checker.mostInside([at(0, 5), at(5, 10), at(10, 15)])).toBe(1)
  })

  live(
    "4 processes × 8 sections with permits = 3: never more than 3 inside, each section once, fences unique",
    Effect.gen(function*() {
      const { url } = yield* RedisServer.startFresh()
      const report = yield* Checker.run({ redisUrl: url, processes: 4, sections: 8, permits: 3 })
      expect(report.exitCodes).toEqual([0, 0, 0, 0])
      expect(report.sections).toHaveLength(32)
      expect(report.counter).toBe(32)
      expect(report.mostInside).toBeLessThanOrEqual(3)
      // Three fibers per process, four processes: the semaphore did let several in at once.
      expect(report.mostInside).toBeGreaterThan(1)
      expect(report.fencesUnique).toBe(true)
    })
  )

  live(
    "the permits of a holder killed with SIGKILL come back within one lease",
    Effect.gen(function*() {
      const { url } = yield* RedisServer.startFresh()
      const id = yield* uniqueId("sem-killed")
      const lease = 1500
      const proc = yield* Checker.spawnWorker(["hold", url, id, String(lease), "3", "3"])
      const [held] = yield* Checker.jsonLines<{ readonly acquired: number }>(proc.stdout).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      yield* proc.kill("SIGKILL")
      const killedAt = yield* Clock.currentTimeMillis
      const next = yield* Effect.gen(function*() {
        const sem = yield* Semaphore.make({ id, permits: 3 })
        return yield* Effect.scoped(sem.take(3, { timeout: "10 seconds" }))
      }).pipe(Effect.provide(IoRedis.layer({ url })))
      const waited = (yield* Clock.currentTimeMillis) - killedAt
      expect(next.fence).toBeGreaterThan(held!.acquired)
      expect(waited).toBeLessThanOrEqual(lease + 500)
    })
  )
})
