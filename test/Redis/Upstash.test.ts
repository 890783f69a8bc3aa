/**
 * The Upstash backend over real HTTP: the REST fixture itself, the client's defaults (JSON
 * deserialization, base64, auto-pipelining), every failure shape, secrecy of the token, and an
 * edge-runtime bundle that must not touch Node.
 */
import { expect, layer } from "@effect/vitest"
import { Redis as UpstashRedis } from "@upstash/redis"
import { ConfigProvider, Effect, Either, Layer, Logger, LogLevel, Redacted } from "effect"
import { build } from "esbuild"
import { Redis as IORedis } from "ioredis"
import * as net from "node:net"
import * as vm from "node:vm"
import * as Lock from "../../src/Lock.js"
import * as Redis from "../../src/Redis.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
    return { status: response.status, body: (await response.json()) as any }
  })

const b64 = (text: string) => Buffer.from(text).toString("base64")

const servers = UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer))

/** A script Redis refuses to run: its error must come back as a RedisError. */
const broken = Redis.script<number>({
  name: "test.broken",
  numberOfKeys: 1,
  lua: "return redis.call('NOSUCHCOMMAND', KEYS[1])",
  local: () => 0,
  decode: Redis.decodeInteger
})

layer(servers, { timeout: 30_000, excludeTestServices: true })("Upstash REST fixture", (it) => {
  it.effect("POST / runs one command; strings are base64 with Upstash-Encoding, numbers and null are not", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const auth = { authorization: `Bearer ${token}` }
      const key = yield* uniqueId("fixture")
      expect(yield* post(url, ["SET", key, "välue"], auth)).toEqual({ status: 200, body: { result: "OK" } })
      expect(yield* post(url, ["GET", key], { ...auth, "upstash-encoding": "base64" })).toEqual({
        status: 200,
        body: { result: b64("välue") }
      })
      expect((yield* post(url, ["GET", key], auth)).body).toEqual({ result: "välue" })
      expect((yield* post(url, ["INCR", `${key}:n`], { ...auth, "upstash-encoding": "base64" })).body).toEqual({
        result: 1
      })
      expect((yield* post(url, ["GET", `${key}:none`], { ...auth, "upstash-encoding": "base64" })).body).toEqual({
        result: null
      })
      const nested = yield* post(url, ["EVAL", "return {'a', 7, {'b', false}}", "0"], {
        ...auth,
        "upstash-encoding": "base64"
      })
      expect(nested.body).toEqual({ result: [b64("a"), 7, [b64("b"), null]] })
    }))

  it.effect("a missing or wrong token is HTTP 401 with { error }", () =>
    Effect.gen(function*() {
      const { url } = yield* UpstashServer.UpstashServer
      const missing = yield* post(url, ["PING"])
      const wrong = yield* post(url, ["PING"], { authorization: "Bearer nope" })
      for (const response of [missing, wrong]) {
        expect(response.status).toBe(401)
        expect(typeof response.body.error).toBe("string")
      }
    }))

  it.effect("a command Redis rejects is HTTP 400 with { error }", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const response = yield* post(url, ["NOSUCHCOMMAND", "x"], { authorization: `Bearer ${token}` })
      expect(response.status).toBe(400)
      expect(response.body.error).toMatch(/unknown command/i)
    }))

  it.effect("/pipeline and /multi-exec answer one { result } or { error } per command", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const auth = { authorization: `Bearer ${token}`, "upstash-encoding": "base64" }
      const key = yield* uniqueId("pipe")
      const pipeline = yield* post(`${url}/pipeline`, [["SET", key, "1"], ["NOSUCHCOMMAND"], ["INCR", key]], auth)
      expect(pipeline.status).toBe(200)
      expect(pipeline.body[0]).toEqual({ result: "OK" })
      expect(pipeline.body[1].error).toMatch(/unknown command/i)
      expect(pipeline.body[2]).toEqual({ result: 2 })
      const multi = yield* post(`${url}/multi-exec`, [["INCR", key], ["GET", key]], auth)
      expect(multi.body).toEqual([{ result: 3 }, { result: b64("3") }])
    }))

  it.effect("with its defaults, @upstash/redis turns a stored \"123\" into 123 and \"null\" into null", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const client = new UpstashRedis({ url, token })
      const key = yield* uniqueId("json")
      yield* Effect.promise(() => client.set(key, "123"))
      expect(yield* Effect.promise(() => client.get(key))).toBe(123)
      yield* Effect.promise(() => client.set(key, "null"))
      expect(yield* Effect.promise(() => client.get(key))).toBeNull()
    }))
})

