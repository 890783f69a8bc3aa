/**
 * Issue 22 §5: Redis set up to lose keys. On a layer's first use it reads `maxmemory-policy` and warns
 * once when it is anything but `noeviction`, or fails with a RedisError naming it (`eviction: "fail"`);
 * a server that refuses CONFIG is not an error. Real redis-server processes started with
 * `--maxmemory 10mb --maxmemory-policy allkeys-lru` (and others), over ioredis and over the REST fixture.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Redis as UpstashRedis } from "@upstash/redis"
import { Effect, Either, Layer, Logger, LogLevel } from "effect"
import * as Lock from "../../src/Lock.js"
import type { Redis } from "../../src/Redis.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { raw } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisCluster from "../utils/RedisCluster.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const LRU = ["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"]

/** A private redis-server with `args`, and a raw client on it. */
const server = (args: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const started = yield* RedisServer.startFresh({ args })
    return { ...started, admin: yield* raw(started.url) }
  })

/** `CONFIG` commands the server has run so far. */
const configCalls = (admin: { readonly info: (section: string) => Promise<string> }) =>
  Effect.map(
    Effect.promise(() => admin.info("commandstats")),
    (info) =>
      Number(/cmdstat_config\|get:calls=(\d+)/.exec(info)?.[1] ?? /cmdstat_config:calls=(\d+)/.exec(info)?.[1] ?? 0)
  )

interface Logged {
  readonly level: string
  readonly message: string
}

/**
 * Runs `self` with every log line recorded. A program of a user: a few locks taken and given back, some
 * at the same time, so the warning has many first uses to come from.
 */
