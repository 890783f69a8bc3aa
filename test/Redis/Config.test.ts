/**
 * The backends' `layerConfig`: what they read from `Config`, against a real redis-server and the
 * Upstash REST fixture.
 */
import { expect, layer } from "@effect/vitest"
import { Config, ConfigProvider, Deferred, Effect, Fiber, Layer } from "effect"
import { Redis as IORedis } from "ioredis"
import * as net from "node:net"
import * as Lock from "../../src/Lock.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const servers = UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer))
const fromMap = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))

layer(servers, { timeout: 30_000, excludeTestServices: true })("layerConfig", (it) => {
  it.effect("Upstash falls back to KV_REST_API_URL and KV_REST_API_TOKEN, as Redis.fromEnv() does", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const acquired = yield* Effect.flatMap(Lock.make({ id: yield* uniqueId("kv") }), (l) => l.acquire()).pipe(
        Effect.provide(Upstash.layerConfig()),
        Effect.withConfigProvider(fromMap([["KV_REST_API_URL", url], ["KV_REST_API_TOKEN", token]]))
      )
      expect(acquired).toBe(true)
    }))

  it.effect("Upstash prefers UPSTASH_REDIS_REST_* over KV_REST_API_*", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const acquired = yield* Effect.flatMap(Lock.make({ id: yield* uniqueId("kv") }), (l) => l.acquire()).pipe(
        Effect.provide(Upstash.layerConfig()),
        Effect.withConfigProvider(fromMap([
          ["UPSTASH_REDIS_REST_URL", url],
          ["UPSTASH_REDIS_REST_TOKEN", token],
          ["KV_REST_API_URL", "http://127.0.0.1:1"],
          ["KV_REST_API_TOKEN", "wrong"]
        ]))
      )
      expect(acquired).toBe(true)
    }))

  it.effect("Upstash with neither name set fails with a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flatMap(Lock.make({ id: "none" }), (l) => l.acquire()).pipe(
        Effect.provide(Upstash.layerConfig()),
        Effect.withConfigProvider(fromMap([])),
        Effect.flip
      )
      expect(String(error)).toContain("UPSTASH_REDIS_REST_URL")
    }))

  it.scoped("IoRedis reads the database index through Config", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const id = yield* uniqueId("db")
      yield* Effect.flatMap(Lock.make({ id }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layerConfig({ url: Config.redacted("REDIS_URL"), db: Config.integer("REDIS_DB") })),
        Effect.withConfigProvider(fromMap([["REDIS_URL", server.url], ["REDIS_DB", "3"]]))
      )
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(server.url, { lazyConnect: true })),
        (c) => Effect.promise(() => c.quit())
      )
      const key = `effect-lock:lock:{${id}}`
      expect(yield* Effect.promise(() => client.exists(key))).toBe(0)
      yield* Effect.promise(() => client.select(3))
      expect(yield* Effect.promise(() => client.exists(key))).toBe(1)
    }))

  it.scoped("IoRedis with tls set through Config opens the connection with a TLS handshake", () =>
    Effect.gen(function*() {
      // A loopback listener that only records whether the client's first bytes are a TLS record.
      const firstByte = yield* Deferred.make<number>()
      const server = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const s = net.createServer((socket) => {
            socket.once("data", (data) => {
              Deferred.unsafeDone(firstByte, Effect.succeed(data[0]!))
              socket.destroy()
            })
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.async<void>((resume) => void s.close(() => resume(Effect.void)))
      )
      const { port } = server.address() as net.AddressInfo
      const attempt = yield* Effect.flatMap(Lock.make({ id: "tls" }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layerConfig({ url: Config.redacted("REDIS_URL"), tls: Config.boolean("REDIS_TLS") })),
        Effect.withConfigProvider(fromMap([["REDIS_URL", `redis://127.0.0.1:${port}`], ["REDIS_TLS", "true"]])),
        Effect.fork
      )
      expect(yield* Deferred.await(firstByte)).toBe(0x16) // TLS handshake record
      yield* Fiber.interrupt(attempt)
    }))
})
