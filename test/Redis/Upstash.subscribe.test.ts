/**
 * Wake-ups over Server-Sent Events on Upstash: the REST fixture's `/subscribe/<channel>` endpoint on its
 * own (over a real redis-server subscription), `@upstash/redis`'s `subscribe` through it, and the
 * backend's shared subscriber on top. Real HTTP and a real redis-server; waits are for conditions.
 */
import { expect, layer } from "@effect/vitest"
import { Redis as UpstashRedis } from "@upstash/redis"
import { Effect, Exit, Fiber, Layer, Redacted } from "effect"
import { Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../../src/internal/keys.js"
import { decodeInteger, Redis, script } from "../../src/Redis.js"
import * as Streams from "../../src/Redis/internal/upstashStreams.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { handOffDelays, median } from "../utils/handOff.js"
import * as HttpProxy from "../utils/HttpProxy.js"
import { eventually } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const one = script<number>({
  name: "test.one",
  lua: "return 1",
  numberOfKeys: 0,
  local: () => 1,
  decode: decodeInteger
})

const servers = UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer))

const raw = Effect.flatMap(
  RedisServer.RedisServer,
  (server) =>
    Effect.acquireRelease(
      Effect.sync(() => new IORedis(server.url)),
      (c) => Effect.promise(() => c.quit().catch(() => ""))
    )
)

const numsub = (client: IORedis, channel: string) =>
  Effect.promise(() => client.pubsub("NUMSUB", channel)).pipe(Effect.map((reply) => Number(reply[1])))

