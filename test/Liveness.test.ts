/**
 * Liveness across OS processes. A SIGKILLed process's waiters stay in the lock's line with nobody to
 * claim a hand-off: however many there are, the lock may sit free while someone waits for at most one
 * reservation (1 s) plus a round trip; the margin is for this loaded 2-core machine. `npm run check:safety` runs a long round of the randomized checker.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Console, Effect, Fiber, Layer, Stream } from "effect"
import * as Lock from "../src/Lock.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Checker from "./safety/checker.js"
import * as Liveness from "./safety/liveness.js"
import { eventually, raw, scriptCalls } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

/** One reservation, plus a round trip and scheduling noise on a busy 2-core machine. */
const STALL_BOUND = 1000 + 800

describe("the liveness checker's measure (synthetic traces)", () => {
  const at = (e: Liveness.Event["e"], f: number | "H", ms: number): Liveness.Event => ({ e, f, t: ms * 1000 })
  const worst = (traces: ReadonlyArray<Liveness.Trace>, lease = 2000, ended = 10_000) =>
    Liveness.analyse(traces, lease, 0, ended * 1000).worstStall

  it("a hand-off at the same instant is no stall; a gap while someone waits is", () => {
    const handOff = {
      killedAt: undefined,
      events: [at("got", 1, 0), at("wait", 0, 0), at("rel", 1, 1000), at("got", 0, 1000), at("rel", 0, 1100)]
    }
    expect(worst([handOff])).toBe(0)
    const gap = {
      killedAt: undefined,
      events: [at("got", 1, 0), at("wait", 0, 0), at("rel", 1, 1000), at("got", 0, 3000), at("rel", 0, 3100)]
    }
    expect(worst([gap])).toBe(2000)
  })

  it("a killed waiter waits no more; a free lock nobody waits for is no stall", () => {
    const dead = { killedAt: 500_000, events: [at("wait", 0, 0)] }
    const later = { killedAt: undefined, events: [at("got", 1, 1000), at("rel", 1, 2000)] }
    expect(worst([dead, later])).toBe(500)
    expect(worst([later])).toBe(0)
  })

  it("a killed holder's lock counts as held until its lease could have run out", () => {
    const holder = { killedAt: 1_000_000, events: [at("wait", "H", 0), at("got", "H", 0)] }
    const waiter = { killedAt: undefined, events: [at("wait", 0, 500), at("got", 0, 3500), at("rel", 0, 3600)] }
    expect(worst([holder, waiter])).toBe(500) // held by the dead holder until 1000 + 2000
  })

  it("a stall still going when the run ends counts up to the end", () => {
    const stuck = { killedAt: undefined, events: [at("got", 1, 0), at("wait", 0, 0), at("rel", 1, 1000)] }
    expect(worst([stuck], 2000, 4000)).toBe(3000)
  })
})

describe("liveness across OS processes", () => {
  it.scopedLive(
    "a process with 10 waiting fibers SIGKILLed: a live waiter gets the released lock within ~1 s",
    () =>
      Effect.gen(function*() {
        const { url } = yield* RedisServer.startFresh()
        const client = yield* raw(url)
        const backend = yield* Layer.build(IoRedis.layer({ url }))
        const id = yield* uniqueId("sigkill-waiters")
        const holder = yield* Lock.make({ id, lease: 60_000 }).pipe(Effect.provide(backend))
        expect(yield* holder.acquire().pipe(Effect.provide(backend))).toBe(true)

        const before = yield* scriptCalls(client)
        const proc = yield* Checker.spawnWorker(["wait", url, id, "10", "10000", "calm"])
        yield* Checker.lines(proc.stdout).pipe(Stream.runDrain, Effect.forkScoped)
        // Every fiber's first try has reached Redis (each joined the line), then the process dies.
        yield* eventually(scriptCalls(client), (n) => n >= before + 10, "30 seconds")
        yield* proc.kill("SIGKILL")

        const queued = yield* scriptCalls(client)
        const live = yield* Effect.fork(
          Effect.scoped(Lock.acquire({ id, timeout: "60 seconds" })).pipe(Effect.provide(backend))
        )
        // Its first try and its look after subscribing have run: it stands in line behind the dead, and
        // only a wake-up (or its heartbeat) ends its wait.
        yield* eventually(scriptCalls(client), (n) => n >= queued + 2, "30 seconds")
        const releasedAt = yield* Clock.currentTimeMillis
        expect(yield* holder.release.pipe(Effect.provide(backend))).toBe(true)
        yield* Fiber.join(live)
        const waited = (yield* Clock.currentTimeMillis) - releasedAt
        expect(waited).toBeLessThanOrEqual(STALL_BOUND) // was ~1 s per dead waiter
      }).pipe(Effect.provide(NodeContext.layer)),
    90_000
  )

  it.scopedLive(
    "randomized: with waiters and holders SIGKILLed, the lock never sits free for long while someone waits",
    () =>
      Effect.gen(function*() {
        const { url } = yield* RedisServer.startFresh()
        const report = yield* Liveness.run({ redisUrl: url, processes: 3, fibers: 4, duration: 12_000 })
        yield* Console.log(`liveness: ${JSON.stringify(report)}`)
        expect(report.rounds).toBeGreaterThan(0)
        expect(report.waiterKills).toBeGreaterThanOrEqual(report.rounds)
        expect(report.acquisitions).toBeGreaterThan(report.rounds)
        expect(report.worstStall).toBeLessThanOrEqual(STALL_BOUND)
      }).pipe(Effect.provide(NodeContext.layer)),
    90_000
  )
})
