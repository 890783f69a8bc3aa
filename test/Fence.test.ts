/**
 * Nothing immortal: fence counters expire `fenceTtl` after the last acquisition, and a counter that is
 * gone (expired, deleted, lost with a restart) starts again above every fence it gave before, from the
 * server's clock in microseconds. On the embedded store under TestClock, and on a real redis-server,
 * where 10,000 leases acquired and released leave no key without a TTL.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { lockKeys, semaphoreKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"
import * as Semaphore from "../src/Semaphore.js"
import { eventually, raw } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

const WEEK = 7 * 24 * 60 * 60 * 1000

const fenceOf = (options: Lock.AcquireOptions) => Lock.withLease(options, (lease) => Effect.succeed(lease.fence))

describe("fence counters (embedded store, TestClock)", () => {
  it.effect("live fenceTtl after the last acquisition; once expired, the next fence is above every one before", () =>
    Effect.gen(function*() {
      const options = { id: "expiring", fenceTtl: "1 second" } as const
      const f1 = yield* fenceOf(options)
      const f2 = yield* fenceOf(options)
      expect(f2).toBe(f1 + 1)
      const key = lockKeys("effect-lock:", "expiring").fence
      expect((yield* MemoryTest.keyspace)[key]).toEqual({ value: String(f2), pttl: 1000 })
      yield* TestClock.adjust("1001 millis")
      expect((yield* MemoryTest.keyspace)[key]).toEqual(undefined)
      const f3 = yield* fenceOf(options)
      expect(f3).toBeGreaterThan(f2)
      // the default: a week
      yield* fenceOf({ id: "default" })
      expect((yield* MemoryTest.keyspace)[lockKeys("effect-lock:", "default").fence]?.pttl).toBe(WEEK)
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("a semaphore's counter too", () =>
    Effect.gen(function*() {
      const sem = yield* Semaphore.make({ id: "s", permits: 2, fenceTtl: 500 })
      const f1 = yield* Effect.scoped(Effect.map(sem.take(1), (p) => p.fence))
      yield* TestClock.adjust("501 millis")
      expect((yield* MemoryTest.keyspace)[semaphoreKeys("effect-lock:", "s").fence]).toEqual(undefined)
      const f2 = yield* Effect.scoped(Effect.map(sem.take(1), (p) => p.fence))
      expect(f2).toBeGreaterThan(f1)
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("a fenceTtl that is not a duration of at least 1 ms is InvalidOptions", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fenceOf({ id: "bad", fenceTtl: 0 }))
      expect(error).toMatchObject({ _tag: "InvalidOptions", option: "fenceTtl" })
      const semError = yield* Effect.flip(Semaphore.make({ id: "bad", permits: 1, fenceTtl: -1 }))
      expect(semError).toMatchObject({ _tag: "InvalidOptions", option: "fenceTtl" })
    }).pipe(Effect.provide(MemoryTest.layer)))
})

layer(RedisServer.layer, { timeout: 120_000, excludeTestServices: true })("fence counters (redis-server)", (it) => {
  it.scoped("expired or deleted, the counter starts again at Redis TIME in µs: fences strictly increase", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const client = yield* raw(server.url)
      const id = yield* uniqueId("fence-expiry")
      const key = lockKeys("effect-lock:", id).fence
      const options = { id, fenceTtl: "300 millis" } as const
      const fences = [yield* fenceOf(options), yield* fenceOf(options)]
      expect(fences[1]).toBe(fences[0]! + 1)
      const [seconds, micros] = yield* Effect.promise(() => client.time())
      expect(fences[0]).toBeLessThanOrEqual(Number(seconds) * 1e6 + Number(micros) + 1)
      expect(fences[0]).toBeGreaterThan((Number(seconds) - 60) * 1e6)
      expect(yield* Effect.promise(() => client.pttl(key))).toBeGreaterThan(0)
      yield* eventually(Effect.promise(() => client.exists(key)), (n) => n === 0)
      fences.push(yield* fenceOf(options))
      yield* Effect.promise(() => client.del(key)) // lost, as in a restart without persistence
      fences.push(yield* fenceOf(options))
      for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!)
      // a counter from before fences expired (small, no TTL) goes on counting, and gets a TTL
      const legacy = yield* uniqueId("fence-legacy")
      yield* Effect.promise(() => client.set(lockKeys("effect-lock:", legacy).fence, "41"))
      expect(yield* fenceOf({ id: legacy })).toBe(42)
      expect(yield* Effect.promise(() => client.pttl(lockKeys("effect-lock:", legacy).fence))).toBeGreaterThan(
        WEEK - 60_000
      )
    }).pipe(Effect.provide(RedisServer.ioredis)))

  it.scoped("10,000 leases acquired and released (200 at a time) leave no key without a TTL", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const client = yield* raw(server.url)
      const prefix = `${yield* uniqueId("ttl-sweep")}:`
      yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => i),
        (i) => Lock.withLock({ id: `order:${i}`, prefix })(Effect.void),
        { concurrency: 200, discard: true }
      )
      const sem = yield* Semaphore.make({ id: "pool", permits: 3, prefix })
      yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.scoped(sem.take(1)), { concurrency: 5, discard: true })
      const keys: Array<string> = []
      let cursor = "0"
      do {
        const [next, batch] = yield* Effect.promise(() => client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000))
        keys.push(...batch)
        cursor = next
      } while (cursor !== "0")
      expect(keys.length).toBeGreaterThanOrEqual(10_000)
      const pipeline = client.pipeline()
      for (const key of keys) pipeline.pttl(key)
      const ttls = (yield* Effect.promise(() => pipeline.exec()))!.map(([, ttl]) => ttl as number)
      const immortal = keys.filter((_, i) => ttls[i] === -1)
      expect(immortal).toEqual([])
      yield* Effect.promise(() => client.del(...keys))
    }).pipe(Effect.provide(RedisServer.ioredis)))
})
