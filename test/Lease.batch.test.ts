/**
 * Leases at scale: the default keep-alive of every lease on one service goes in one script per tick
 * (`lock.extendMany`), each lease with its own reply, so a lease another owner took is lost alone. Steps
 * of leases taken a little apart fall on one grid (a quarter of the interval), so they share a script.
 * Under TestClock on the embedded store, and on a real redis-server by INFO commandstats.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, TestClock } from "effect"
import { lockKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { commandCalls, raw } from "./utils/live.js"
import { uniqueId, writeKey } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

describe("batched keep-alive (embedded store, TestClock)", () => {
  it.scoped("20 leases taken 0–240 ms apart: one script a tick extends them all; a stolen one is lost alone", () => {
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const leases: Array<Lock.Lease> = []
      for (let i = 0; i < 20; i++) {
        leases.push(yield* Lock.acquire({ id: `b${i}`, lease: 3000 }))
        if (i % 5 === 4) yield* TestClock.adjust(80)
      }
      // every step falls on the 250 ms grid at or before its interval: at 1000 ms, all in one script
      yield* TestClock.adjust(1000 - 240)
      expect(client.runs("lock.extendMany")).toBe(1)
      expect(client.runs("lock.extend")).toBe(0)
      yield* writeKey(lockKeys("effect-lock:", "b7").lock, "another-owner", 60_000)
      yield* TestClock.adjust(1000)
      expect(client.runs("lock.extendMany")).toBe(2)
      const lost = yield* Effect.forEach(leases, (lease) => lease.isLost)
      expect(lost.map((l, i) => l ? i : -1).filter((i) => i >= 0)).toEqual([7])
      expect((yield* Effect.flip(leases[7]!.lost)).reason).toBe("expired")
      // the others are kept for as long as they are held
      for (let t = 0; t < 10; t++) yield* TestClock.adjust(1000)
      expect(yield* Effect.forEach(leases, (lease) => lease.isLost)).toEqual(leases.map((_, i) => i === 7))
      expect(client.runs("lock.extendMany")).toBe(12)
    }).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
  })
})

layer(RedisServer.layer, { timeout: 60_000, excludeTestServices: true })("batched keep-alive (redis-server)", (it) => {
  it.scoped("1,000 leases held for two ticks: a few scripts per tick, not one per lease", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const client = yield* raw(server.url)
      const calls = commandCalls(client)
      const prefix = `${yield* uniqueId("batch")}:`
      const scope = yield* Scope.make()
      yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) => Scope.extend(Lock.acquire({ id: `l${i}`, prefix, lease: 1500 }), scope),
        { concurrency: 200, discard: true }
      )
      const before = yield* calls("evalsha")
      yield* Effect.sleep("1100 millis") // at least two keep-alive ticks of 500 ms for every lease
      const scripts = (yield* calls("evalsha")) - before
      const pexpires = yield* calls("pexpire")
      expect(pexpires).toBeGreaterThanOrEqual(2000)
      // one per lease per tick would be ≥ 2,000; on the grid it is a handful per tick
      expect(scripts).toBeLessThan(40)
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => client.keys(`${prefix}*`))).toHaveLength(1000) // the fence counters
    }).pipe(Effect.provide(RedisServer.ioredis)))
})