const usedBy = (backend: Layer.Layer<Redis, unknown>) =>
  Effect.gen(function*() {
    const logs: Array<Logged> = []
    const logger = Logger.make(({ logLevel, message }) =>
      logs.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
    )
    const id = yield* uniqueId("eviction")
    const result = yield* Effect.gen(function*() {
      const fences = yield* Effect.all(
        Array.from({ length: 4 }, (_, i) =>
          Effect.scoped(Effect.map(Lock.acquire({ id: `${id}-${i}` }), (lease) => lease.fence))),
        { concurrency: "unbounded" }
      )
      const lock = yield* Lock.make({ id })
      const acquired = yield* lock.acquire()
      yield* lock.release
      return { fences, acquired }
    }).pipe(
      Effect.provide(backend),
      Effect.either,
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    const about = (level: string) =>
      logs.filter((l) => l.level === level && l.message.includes("maxmemory-policy"))
    return { result, warnings: about("WARN"), debug: about("DEBUG"), id }
  })

const expectWorked = (result: Either.Either<unknown, unknown>) =>
  expect(result).toEqual(Either.right({ fences: Array(4).fill(expect.any(Number)), acquired: true }))

describe("maxmemory-policy on a layer's first use, over ioredis (issue 22 §5)", () => {
  it.scopedLive(
    "allkeys-lru under maxmemory 10mb: one warning per layer that names the policy; locks work",
    () =>
      Effect.gen(function*() {
        const redis = yield* server(LRU)
        const { result, warnings } = yield* usedBy(IoRedis.layer({ url: redis.url }))
        expectWorked(result)
        // was: no word of it
        expect(warnings.map((w) => w.message)).toEqual([
          `127.0.0.1:${redis.port} has maxmemory-policy allkeys-lru (maxmemory 10485760 bytes): Redis may evict any ` +
          "key, a held lock's, its fence counter or its waiting line. A lock evicted while held has two owners: set " +
          "maxmemory-policy noeviction"
        ])
        const second = yield* usedBy(IoRedis.layer({ url: redis.url }))
        expect(second.warnings).toHaveLength(1) // once per layer, and each layer says it
      }).pipe(Effect.provide(NodeContext.layer)),
    30_000
  )

  it.scopedLive(
    "eviction: \"fail\": a RedisError naming the policy, nothing taken; accepted once it is noeviction",
    () =>
      Effect.gen(function*() {
        const redis = yield* server(LRU)
        const backend = yield* Layer.build(IoRedis.layer({ url: redis.url, eviction: "fail" }))
        const id = yield* uniqueId("strict")
        const error = yield* Effect.scoped(Lock.acquire({ id })).pipe(Effect.provide(backend), Effect.flip)
        expect(error._tag).toBe("RedisError")
        expect(error.message).toContain(
          `Redis check maxmemory-policy failed: 127.0.0.1:${redis.port} has maxmemory-policy allkeys-lru`
        )
        expect(error.message).toContain("(eviction: \"fail\")")
        expect(yield* Effect.promise(() => redis.admin.keys(`*${id}*`))).toEqual([])

        yield* Effect.promise(() => redis.admin.config("SET", "maxmemory-policy", "noeviction"))
        const fence = yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence)).pipe(
          Effect.provide(backend)
        )
        expect(fence).toBeGreaterThan(0)
      }).pipe(Effect.provide(NodeContext.layer)),
    30_000
  )

  it.scopedLive(
    "volatile-lru: the warning says any key with a TTL, a held lock's among them",
    () =>
      Effect.gen(function*() {
        const redis = yield* server(["--maxmemory", "10mb", "--maxmemory-policy", "volatile-lru"])
        const { result, warnings } = yield* usedBy(IoRedis.layer({ url: redis.url }))
        expectWorked(result)
        expect(warnings).toHaveLength(1)
        expect(warnings[0]!.message).toContain("maxmemory-policy volatile-lru (maxmemory 10485760 bytes)")
        expect(warnings[0]!.message).toContain("any key with a TTL, a held lock's among them")
      }).pipe(Effect.provide(NodeContext.layer)),
    30_000
  )

  it.scopedLive("noeviction: no warning, and one CONFIG GET for the layer's whole life", () =>
    Effect.gen(function*() {
      const redis = yield* server()
      const before = yield* configCalls(redis.admin)
      const { result, warnings } = yield* usedBy(IoRedis.layer({ url: redis.url }))
      expectWorked(result)
      expect(warnings).toEqual([])
      expect((yield* configCalls(redis.admin)) - before).toBe(1)
    }).pipe(Effect.provide(NodeContext.layer)), 30_000)

  it.scopedLive("eviction: \"ignore\": nothing is read, nothing is said", () =>
    Effect.gen(function*() {
      const redis = yield* server(LRU)
      const before = yield* configCalls(redis.admin)
      const { result, warnings } = yield* usedBy(IoRedis.layer({ url: redis.url, eviction: "ignore" }))
      expectWorked(result)
      expect(warnings).toEqual([])
      expect(yield* configCalls(redis.admin)).toBe(before)
    }).pipe(Effect.provide(NodeContext.layer)), 30_000)

  it.scopedLive(
    "a user who may not run CONFIG: not an error, in any mode; said once (debug, or a warning with fail)",
    () =>
      Effect.gen(function*() {
        const redis = yield* server(LRU)
        yield* Effect.promise(() =>
          redis.admin.call("ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all", "-config")
        )
        const url = `redis://app:app-pw@127.0.0.1:${redis.port}`
        const warn = yield* usedBy(IoRedis.layer({ url }))
        expectWorked(warn.result)
        expect(warn.warnings).toEqual([])
        expect(warn.debug).toHaveLength(1)
        expect(warn.debug[0]!.message).toMatch(/^could not read maxmemory-policy \(NOPERM .*'config\|get'/)
        const strict = yield* usedBy(IoRedis.layer({ url, eviction: "fail" }))
        expectWorked(strict.result)
        expect(strict.warnings).toHaveLength(1)
        expect(strict.warnings[0]!.message).toContain("eviction: \"fail\" cannot be enforced on this server")
      }).pipe(Effect.provide(NodeContext.layer)),
    30_000
  )
})

