/**
 * An Upstash-compatible REST server in front of a real redis-server, for tests (there is no Upstash
 * offline). Faithful to what `@upstash/redis` sends and expects:
 *
 * - `POST /` with a JSON command array → `{ result }`, or HTTP 400 `{ error }` when Redis rejects it;
 * - `POST /pipeline` and `POST /multi-exec` with an array of commands → one `{ result }` / `{ error }`
 *   per command (multi-exec runs them in MULTI/EXEC on a connection of its own);
 * - `Authorization: Bearer <token>`, else HTTP 401 `{ error }`;
 * - `Upstash-Encoding: base64`: bulk strings base64-encoded in results (nested arrays too), numbers and
 *   null as they are, status replies ("OK") plain;
 * - `POST /subscribe/<channel>` (the channel percent-decoded) → a `text/event-stream` over a real
 *   subscription on a Redis connection of its own: `data: subscribe,<channel>,1` once Redis confirmed
 *   it, then `data: message,<channel>,<payload>` per message; the connection is closed with the request.
 */
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, type Scope, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import * as http from "node:http"
import type * as Redis from "../../src/Redis.js"
import * as UpstashBackend from "../../src/Redis/Upstash.js"
import { RedisServer } from "./RedisServer.js"
import * as UpstashFaults from "./UpstashFaults.js"

export interface Upstash {
  readonly url: string
  readonly token: string
  /** How many `/subscribe` event streams are open (each holds its own Redis connection). */
  readonly streams: () => number
  /** How many `/subscribe` event streams were ever opened. */
  readonly opened: () => number
  /** Ends every open event stream, as a server or proxy closing them would. */
  readonly endStreams: () => void
  /** Fault hooks on single commands (test/utils/UpstashFaults.ts). */
  readonly faults: UpstashFaults.Faults
}

export class UpstashServer extends Context.Tag("test/UpstashServer")<UpstashServer, Upstash>() {}

type Json = string | number | null | ReadonlyArray<Json>

/**
 * A Redis reply as Upstash puts it in JSON. ioredis hands over bulk strings and status replies alike
 * as Buffers; "OK" goes plain, as Upstash sends status replies (the client reads a bulk "OK" the same).
 */
const encode = (reply: unknown, base64: boolean): Json => {
  if (reply === null || reply === undefined) return null
  if (typeof reply === "number") return reply
  if (Buffer.isBuffer(reply)) {
    const text = reply.toString("utf8")
    return base64 && text !== "OK" ? reply.toString("base64") : text
  }
  if (typeof reply === "string") return reply
  if (Array.isArray(reply)) return reply.map((item) => encode(item, base64))
  return String(reply)
}

type Outcome = { readonly result: Json } | { readonly error: string }

const isCommand = (u: unknown): u is ReadonlyArray<string | number> =>
  Array.isArray(u) && u.length > 0 && u.every((x) => typeof x === "string" || typeof x === "number")