/** Opens `/subscribe/<channel>` with fetch and collects its `data:` lines until the scope closes. */
const openStream = (url: string, token: string, channel: string) =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const response = yield* Effect.promise(() =>
      fetch(`${url}/subscribe/${channel}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
        body: "[]",
        signal: controller.signal
      })
    )
    const lines: Array<string> = []
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let buffer = ""
    void (async () => {
      while (true) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        const parts = buffer.split("\n")
        buffer = parts.pop()!
        for (const line of parts) if (line.startsWith("data: ")) lines.push(line.slice(6))
      }
    })().catch(() => {})
    return { status: response.status, contentType: response.headers.get("content-type"), lines }
  })

layer(servers, { timeout: 30_000, excludeTestServices: true })("Upstash REST fixture: /subscribe", (it) => {
  it.scoped("POST /subscribe/<channel> is an event stream: subscribe once Redis has it, then each PUBLISH; closing the request closes its connection", () =>
    Effect.gen(function*() {
      const { streams, token, url } = yield* UpstashServer.UpstashServer
      const client = yield* raw
      const channel = yield* uniqueId("sse")
      const before = streams()
      yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* openStream(url, token, channel)
        expect(stream.status).toBe(200)
        expect(stream.contentType).toContain("text/event-stream")
        yield* eventually(Effect.sync(() => stream.lines), (lines) => lines.length === 1)
        expect(stream.lines).toEqual([`subscribe,${channel},1`])
        expect(yield* numsub(client, channel)).toBe(1)
        expect(streams()).toBe(before + 1)
        expect(yield* Effect.promise(() => client.publish(channel, "first"))).toBe(1)
        expect(yield* Effect.promise(() => client.publish(channel, "with,commas"))).toBe(1)
        yield* eventually(Effect.sync(() => stream.lines), (lines) => lines.length === 3)
        expect(stream.lines.slice(1)).toEqual([`message,${channel},first`, `message,${channel},with,commas`])
      }))
      yield* eventually(numsub(client, channel), (n) => n === 0)
      yield* eventually(Effect.sync(streams), (n) => n === before)
    }))

  it.scoped("POST /subscribe without the token is HTTP 401 and subscribes nothing", () =>
    Effect.gen(function*() {
      const { url } = yield* UpstashServer.UpstashServer
      const client = yield* raw
      const channel = yield* uniqueId("sse-auth")
      const stream = yield* openStream(url, "wrong", channel)
      expect(stream.status).toBe(401)
      expect(yield* numsub(client, channel)).toBe(0)
    }))

  it.scoped("a PUBLISH by another client reaches an @upstash/redis subscriber through the fixture", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const client = yield* raw
      const channel = yield* uniqueId("sse-client")
      const redis = new UpstashRedis({ url, token })
      const subscription = redis.subscribe<string>(channel)
      yield* Effect.addFinalizer(() => Effect.promise(() => subscription.unsubscribe()))
      const counts: Array<number> = []
      const messages: Array<unknown> = []
      subscription.on("subscribe", (count) => counts.push(count))
      subscription.on("message", ({ message }) => messages.push(message))
      yield* eventually(Effect.sync(() => counts), (c) => c.length === 1)
      expect(counts).toEqual([1])
      expect(yield* Effect.promise(() => client.publish(channel, "hello"))).toBe(1)
      yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
      expect(messages).toEqual(["hello"])
    }))
})

layer(servers, { timeout: 30_000, excludeTestServices: true })("Upstash backend: wake-ups over SSE", (it) => {
  it.scoped("the layer's subscriber is active only once the stream is confirmed, and PUBLISHes reach listeners", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const channel = yield* uniqueId("backend-sse")
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        expect(subscriber).toBeDefined()
        const messages: Array<string> = []
        const listening = yield* subscriber.listen(channel, (m) => messages.push(m))
        expect(listening.active).toBe(false)
        expect(subscriber.isActive(channel)).toBe(false)
        yield* subscriber.subscribe(channel)
        expect(subscriber.isActive(channel)).toBe(true)
        expect(yield* numsub(client, channel)).toBe(1)
        // JSON-looking tokens come through as sent (the layer's streams do not deserialize)
        for (const token of ["123", "1e5", "null", "\"q\"", "a,b"]) {
          expect(yield* Effect.promise(() => client.publish(channel, token))).toBe(1)
        }
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 5)
        expect(messages).toEqual(["123", "1e5", "null", "\"q\"", "a,b"])
      }).pipe(Effect.provide(UpstashServer.upstash))
      // the layer is gone: so is its stream
      yield* eventually(numsub(client, channel), (n) => n === 0)
    }))

  // Issue 23 §5. Was: ~950 ms per hand-off (each waiter waited a reservation for a confirmation that never came).
  it.scoped("behind a proxy that buffers the event stream, waiters poll: hand-offs take a poll, not a second", () =>
    Effect.gen(function*() {
      const fixture = yield* UpstashServer.UpstashServer
      const proxy = yield* HttpProxy.buffering(fixture.url)
      const client = yield* raw
      const id = yield* uniqueId("buffered-sse")
      const { channel } = lockKeys(DEFAULT_PREFIX, id)
      yield* Effect.gen(function*() {
        const delays = yield* handOffDelays(id, 6, client)
        // the stream was opened and is held back: never confirmed, so never counted on
        expect(proxy.held()).toBeGreaterThanOrEqual(1)
        expect((yield* Redis).subscriber!.isActive(channel)).toBe(false)
        // polling speed (tens of ms; one slow round on a loaded machine is allowed), not a second each
        expect(median(delays)).toBeLessThan(400)
      }).pipe(Effect.provide(Upstash.layer({ url: proxy.url, token: Redacted.make(fixture.token) })))
    }))

  it.scoped("a stream that ends is noticed: the channel is inactive until a new stream is confirmed, then wakes again", () =>
    Effect.gen(function*() {
      const fixture = yield* UpstashServer.UpstashServer
      const client = yield* raw
      const channel = yield* uniqueId("reopen")
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        const messages: Array<string> = []
        yield* subscriber.listen(channel, (m) => messages.push(m))
        yield* subscriber.subscribe(channel)
        const opened = fixture.opened()
        fixture.endStreams()
        yield* eventually(Effect.sync(() => fixture.opened()), (n) => n === opened + 1)
        yield* eventually(Effect.sync(() => subscriber.isActive(channel)), (active) => active)
        expect(yield* numsub(client, channel)).toBe(1)
        expect(yield* Effect.promise(() => client.publish(channel, "again"))).toBe(1)
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
        expect(messages).toEqual(["again"])
      }).pipe(Effect.provide(UpstashServer.upstash))
    }))

  it.scoped("a channel whose name has commas, braces, slashes, ? # % and spaces round-trips its payloads exactly", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const channel = `effect-lock:lock:{${yield* uniqueId("a,b/c?d#e f%20")}}:wake`
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        const messages: Array<string> = []
        yield* subscriber.listen(channel, (m) => messages.push(m))
        yield* subscriber.subscribe(channel)
        yield* Effect.promise(() => client.publish(channel, "tok,en"))
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
        expect(messages).toEqual(["tok,en"])
      }).pipe(Effect.provide(UpstashServer.upstash))
    }))

  it.scoped("a stream nobody uses is closed by the sweep; one in use is kept", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const client = yield* raw
      const idle = yield* uniqueId("idle")
      const busy = yield* uniqueId("busy")
      const redis = new UpstashRedis({ url, token, automaticDeserialization: false })
      const subscriber = yield* Streams.make((channel) => redis.subscribe(channel), String, { linger: "200 millis" })
      yield* subscriber.listen(busy, () => {})
      yield* subscriber.subscribe(idle)
      yield* subscriber.subscribe(busy)
      expect((yield* numsub(client, idle)) + (yield* numsub(client, busy))).toBe(2)
      yield* eventually(numsub(client, idle), (n) => n === 0)
      expect(subscriber.isActive(idle)).toBe(false)
      expect(subscriber.isActive(busy)).toBe(true)
      expect(yield* numsub(client, busy)).toBe(1)
    }))

  it.scoped("a stream the server refuses is a RedisError and the channel stays inactive", () =>
    Effect.gen(function*() {
      const { url } = yield* UpstashServer.UpstashServer
      const channel = yield* uniqueId("refused")
      const redis = new UpstashRedis({ url, token: "wrong-token", retry: false })
      const subscriber = yield* Streams.make(
        (c) => redis.subscribe(c),
        (e) => (e instanceof Error ? e.message : String(e))
      )
      const exit = yield* Effect.exit(subscriber.subscribe(channel))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error._tag).toBe("RedisError")
      expect(error.message).toMatch(/WRONGPASS/)
      expect(subscriber.isActive(channel)).toBe(false)
    }))

  it.scoped("a client without subscribe gives no subscriber (waiters poll)", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const redis = new UpstashRedis({ url, token })
      const withOut = yield* Effect.map(Redis, (r) => r.subscriber).pipe(
        Effect.provide(Upstash.layerClient({ eval: redis.eval, evalsha: redis.evalsha }))
      )
      expect(withOut).toBeUndefined()
      const withIt = yield* Effect.map(Redis, (r) => r.subscriber).pipe(Effect.provide(Upstash.layerClient(redis)))
      expect(withIt).toBeDefined()
    }))

  it.scoped("the per-operation timeout holds without a race per call, and a slow answer is a RedisError", () =>
    Effect.gen(function*() {
      const { token, url } = yield* UpstashServer.UpstashServer
      const redis = new UpstashRedis({ url, token })
      const never: Upstash.Client = { eval: () => new Promise(() => {}), evalsha: () => new Promise(() => {}) }
      const started = Date.now()
      const error = yield* Effect.flatMap(Redis, (r) => r.run(one, [], [])).pipe(
        Effect.provide(Upstash.layerClient(never, { timeout: "300 millis" })),
        Effect.flip
      )
      expect(error.message).toContain("no answer within 300ms")
      expect(Date.now() - started).toBeLessThan(5000)
      // and an answer in time is an answer
      const fiber = yield* Effect.fork(
        Effect.flatMap(Redis, (r) => r.run(one, [], [])).pipe(
          Effect.provide(Upstash.layerClient(redis, { timeout: "5 seconds" }))
        )
      )
      expect(yield* Fiber.join(fiber)).toBe(1)
    }))
})