describe("maxmemory-policy on a layer's first use, over a Redis Cluster (issue 22 §5)", () => {
  it.scopedLive(
    "every master is read: one set to allkeys-lru is named, the others are not",
    () =>
      Effect.gen(function*() {
        const cluster = yield* RedisCluster.start
        const roles = yield* Effect.forEach(cluster.nodes, (node) =>
          Effect.flatMap(
            raw(`redis://${node.host}:${node.port}`),
            (client) =>
              Effect.promise(async () => ({ node, role: String(((await client.call("ROLE")) as Array<unknown>)[0]) }))
          ))
        const masters = roles.filter((r) => r.role === "master").map((r) => r.node)
        expect(masters).toHaveLength(3)
        const lossy = masters[1]!
        const client = yield* raw(`redis://${lossy.host}:${lossy.port}`)
        yield* Effect.promise(() => client.config("SET", "maxmemory-policy", "allkeys-lru"))
        const { result, warnings } = yield* usedBy(IoRedis.layerCluster({ nodes: cluster.addresses }))
        expectWorked(result)
        expect(warnings).toHaveLength(1)
        expect(warnings[0]!.message).toMatch(
          new RegExp(`^${lossy.host}:${lossy.port} has maxmemory-policy allkeys-lru \\(maxmemory 0: no limit yet\\)`)
        )
        for (const other of masters.filter((m) => m !== lossy)) {
          expect(warnings[0]!.message).not.toContain(`:${other.port} `)
        }
      }).pipe(Effect.provide(NodeContext.layer)),
    90_000
  )
})

describe("maxmemory-policy on a layer's first use, over the REST fixture (issue 22 §5)", () => {
  it.scopedLive(
    "Upstash.layer and layerClient warn once, or fail with eviction: \"fail\"",
    () =>
      Effect.gen(function*() {
        const redis = yield* server(LRU)
        const rest = yield* UpstashServer.start({ redisUrl: redis.url, token: "eviction-token" })
        const host = new URL(rest.url).host
        const viaLayer = yield* usedBy(Upstash.layer({ url: rest.url, token: rest.token }))
        expectWorked(viaLayer.result)
        expect(viaLayer.warnings).toHaveLength(1)
        expect(viaLayer.warnings[0]!.message).toContain(
          `${host} has maxmemory-policy allkeys-lru (maxmemory 10485760 bytes)`
        )

        const client = new UpstashRedis({ url: rest.url, token: rest.token })
        const viaClient = yield* usedBy(Upstash.layerClient(client))
        expectWorked(viaClient.result)
        expect(viaClient.warnings).toHaveLength(1)
        expect(viaClient.warnings[0]!.message).toContain("the Upstash database has maxmemory-policy allkeys-lru")

        const strict = yield* usedBy(Upstash.layer({ url: rest.url, token: rest.token, eviction: "fail" }))
        expect(strict.result._tag).toBe("Left")
        expect(String(strict.result)).toContain("has maxmemory-policy allkeys-lru")
      }).pipe(Effect.provide(NodeContext.layer)),
    30_000
  )

  it.scopedLive("a REST server that refuses CONFIG (as Upstash does) is not an error", () =>
    Effect.gen(function*() {
      const redis = yield* server(LRU)
      yield* Effect.promise(() =>
        redis.admin.call("ACL", "SETUSER", "rest", "on", ">rest-pw", "~*", "&*", "+@all", "-config")
      )
      const rest = yield* UpstashServer.start({
        redisUrl: `redis://rest:rest-pw@127.0.0.1:${redis.port}`,
        token: "refusing-token"
      })
      for (const eviction of ["warn", "fail"] as const) {
        const { debug, result, warnings } = yield* usedBy(Upstash.layer({ url: rest.url, token: rest.token, eviction }))
        expectWorked(result)
        expect([...debug, ...warnings]).toHaveLength(1)
        expect([...debug, ...warnings][0]!.message).toContain("could not read maxmemory-policy (NOPERM")
      }
    }).pipe(Effect.provide(NodeContext.layer)), 30_000)
})
