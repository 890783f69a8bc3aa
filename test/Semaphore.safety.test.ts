/**
 * The semaphore across OS processes on a real redis-server: P processes × K sections with permits = 3
 * never have more than 3 inside at once (sections timed by Redis TIME), every section runs once, fences
 * strictly increase; and the permits of a holder killed with SIGKILL come back within one lease.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Command, type CommandExecutor } from "@effect/platform"
import { Clock, Effect, type Scope, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Semaphore from "../src/Semaphore.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

interface Section {
  readonly fence: number
  readonly start: number
  readonly end: number
}

const spawn = (args: ReadonlyArray<string>) =>
  Command.make(process.execPath, "--import", "tsx", "test/safety/semaphoreWorker.ts", ...args).pipe(Command.start)

const jsonLines = <A>(stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(Stream.decodeText(), Stream.splitLines, Stream.filter((l) => l.startsWith("{")), Stream.map((l) => JSON.parse(l) as A))

/** The most sections inside at once: a sweep over starts (+1) and ends (−1), ends first on a tie. */
const mostInside = (sections: ReadonlyArray<Section>): number => {
  const events = sections.flatMap((s) => [[s.start, 1], [s.end, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let inside = 0
  let most = 0
  for (const [, d] of events) most = Math.max(most, (inside += d))
  return most
}

const live = (name: string, body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor.CommandExecutor>) =>
  it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), 60_000)

describe("Semaphore across OS processes (redis-server)", () => {
  it("the sweep counts sections inside at once (touching ends do not overlap)", () => {
    const at = (start: number, end: number): Section => ({ fence: 0, start, end })
    expect(mostInside([at(0, 10), at(1, 9), at(2, 8), at(3, 7)])).toBe(4)
    expect(mostInside([at(0, 5), at(5, 10), at(10, 15)])).toBe(1)
  })

  live("4 processes × 8 sections with permits = 3: never more than 3 inside, each section once, fences increase",
    Effect.gen(function*() {
      const { url } = yield* RedisServer.startFresh()
      const id = yield* uniqueId("sem-safety")
      const counterKey = `${id}:counter`
      const runOne = Effect.scoped(Effect.gen(function*() {
        const proc = yield* spawn(["sections", url, id, counterKey, "8", "2000", "3"])
        const out = yield* jsonLines<Section>(proc.stdout).pipe(Stream.runCollect)
        expect(Number(yield* proc.exitCode)).toBe(0)
        return Array.from(out)
      }))
      const sections = (yield* Effect.all([runOne, runOne, runOne, runOne], { concurrency: "unbounded" })).flat()
      const client = new IORedis(url)
      const counter = Number(yield* Effect.promise(() => client.get(counterKey)))
      yield* Effect.promise(() => client.quit())
      expect(sections).toHaveLength(32)
      expect(counter).toBe(32)
      expect(mostInside(sections)).toBeLessThanOrEqual(3)
      // With 4 processes contending, the semaphore did let several in at once.
      expect(mostInside(sections)).toBeGreaterThan(1)
      const fences = sections.map((s) => s.fence).sort((a, b) => a - b)
      expect(new Set(fences).size).toBe(32)
    }))

  live("the permits of a holder killed with SIGKILL come back within one lease",
    Effect.gen(function*() {
      const { url } = yield* RedisServer.startFresh()
      const id = yield* uniqueId("sem-killed")
      const lease = 1500
      const proc = yield* spawn(["hold", url, id, String(lease), "3", "3"])
      const [held] = yield* jsonLines<{ readonly acquired: number }>(proc.stdout).pipe(Stream.take(1), Stream.runCollect)
      yield* proc.kill("SIGKILL")
      const killedAt = yield* Clock.currentTimeMillis
      const next = yield* Effect.gen(function*() {
        const sem = yield* Semaphore.make({ id, permits: 3 })
        return yield* Effect.scoped(sem.take(3, { timeout: "10 seconds" }))
      }).pipe(Effect.provide(IoRedis.layer({ url })))
      const waited = (yield* Clock.currentTimeMillis) - killedAt
      expect(next.fence).toBeGreaterThan(held!.acquired)
      expect(waited).toBeLessThanOrEqual(lease + 500)
    }))
})