/** Starts the REST server on a free loopback port; it and its Redis connections close with the scope. */
export const start = (options: { readonly redisUrl: string; readonly token: string }): Effect.Effect<
  Upstash,
  unknown,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const connect = Effect.acquireRelease(
      Effect.sync(() => new IORedis(options.redisUrl, { lazyConnect: false })),
      (c) => Effect.promise(() => c.quit().catch(() => "closed"))
    )
    const redis = yield* connect
    const transactional = yield* connect
    const exclusive = yield* Effect.makeSemaphore(1)
    const faults = UpstashFaults.make()
    yield* Effect.addFinalizer(() => faults.clear)

    const run = (command: ReadonlyArray<string | number>, base64: boolean, client = redis): Effect.Effect<Outcome> =>
      Effect.promise(() =>
        client.callBuffer(String(command[0]), ...command.slice(1).map(String)).then(
          (reply): Outcome => ({ result: encode(reply, base64) }),
          (error: unknown): Outcome => ({ error: error instanceof Error ? error.message : String(error) })
        )
      )

    const multiExec = (commands: ReadonlyArray<ReadonlyArray<string | number>>, base64: boolean) =>
      exclusive.withPermits(1)(Effect.gen(function*() {
        yield* run(["MULTI"], base64, transactional)
        const queued = yield* Effect.forEach(commands, (c) => run(c, base64, transactional))
        const exec = yield* run(["EXEC"], base64, transactional)
        const failedToQueue = queued.find((q) => "error" in q)
        if (failedToQueue !== undefined) return commands.map(() => failedToQueue)
        if ("error" in exec || !Array.isArray(exec.result)) return commands.map(() => exec)
        return exec.result.map((result): Outcome => ({ result }))
      }))

    const authorized = (request: HttpServerRequest.HttpServerRequest) =>
      request.headers["authorization"] === `Bearer ${options.token}`

    const handle = (mode: "single" | "pipeline" | "multi-exec") =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!authorized(request)) {
          return yield* HttpServerResponse.json({ error: "WRONGPASS invalid or missing auth token" }, { status: 401 })
        }
        const base64 = request.headers["upstash-encoding"] === "base64"
        const body = yield* Effect.orElseSucceed(request.json, () => undefined)
        if (mode === "single") {
          if (!isCommand(body)) {
            return yield* HttpServerResponse.json({ error: "ERR malformed command" }, { status: 400 })
          }
          return yield* faults.around(
            [body],
            Effect.flatMap(run(body, base64), (outcome) =>
              Effect.map(HttpServerResponse.json(outcome, { status: "error" in outcome ? 400 : 200 }), (response) => ({
                response,
                applied: !("error" in outcome)
              })))
          )
        }
        if (!Array.isArray(body) || !body.every(isCommand)) {
          return yield* HttpServerResponse.json({ error: "ERR malformed pipeline" }, { status: 400 })
        }
        return yield* faults.around(
          body,
          Effect.gen(function*() {
            const outcomes = mode === "pipeline"
              ? yield* Effect.forEach(body, (command) => run(command, base64))
              : yield* multiExec(body, base64)
            const response = yield* HttpServerResponse.json(outcomes)
            return {
              response,
              applied: outcomes.every((outcome) =>
                !("error" in outcome)
              )
            }
          })
        )
      })

    /** How many event streams are open now (each holds one Redis connection), and were ever opened. */
    let streams = 0
    let opened = 0
    const ends = new Set<() => void>()
    const subscribe = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!authorized(request)) {
        return yield* HttpServerResponse.json({ error: "WRONGPASS invalid or missing auth token" }, { status: 401 })
      }
      const path = new URL(request.url, "http://fixture").pathname
      const channel = decodeURIComponent(path.slice("/subscribe/".length))
      if (channel === "") {
        return yield* HttpServerResponse.json({ error: "ERR missing channel" }, { status: 400 })
      }
      const events = Stream.asyncScoped<string>((emit) =>
        Effect.gen(function*() {
          const connection = yield* Effect.acquireRelease(
            Effect.sync(() => {
              streams++
              opened++
              return new IORedis(options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 0 })
            }),
            (c) =>
              Effect.sync(() => {
                streams--
                c.disconnect()
              })
          )
          connection.on("error", () => {})
          connection.on("message", (name: string, message: string) => void emit.single(`message,${name},${message}`))
          connection.on("end", () => void emit.end())
          const end = () => void emit.end()
          ends.add(end)
          yield* Effect.addFinalizer(() => Effect.sync(() => ends.delete(end)))
          const count = yield* Effect.promise(() => connection.subscribe(channel).then((n) => Number(n), () => -1))
          if (count < 0) return yield* Effect.sync(() => void emit.end())
          yield* Effect.sync(() => void emit.single(`subscribe,${channel},${count}`))
        })
      ).pipe(Stream.map((data) => `data: ${data}\n\n`), Stream.encodeText)
      return HttpServerResponse.stream(events, {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-cache" }
      })
    })

    const app = HttpRouter.empty.pipe(
      HttpRouter.post("/subscribe/*", subscribe),
      HttpRouter.post("/", handle("single")),
      HttpRouter.post("/pipeline", handle("pipeline")),
      HttpRouter.post("/multi-exec", handle("multi-exec"))
    )
    const context = yield* Layer.build(
      HttpServer.serve(app).pipe(
        Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
      )
    )
    const url = yield* HttpServer.addressWith((address) =>
      Effect.succeed(address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "")
    ).pipe(Effect.provide(context))
    return {
      url,
      token: options.token,
      faults,
      streams: () => streams,
      opened: () => opened,
      endStreams: () => {
        for (const end of ends) end()
      }
    }
  })

/** The REST token the test fixture accepts. */
export const TEST_TOKEN = "test-token-0f4c2b9e"

/** A REST fixture in front of the file's redis-server. */
export const layer: Layer.Layer<UpstashServer, unknown, RedisServer> = Layer.scoped(
  UpstashServer,
  Effect.flatMap(RedisServer, (server) => start({ redisUrl: server.url, token: TEST_TOKEN }))
)

/** The Upstash backend (a fresh `@upstash/redis` client with its defaults) on the fixture. */
export const upstash: Layer.Layer<Redis.Redis, unknown, UpstashServer> = Layer.unwrapEffect(
  Effect.map(UpstashServer, (server) => UpstashBackend.layer({ url: server.url, token: Redacted.make(server.token) }))
)
