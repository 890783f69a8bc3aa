/**
 * What only a real redis-server shows: EVALSHA/NOSCRIPT, the key layout and TTLs as Redis sees them,
 * expiry by Redis's own clock, client ownership, configuration, authentication and unreachable servers.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Redacted, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import * as scripts from "../../src/internal/lock/scripts.js"
import * as Lock from "../../src/Lock.js"
import { Redis } from "../../src/Redis.js"
import { sha1 } from "../../src/Redis/internal/sha1.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import { commandCalls, eventually, scriptCalls } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"

/** A plain ioredis client, outside the library, for checking what is really in Redis. */
const rawClient = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit()))

const failFast = { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false } as const

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })("IoRedis backend", (it) => {
  it.scoped("scripts run by EVALSHA and fall back to EVAL after SCRIPT FLUSH (NOSCRIPT)", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const raw = yield* rawClient(server.url)
      const id = yield* uniqueId("noscript")
      const lock = yield* Lock.make({ id })
      const sha = yield* sha1(scripts.acquire.script.lua)
      expect(yield* lock.acquire()).toBe(true)
      expect(yield* Effect.promise(() => raw.script("EXISTS", sha))).toEqual([1])
      yield* Effect.promise(() => raw.script("FLUSH"))
      expect(yield* lock.status).toBe("ACQUIRED") // status script: NOSCRIPT, then EVAL
      expect(yield* lock.release).toBe(true)
      expect(yield* lock.acquire()).toBe(true)
      expect(yield* Effect.promise(() => raw.script("EXISTS", sha))).toEqual([1])
    }).pipe(Effect.provide(RedisServer.ioredis)))

  it.scoped("keys are <prefix>lock:{id} with PX and <prefix>lock:{id}:fence with a TTL of 7 days, and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const raw = yield* rawClient(server.url)
      const id = yield* uniqueId("layout")
      const prefix = `${id}:`
      yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lock.acquire({ id, prefix, lease: 5000 })
        const keys = (yield* Effect.promise(() => raw.keys(`${prefix}*`))).sort()
        expect(keys).toEqual([`${prefix}lock:{${id}}`, `${prefix}lock:{${id}}:fence`])
        const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}lock:{${id}}`))
        expect(pttl).toBeGreaterThan(4000)
        const fenceTtl = yield* Effect.promise(() => raw.pttl(`${prefix}lock:{${id}}:fence`))
        expect(fenceTtl).toBeGreaterThan(7 * 24 * 60 * 60 * 1000 - 60_000)
        expect(yield* Effect.promise(() => raw.get(`${prefix}lock:{${id}}:fence`))).toBe(String(lease.fence))
      }))
      expect(yield* Effect.promise(() => raw.keys(`${prefix}*`))).toEqual([`${prefix}lock:{${id}}:fence`])
    }).pipe(Effect.provide(RedisServer.ioredis)))

  it.scoped("keep-alive holds a lease across many lease lengths on Redis's own clock, then it is released", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const raw = yield* rawClient(server.url)
      const scripts = scriptCalls(raw)
      const id = yield* uniqueId("keepalive")
      const key = `effect-lock:lock:{${id}}`
      // A 600 ms lease; the work lasts until the keeper has extended it 12 times (a tick every third of the
      // lease: four leases), while a second client keeps checking that Redis still has the key.
      const seen = yield* Lock.withLock({ id, lease: 600 })(
        Effect.gen(function*() {
          const samples: Array<number> = []
          const look = Effect.zipWith(scripts, Effect.promise(() => raw.pttl(key)), (extensions, pttl) => {
            samples.push(pttl)
            return extensions
          })
          let extensions = yield* look
          for (let i = 0; i < 12; i++) extensions = yield* eventually(look, (n) => n > extensions, "10 seconds")
          return samples
        })
      )
      expect(seen.length).toBeGreaterThan(12)
      for (const pttl of seen) expect(pttl).toBeGreaterThan(0)
      expect(yield* Effect.promise(() => raw.exists(key))).toBe(0)
    }).pipe(Effect.provide(RedisServer.ioredis)))

  it.scoped("fibers with separate connections exclude each other and see increasing fences", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const raw = yield* rawClient(server.url)
      const id = yield* uniqueId("clients")
      const counter = `${id}:counter`
      const fences: Array<number> = []
      const worker = Effect.gen(function*() {
        for (let i = 0; i < 10; i++) {
          yield* Effect.scoped(Effect.gen(function*() {
            const lease = yield* Lock.acquire({ id, timeout: "20 seconds", retry: { attempts: 100_000, delay: 5 } })
            fences.push(lease.fence)
            const value = Number(yield* Effect.promise(() => raw.get(counter)))
            yield* Effect.sleep(1)
            yield* Effect.promise(() => raw.set(counter, String(value + 1))) // lost update if not exclusive
          }))
        }
      }).pipe(Effect.provide(IoRedis.layer({ url: server.url })))
      yield* Effect.all([worker, worker, worker, worker], { concurrency: "unbounded" })
      expect(yield* Effect.promise(() => raw.get(counter))).toBe("40")
      expect(fences).toEqual([...fences].sort((a, b) => a - b))
      expect(new Set(fences).size).toBe(40)
    }))

  it.scoped("layerClient runs over the user's client and never closes it; layer closes the client it made", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const client = yield* rawClient(server.url)
      const id = yield* uniqueId("owned")
      yield* Effect.scoped(
        Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
          Effect.provide(IoRedis.layerClient(client))
        )
      )
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")

      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(IoRedis.layer({ url: server.url }), scope)
      const redis = yield* Effect.provide(Redis, context)
      expect(yield* Effect.flatMap(Lock.make({ id }), (l) => l.status).pipe(Effect.provideService(Redis, redis)))
        .toBe("FREE")
      const clientsBefore = yield* Effect.promise(() => client.client("LIST"))
      yield* Scope.close(scope, Exit.void)
      const clientsAfter = yield* Effect.promise(() => client.client("LIST"))
      expect(String(clientsAfter).split("\n").length).toBeLessThan(String(clientsBefore).split("\n").length)
    }))

  it.scoped("layerConfig reads REDIS_URL from the ConfigProvider", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const id = yield* uniqueId("config")
      const provider = ConfigProvider.fromMap(new Map([["REDIS_URL", server.url]]))
      const acquired = yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layerConfig()),
        Effect.withConfigProvider(provider)
      )
      expect(acquired).toBe(true)
      const missing = yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layerConfig()),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.flip
      )
      expect(String(missing)).toContain("REDIS_URL")
    }))

  it.scoped("an unreachable server is a typed RedisError, not a crash", () =>
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const error = yield* Effect.flatMap(Lock.make({ id: "unreachable" }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layer({ url: `redis://127.0.0.1:${port}`, client: failFast })),
        Effect.flip
      )
      expect(error._tag).toBe("RedisError")
    }))

  it.scoped("on one node a hand-off wakes its waiter by classic PUBLISH: sharded pub/sub is for clusters", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const raw = yield* rawClient(server.url)
      expect((yield* Redis).sharded).toBe(false)
      const calls = commandCalls(raw)
      const [publishBefore, spublishBefore] = [yield* calls("publish"), yield* calls("spublish")]
      const id = yield* uniqueId("classic-publish")
      const holder = yield* Lock.make({ id })
      expect(yield* holder.acquire()).toBe(true)
      const first = Option.getOrThrow(yield* holder.fence)
      const waiter = yield* Effect.fork(
        Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), (l) => l.fence))
      )
      yield* eventually(Effect.promise(() => raw.zcard(`effect-lock:lock:{${id}}:queue`)), (n) => n === 1, "10 seconds")
      expect(yield* holder.release).toBe(true)
      expect(yield* Fiber.join(waiter)).toBe(first + 1)
      expect(yield* calls("publish")).toBe(publishBefore + 1)
      expect(yield* calls("spublish")).toBe(spublishBefore)
    }).pipe(Effect.provide(RedisServer.ioredis)))

  it.scoped("waitForReplicas on a server without replicas answers 0 once its timeout has passed", () =>
    Effect.gen(function*() {
      const redis = yield* Redis
      const id = yield* uniqueId("no-replicas")
      expect(yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire())).toBe(true)
      expect(yield* redis.waitForReplicas!(`effect-lock:lock:{${id}}`, 1, 50)).toBe(0)
    }).pipe(Effect.provide(RedisServer.ioredis)))
})

describe("IoRedis backend with a password", () => {
  it.scopedLive("a Redacted password authenticates; a wrong one is a RedisError that never shows it", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh({ args: ["--requirepass", "correct-horse-battery"] })
      const id = yield* uniqueId("auth")
      const ok = yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layer({ url: server.url, password: Redacted.make("correct-horse-battery") }))
      )
      expect(ok).toBe(true)

      const logs: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => {
        logs.push(JSON.stringify({ message, annotations: [...annotations] }))
      })
      const layerWithSecret = IoRedis.layer({
        url: server.url,
        password: Redacted.make("wrong-secret-pw"),
        client: failFast
      })
      const error = yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
        Effect.provide(layerWithSecret),
        Effect.flip,
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      expect(error._tag).toBe("RedisError")
      for (const text of [error.message, String(error), JSON.stringify(error), ...logs]) {
        expect(text).not.toContain("wrong-secret-pw")
      }
      expect(String(Redacted.make("wrong-secret-pw"))).not.toContain("wrong-secret-pw")
    }).pipe(Effect.provide(NodeContext.layer)))
})
