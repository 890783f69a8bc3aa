/**
 * The randomized liveness checker (test/safety/liveness.ts), a short round: worker processes wait for
 * one lock with random timeouts and interrupts while waiters and holders are SIGKILLed. The lock may sit
 * free while someone waits for at most one reservation (1 s) plus a round trip, whatever the number of
 * dead waiters; the margin is for this loaded 2-core machine. `npm run check:safety` runs a long round.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect } from "effect"
import * as Liveness from "./safety/liveness.js"
import * as RedisServer from "./utils/RedisServer.js"

/** One reservation, plus a round trip and scheduling noise on a busy 2-core machine. */
export const STALL_BOUND = 1000 + 800

describe("liveness across OS processes", () => {
  it.scopedLive("with waiters and holders SIGKILLed, the lock never sits free for long while someone waits", () =>
    Effect.gen(function*() {
      const { url } = yield* RedisServer.startFresh()
      const report = yield* Liveness.run({ redisUrl: url, processes: 3, fibers: 4, duration: 6000 })
      yield* Console.log(`liveness: ${JSON.stringify(report)}`)
      expect(report.rounds).toBeGreaterThan(0)
      expect(report.waiterKills).toBeGreaterThan(0)
      expect(report.acquisitions).toBeGreaterThan(report.rounds)
      expect(report.worstStall).toBeLessThanOrEqual(STALL_BOUND)
    }).pipe(Effect.provide(NodeContext.layer)), 90_000)
})