layer(servers, { timeout: 30_000, excludeTestServices: true })("Upstash backend", (it) => {
  it.effect("tokens that look like JSON (123, null, true, 1e5, {}) still compare correctly", () =>
    Effect.gen(function*() {
      for (const uuid of ["123", "null", "true", "1e5", "{\"a\":1}", "[1]", "\"quoted\""]) {
        const id = yield* uniqueId("jsonish")
        const mine = yield* Lock.make({ id })
        const theirs = yield* Lock.make({ id, retry: { attempts: 1 } })
        expect(yield* mine.acquire({ uuid })).toBe(true)
        expect(yield* mine.status).toBe("ACQUIRED")
        expect(yield* theirs.acquire({ uuid: "124" })).toBe(false)
        expect(yield* mine.extend(100)).toBe(true)
        expect(yield* mine.release).toBe(true)
      }
    }).pipe(Effect.provide(UpstashServer.upstash)))

  it.effect("scripts fall back to EVAL after SCRIPT FLUSH (NOSCRIPT), with and without auto-pipelining", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.RedisServer
      const { token, url } = yield* UpstashServer.UpstashServer
      for (const enableAutoPipelining of [true, false]) {
        yield* Effect.promise(() => new IORedis(server.url).script("FLUSH").then(() => "flushed"))
        const id = yield* uniqueId("noscript")
        const held = yield* Effect.flatMap(Lock.make({ id }), (l) => Effect.zipRight(l.acquire(), l.status)).pipe(
          Effect.provide(Upstash.layer({ url, token: Redacted.make(token), client: { enableAutoPipelining } }))
        )
        expect(held).toBe("ACQUIRED")
      }
    }))

  it.effect("a command Redis rejects is a RedisError, as HTTP 400 and inside a pipeline, without the command echo", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      for (const enableAutoPipelining of [true, false]) {
        const error = yield* Effect.flatMap(Redis.Redis, (r) => r.run(broken, ["k"], ["secret-arg"])).pipe(
          Effect.provide(Upstash.layer({ url, token: Redacted.make(token), client: { enableAutoPipelining } })),
          Effect.flip
        )
        expect(error._tag).toBe("RedisError")
        expect(error.message).toMatch(/unknown command|Unknown Redis command/i)
        expect(error.message).not.toContain("secret-arg")
      }
    }))

  it.effect("a wrong token is a RedisError, and the token shows nowhere: message, JSON, logs", () =>
    Effect.gen(function*() {
      const { url } = yield* UpstashServer.UpstashServer
      const logs: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => logs.push(JSON.stringify([message, [...annotations]])))
      const secret = "wrong-token-5ca1ab1e"
      const backend = Upstash.layer({ url, token: Redacted.make(secret), client: { retry: false } })
      const error = yield* Effect.flatMap(Lock.make({ id: "auth" }), (l) => l.acquire()).pipe(
        Effect.provide(backend),
        Effect.flip,
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      expect(error._tag).toBe("RedisError")
      expect(error.message).toMatch(/WRONGPASS|auth/i)
      for (const text of [error.message, String(error), JSON.stringify(error), ...logs]) {
        expect(text).not.toContain(secret)
      }
    }))

  it.effect("an unreachable server is a RedisError: refused at once, or silent until the configured timeout", () =>
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const refused = yield* Effect.flatMap(Lock.make({ id: "gone" }), (l) => l.acquire()).pipe(
        Effect.provide(
          Upstash.layer({ url: `http://127.0.0.1:${port}`, token: Redacted.make("t"), client: { retry: false } })
        ),
        Effect.flip
      )
      expect(refused._tag).toBe("RedisError")
      expect(refused.message).toMatch(/fetch failed|ECONNREFUSED/)

      // A server that accepts connections and never answers.
      const silent = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer(() => {})
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const address = silent.address() as net.AddressInfo
      const timedOut = yield* Effect.flatMap(Lock.make({ id: "silent" }), (l) => l.acquire()).pipe(
        Effect.provide(
          Upstash.layer({ url: `http://127.0.0.1:${address.port}`, token: Redacted.make("t"), timeout: "300 millis" })
        ),
        Effect.flip
      )
      expect(timedOut._tag).toBe("RedisError")
      expect(timedOut.message).toContain("no answer within 300ms")
    }).pipe(Effect.scoped))

  it.effect("layerConfig reads UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const provider = ConfigProvider.fromMap(
        new Map([["UPSTASH_REDIS_REST_URL", url], ["UPSTASH_REDIS_REST_TOKEN", token]])
      )
      const acquired = yield* Effect.flatMap(Lock.make({ id: yield* uniqueId("env") }), (l) => l.acquire()).pipe(
        Effect.provide(Upstash.layerConfig()),
        Effect.withConfigProvider(provider)
      )
      expect(acquired).toBe(true)
    }))

  it.effect("an invalid URL is InvalidOptions when the layer is built", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flatMap(Lock.make({ id: "x" }), (l) => l.status).pipe(
        Effect.provide(Upstash.layer({ url: "not a url", token: Redacted.make("t") })),
        Effect.flip
      )
      expect(error._tag).toBe("InvalidOptions")
    }))

  it.effect("core + Upstash bundle for a browser target with no Node built-in, and run with only web globals", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const bundle = yield* Effect.promise(() =>
        build({
          entryPoints: ["test/fixtures/edge-entry.ts"],
          bundle: true,
          platform: "browser",
          format: "iife",
          globalName: "edge",
          write: false,
          logLevel: "silent"
        }).then((result) => Either.right(result.outputFiles[0]!.text), (error: Error) => Either.left(error.message))
      )
      expect(bundle).toEqual(Either.right(expect.any(String)))
      const code = Either.getOrThrow(bundle)
      expect(code).not.toMatch(/require\(["']node:/)
      // A worker-like global scope: web APIs only; no process, Buffer, require or global.
      const context = vm.createContext({
        fetch,
        Request,
        Response,
        Headers,
        URL,
        AbortController,
        AbortSignal,
        TextEncoder,
        TextDecoder,
        atob,
        btoa,
        crypto,
        console,
        setTimeout,
        clearTimeout,
        setInterval,
        clearInterval,
        queueMicrotask,
        structuredClone,
        performance,
        Blob,
        Event,
        EventTarget
      })
      vm.runInContext(`${code}\nglobalThis.edge = edge`, context)
      const result = yield* Effect.promise(() => (context as any).edge.run(url, token) as Promise<Array<unknown>>)
      expect(result).toEqual([true, "ACQUIRED", "guarded", true])
    }))
})
