/**
 * Real redis-server processes for tests: started on a free loopback port, stopped with their scope.
 * The binary comes from PATH; with REDIS_URL set, `layer` uses that server instead of starting one.
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Context, Data, Deferred, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as net from "node:net"
import * as IoRedisBackend from "../../src/Redis/IoRedis.js"

export class RedisServerError extends Data.TaggedError("RedisServerError")<{ readonly message: string }> {}

export interface Server {
  readonly host: string
  readonly port: number
  readonly url: string
  /** Whether this harness started (and so may kill/restart) the server. */
  readonly owned: boolean
}

export class RedisServer extends Context.Tag("test/RedisServer")<RedisServer, Server>() {}

/** A port nobody listens on right now (the OS picks it). */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.unref()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const missing =
  "redis-server was not found on PATH and REDIS_URL is not set: install Redis (apt-get install redis-server) " +
  "or point REDIS_URL at a server the tests may use"

/**
 * Waits, by reading its log, until a started `redis-server` accepts connections (20 s at most); the log
 * is drained for the server's whole life, so its pipe never fills. A server that exits or never gets
 * ready fails with `error` of its first log lines.
 */
export const untilReady = <E>(
  process: CommandExecutor.Process,
  error: (message: string) => E
): Effect.Effect<void, E, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void, E>()
    const log: Array<string> = []
    yield* process.stdout.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) => {
        if (log.length < 50) log.push(line)
        return line.includes("Ready to accept connections") ? Deferred.succeed(ready, undefined) : Effect.void
      }),
      Effect.ensuring(Effect.suspend(() => Deferred.fail(ready, error(`redis-server exited:\n${log.join("\n")}`)))),
      Effect.ignore,
      Effect.forkScoped
    )
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: "20 seconds",
        onTimeout: () => error(`redis-server did not start:\n${log.join("\n")}`)
      })
    )
  })

/**
 * Starts `redis-server` on `port` (a free one by default) and waits, by reading its log, until it
 * accepts connections. The process is killed when the scope closes.
 */
export const start = (
  options: { readonly port?: number; readonly args?: ReadonlyArray<string> } = {}
): Effect.Effect<Server, RedisServerError, Scope.Scope | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const command = Command.make(
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
      ...(options.args ?? [])
    )
    const process = yield* Command.start(command).pipe(
      Effect.mapError(() => new RedisServerError({ message: missing }))
    )
    yield* untilReady(process, (message) => new RedisServerError({ message }))
    return { host: "127.0.0.1", port, url: `redis://127.0.0.1:${port}`, owned: true }
  })

/** Starts a server, trying a fresh port again if another process took the chosen one first. */
export const startFresh = (options: { readonly args?: ReadonlyArray<string> } = {}) =>
  start(options).pipe(Effect.retry({ times: 3 }))

const fromEnv: Option.Option<Server> = Option.fromNullable(process.env.REDIS_URL).pipe(
  Option.map((url) => {
    const parsed = new URL(url)
    return { host: parsed.hostname, port: Number(parsed.port || 6379), url, owned: false }
  })
)

/** One server for a test file: REDIS_URL's if set, else a private redis-server. */
export const layer: Layer.Layer<RedisServer, RedisServerError> = Option.match(fromEnv, {
  onSome: (server) => Layer.succeed(RedisServer, server),
  onNone: () => Layer.scoped(RedisServer, startFresh()).pipe(Layer.provide(NodeContext.layer))
})

/** A private server that this harness owns (for tests that kill or restart it), ignoring REDIS_URL. */
export const layerOwned: Layer.Layer<RedisServer, RedisServerError> = Layer.scoped(RedisServer, startFresh()).pipe(
  Layer.provide(NodeContext.layer)
)

/** The IoRedis backend on the file's server (one client per use). */
export const ioredis = Layer.unwrapScoped(
  Effect.map(RedisServer, (server) => IoRedisBackend.layer({ url: server.url }))
)
