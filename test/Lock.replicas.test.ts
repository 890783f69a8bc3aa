/**
 * The `replicas` acquisition option: bad values and backends without replicas are `InvalidOptions`
 * before anything is sent; on a real redis-server that has no replica, a won lock that no replica
 * confirms is given back and the acquisition fails with a `RedisError` (never contention). The cluster,
 * where a replica does confirm, is in test/Cluster.test.ts and test/Cluster.failover.test.ts.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option } from "effect"
import { Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import * as Memory from "../src/Redis/Memory.js"
import { eventually } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

const rawClient = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit()))

const commandCalls = (raw: IORedis) =>
  Effect.promise(() => raw.info("commandstats")).pipe(
    Effect.map((info) => [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0))
  )

/** Every entry point that takes `replicas`, run once with `options`. */
const entryPoints = (options: Lock.AcquireOptions) => [
  Effect.scoped(Lock.acquire(options)),
  Lock.withLock(options)(Effect.void),
  Lock.withLease(options, () => Effect.void),
  Lock.withLockIfAvailable(options)(Effect.void)
]

describe("replicas: options", () => {
  it.effect("bad replicas and replicaTimeout values are InvalidOptions, and nothing is held", () =>
    Effect.gen(function*() {
      const id = yield* uniqueId("replicas-options")
      const bad: ReadonlyArray<readonly [string, Lock.AcquireOptions]> = [
        ["replicas", { id, replicas: -1 }],
        ["replicas", { id, replicas: 1.5 }],
        ["replicas", { id, replicas: "1" as unknown as number }],
        ["replicas", { id, replicas: NaN }],
        ["replicaTimeout", { id, replicas: 1, replicaTimeout: 0 }],
        ["replicaTimeout", { id, replicas: 1, replicaTimeout: -5 }],
        ["replicaTimeout", { id, replicas: 1, replicaTimeout: "soon" as unknown as number }],
        ["replicaTimeout", { id, replicas: 1, lease: "1 second", replicaTimeout: "1 second" }]
      ]
      for (const [option, options] of bad) {
        for (const entry of entryPoints(options)) {
          const error = yield* Effect.flip(entry)
          expect(error._tag).toBe("InvalidOptions")
          expect(error._tag === "InvalidOptions" && error.option).toBe(option)
        }
      }
      expect(yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence))).toBe(1)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("on the memory backend replicas > 0 is InvalidOptions (it has no replicas); 0 is the default", () =>
    Effect.gen(function*() {
      const id = yield* uniqueId("replicas-memory")
      for (const entry of entryPoints({ id, replicas: 1 })) {
        const error = yield* Effect.flip(entry)
        expect(error._tag === "InvalidOptions" && [error.option, error.expected, error.received]).toEqual([
          "replicas",
          "0: the memory backend has no replicas to wait for",
          "1"
        ])
      }
      expect(yield* Effect.scoped(Effect.map(Lock.acquire({ id, replicas: 0 }), (lease) => lease.fence))).toBe(1)
    }).pipe(Effect.provide(Memory.layer)))
})

layer(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)), { timeout: 30_000, excludeTestServices: true })(
  "replicas on Upstash",
  (it) => {
    it.effect("replicas > 0 is InvalidOptions before any command reaches Redis", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const id = yield* uniqueId("replicas-upstash")
        const before = yield* commandCalls(raw)
        const error = yield* Effect.flip(Lock.withLock({ id, replicas: 1 })(Effect.void))
        expect(error._tag === "InvalidOptions" && error.expected).toBe(
          "0: the upstash backend has no replicas to wait for"
        )
        // only the INFO itself was counted in between
        expect(yield* commandCalls(raw)).toBe(before + 1)
      }).pipe(Effect.provide(UpstashServer.upstash), Effect.scoped))
  }
)

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })(
  "replicas on a redis-server without replicas",
  (it) => {
    it.effect("the won lock is given back and the acquisition fails with RedisError after replicaTimeout", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const id = yield* uniqueId("replicas-none")
        const keys = lockKeys(DEFAULT_PREFIX, id)
        const started = Date.now()
        const error = yield* Effect.flip(Lock.withLock({ id, replicas: 1, replicaTimeout: "80 millis" })(Effect.void))
        expect(Date.now() - started).toBeGreaterThanOrEqual(75)
        expect(error._tag).toBe("RedisError")
        expect(error.message).toBe(
          `Redis wait failed: lock "${id}" was confirmed by 0 of 1 replica(s) within 80 ms; it was given back`
        )
        expect(yield* Effect.promise(() => raw.exists(keys.lock))).toBe(0)
        const given = Number(yield* Effect.promise(() => raw.get(keys.fence)))
        expect(given).toBeGreaterThan(0)
        // not contention: withLockIfAvailable does not turn it into "someone else has it"
        const ifAvailable = yield* Effect.flip(
          Lock.withLockIfAvailable({ id, replicas: 1, replicaTimeout: 20 })(Effect.void)
        )
        expect(ifAvailable._tag).toBe("RedisError")
        expect(yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence))).toBe(given + 2)
      }).pipe(Effect.provide(RedisServer.ioredis), Effect.scoped))

    it.effect("the wait for replicas ends with the acquisition's timeout when that comes first", () =>
      Effect.gen(function*() {
        const id = yield* uniqueId("replicas-deadline")
        const started = Date.now()
        const error = yield* Effect.flip(
          Lock.withLock({ id, replicas: 1, replicaTimeout: "5 seconds", timeout: "100 millis" })(Effect.void)
        )
        expect(error._tag).toBe("RedisError")
        expect(Date.now() - started).toBeLessThan(2000)
      }).pipe(Effect.provide(RedisServer.ioredis)))

    it.effect("the next waiter in line gets the lock an unconfirmed acquisition gives back", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const id = yield* uniqueId("replicas-handoff")
        const keys = lockKeys(DEFAULT_PREFIX, id)
        // a holder, a waiter that wants replicas (it will win and fail), and a plain waiter behind it
        const holder = yield* Lock.make({ id })
        expect(yield* holder.acquire()).toBe(true)
        const first = Option.getOrThrow(yield* holder.fence)
        const confirming = yield* Effect.fork(
          Effect.flip(
            Lock.withLock({ id, replicas: 1, replicaTimeout: "100 millis", timeout: "10 seconds" })(Effect.void)
          )
        )
        yield* eventually(Effect.promise(() => raw.zcard(keys.queue)), (n) => n === 1)
        const plain = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), (l) => l.fence))
        )
        yield* eventually(Effect.promise(() => raw.zcard(keys.queue)), (n) => n === 2)
        expect(yield* holder.release).toBe(true)
        expect((yield* Fiber.join(confirming))._tag).toBe("RedisError")
        expect(yield* Fiber.join(plain)).toBe(first + 2)
      }).pipe(Effect.provide(RedisServer.ioredis), Effect.scoped))

    it.effect("an acquisition interrupted while it waits for replicas gives the lock back", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const id = yield* uniqueId("replicas-interrupt")
        const keys = lockKeys(DEFAULT_PREFIX, id)
        const fiber = yield* Effect.fork(Lock.withLock({ id, replicas: 1, replicaTimeout: "500 millis" })(Effect.never))
        yield* eventually(Effect.promise(() => raw.exists(keys.lock)), (n) => n === 1)
        const first = Number(yield* Effect.promise(() => raw.get(keys.fence)))
        yield* Fiber.interrupt(fiber)
        yield* eventually(Effect.promise(() => raw.exists(keys.lock)), (n) => n === 0)
        expect(yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence))).toBe(first + 1)
      }).pipe(Effect.provide(RedisServer.ioredis), Effect.scoped))
  }
)
