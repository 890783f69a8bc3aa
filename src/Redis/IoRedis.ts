/**
 * The Redis seam over TCP, through `ioredis` (a dependency of the package; only this module loads it).
 *
 * - {@link layer} creates a client from options and owns it (quits it when the layer is released).
 * - {@link layerClient} runs over a client you created (a `Redis` or a `Cluster`); it never closes it.
 * - {@link layerCluster} creates a Redis Cluster client from seed nodes and owns it;
 *   {@link layerClusterConfig} reads the nodes from `REDIS_CLUSTER_NODES`.
 *
 * Waiters share one subscriber connection per layer, duplicated from the client the first time a lock
 * is waited for, and closed with the layer. On a `Cluster` whose servers have `SPUBLISH` (Redis ≥ 7,
 * asked once when the layer is built), wake-ups use sharded pub/sub: published by the scripts with
 * `SPUBLISH`, heard with `SSUBSCRIBE` on the master of the lock's slot only.
 * - {@link layerConfig} reads the connection from `Config` (by default `REDIS_URL`).
 *
 * Scripts are sent with EVALSHA and fall back to EVAL when the server answers NOSCRIPT (after a restart
 * or `SCRIPT FLUSH`), or for good when the user may not run EVALSHA (an ACL with `-evalsha +eval`).
 * Every failure, whatever ioredis rejects with, becomes a `RedisError` whose detail names the cause: the
 * connection's last error (`connect ECONNREFUSED 127.0.0.1:6379`, `getaddrinfo ENOTFOUND …`, a TLS
 * error), never the password. To follow those errors the layer listens to the client's `error` events
 * (so ioredis no longer prints "Unhandled error event" for a client given to {@link layerClient}).
 *
 * On first use, a layer reads the server's `maxmemory-policy` and warns (once) if Redis may evict keys:
 * see {@link Eviction}.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as IoRedis from "effect-lock/Redis/IoRedis"
 *
 * const RedisLive = IoRedis.layer({ url: Redacted.make("redis://127.0.0.1:6379") })
 * Lock.withLock({ id: "job" })(Effect.log("working")).pipe(Effect.provide(RedisLive), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, Option, Redacted, Runtime, type Scope } from "effect"
import type { ClusterOptions as IORedisClusterOptions, RedisOptions } from "ioredis"
import { Cluster, Redis as IORedis } from "ioredis"
import { slotOf } from "../internal/slot.js"
import { render } from "../internal/validate.js"
import { InvalidOptions, RedisError } from "../LockError.js"
import * as Redis from "../Redis.js"
import * as Connection from "./internal/connection.js"
import { makeRun } from "./internal/evalsha.js"
import * as EvictionCheck from "./internal/eviction.js"
import * as IoRedisFaults from "./internal/ioredisFaults.js"
import * as IoRedisRestart from "./internal/ioredisRestart.js"
import * as IoRedisSubscriber from "./internal/ioredisSubscriber.js"
import { request } from "./internal/request.js"
import * as Timer from "./internal/timer.js"

/**
 * What a layer does, on its first use, about a server whose `maxmemory-policy` is not `noeviction` (Redis
 * may then evict a held lock's key, giving two owners, or a fence counter, whose fences then go back):
 * `"warn"` (the default) logs one warning per layer naming the policy; `"fail"` makes every operation a
 * `RedisError` naming it; `"ignore"` does not look. A server that refuses `CONFIG` is not an error.
 *
 * @since 0.1.0
 * @category models
 */
export type Eviction = "warn" | "fail" | "ignore"

/**
 * Options of {@link layer} and {@link layerClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS; kept `Redacted` because it may
   * hold a password. Any other scheme is `InvalidOptions` when the layer is built.
   */
  readonly url?: Redacted.Redacted | string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** Any other ioredis option (`host`, `port`, `db`, `commandTimeout`, `tls`, …). */
  readonly client?: Omit<RedisOptions, "password"> | undefined
  /** What to do about a server that may evict keys; see {@link Eviction}. Default `"warn"`. */
  readonly eviction?: Eviction | undefined
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Quits a connection, or drops it if it does not answer within a second (also inside a finalizer). */
const close = (client: IORedis | Cluster) =>
  Effect.tryPromise(() => client.quit()).pipe(
    Effect.interruptible, // a finalizer is uninterruptible: without this the timeout could not cut it
    Effect.timeout("1 second"),
    Effect.catchAll(() => Effect.sync(() => client.disconnect()))
  )

/**
 * An ioredis client as the layers use it: a `Redis` or a `Cluster` of ioredis 5 or 6. The two versions'
 * classes are distinct types to TypeScript (each has protected members); this is what both have.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly isCluster: boolean
  readonly status: string
  readonly duplicate: (...args: Array<any>) => unknown
  readonly evalsha: (...args: Array<any>) => Promise<unknown>
  readonly eval: (...args: Array<any>) => Promise<unknown>
  readonly call: (...args: Array<any>) => Promise<unknown>
  readonly on: (event: any, listener: (...args: Array<any>) => void) => unknown
  readonly off: (event: any, listener: (...args: Array<any>) => void) => unknown
}

/**
 * The Redis service over a client. Waiters share one subscriber connection, duplicated from the client
 * on first need and closed with the scope; the client itself is left open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  client: Client,
  options: { readonly eviction?: Eviction | undefined } = {}
): Effect.Effect<Redis.Service, never, Scope.Scope> => service(client as IORedis | Cluster, options)

const service = (
  client: IORedis | Cluster,
  options: { readonly eviction?: Eviction | undefined }
): Effect.Effect<Redis.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const faults = yield* IoRedisFaults.track(client)
    const sharded = IoRedisSubscriber.isCluster(client) && (yield* detectSharded(client))
    const subscriber = yield* IoRedisSubscriber.make(client, {
      close,
      onError: (error) => logConnectionError(runtime, error)
    }, { sharded })
    const timer = yield* Timer.make
    const cluster = IoRedisSubscriber.isCluster(client)
    const onRestart = cluster ? undefined : yield* IoRedisRestart.track(client as IORedis)
    const bounds = { ...faults, timer }
    const run = makeRun({
      evalsha: (sha, numberOfKeys, keysAndArgs) => client.evalsha(sha, numberOfKeys, ...keysAndArgs),
      eval: (lua, numberOfKeys, keysAndArgs) => client.eval(lua, numberOfKeys, ...keysAndArgs),
      source: "Redis",
      ...faults
    }, timer)
    return Redis.Redis.of({
      backend: "ioredis",
      subscriber,
      sharded,
      cluster: IoRedisSubscriber.isCluster(client),
      timer,
      waitForReplicas: (key, replicas, timeoutMs) => waitForReplicas(client, key, replicas, timeoutMs),
      onRestart,
      slotOf: cluster ? slotOf : undefined,
      run: EvictionCheck.guard({
        mode: options.eviction ?? "warn",
        read: () => readEviction(client),
        request: (operation, start, deadline) => request(bounds, operation, start, deadline)
      }, run)
    })
  })

const where = ({ options }: IORedis): string =>
  options.path ? options.path : `${options.host ?? "localhost"}:${options.port ?? 6379}`

/**
 * `CONFIG GET maxmemory*` on the server, or on each master of a cluster (once the cluster is ready, so
 * its masters are known). A Redis error reply (unknown command, NOPERM) is a refusal.
 */
const readEviction = async (client: IORedis | Cluster): Promise<EvictionCheck.Reading> => {
  try {
    let nodes: ReadonlyArray<IORedis> = [client as IORedis]
    if (IoRedisSubscriber.isCluster(client)) {
      if (client.status !== "ready") await client.call("PING")
      nodes = client.nodes("master")
    }
    const settings = await Promise.all(
      nodes.map(async (node) => EvictionCheck.parse(where(node), await node.call("CONFIG", "GET", "maxmemory*")))
    )
    return settings.every((setting) => setting !== undefined)
      ? { _tag: "Settings", settings }
      : { _tag: "Refused", detail: "CONFIG GET gave no maxmemory-policy" }
  } catch (error) {
    if (error instanceof Error && error.name === "ReplyError") return { _tag: "Refused", detail: error.message }
    throw error
  }
}

/**
 * Whether a cluster's servers have `SPUBLISH`, asked once when the layer is built; a cluster that does
 * not answer within {@link DETECT_LIMIT} gets classic pub/sub (correct everywhere, only chattier).
 */
const detectSharded = (client: Cluster) =>
  IoRedisSubscriber.supportsSharded(client).pipe(
    Effect.timeoutTo({ duration: DETECT_LIMIT, onSuccess: (sharded) => sharded, onTimeout: () => false })
  )

const DETECT_LIMIT = "5 seconds"

/**
 * `WAIT` where the scripts for `key` go: on a `Redis`, its one connection; on a `Cluster`, a pipeline
 * led by a command on `key`, so it goes to the connection to the master of `key`'s slot.
 */
const waitForReplicas = (client: IORedis | Cluster, key: string, replicas: number, timeoutMs: number) =>
  Effect.tryPromise({
    try: async () => {
      if (!(client instanceof Cluster)) return client.call("WAIT", replicas, timeoutMs)
      const replies = await client.pipeline().exists(key).call("WAIT", replicas, timeoutMs).exec()
      const [error, acknowledged] = replies?.[1] ?? [new Error("no reply to WAIT"), null]
      if (error !== null) throw error
      return acknowledged
    },
    catch: (error) => new RedisError({ operation: "wait", detail: describe(error) })
  }).pipe(
    Effect.flatMap((reply) =>
      typeof reply === "number"
        ? Effect.succeed(reply)
        : Effect.fail(new RedisError({ operation: "wait", detail: `expected an integer reply, got ${typeof reply}` }))
    )
  )

const logConnectionError = (runtime: Runtime.Runtime<never>, error: unknown) =>
  Runtime.runFork(runtime)(
    Effect.logDebug("ioredis connection error").pipe(Effect.annotateLogs("error", describe(error)))
  )

/**
 * Over a client you created (a `Redis` or a `Cluster`, of ioredis 5 or 6); it is never closed.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  client: Client,
  options: { readonly eviction?: Eviction | undefined } = {}
): Layer.Layer<Redis.Redis> => Layer.scoped(Redis.Redis, make(client, options))

/**
 * Creates an ioredis client and owns it: it is quit when the layer is released. Connection errors are
 * logged (without credentials) at debug level; operations report them as `RedisError`. A `url` that is
 * not `redis://…` or `rediss://…` is `InvalidOptions` (ioredis would take it for a socket path).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Redis.Redis, InvalidOptions> =>
  Layer.scoped(
    Redis.Redis,
    Effect.gen(function*() {
      const url = options.url === undefined
        ? undefined
        : yield* Connection.url("url", options.url, ["redis:", "rediss:"])
      const runtime = yield* Effect.runtime<never>()
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const clientOptions: RedisOptions = {
            ...options.client,
            ...(options.password === undefined ? {} : { password: Redacted.value(options.password) })
          }
          const created = url === undefined ? new IORedis(clientOptions) : new IORedis(url, clientOptions)
          created.on("error", (error: unknown) => logConnectionError(runtime, error))
          return created
        }),
        close
      )
      return yield* make(client, options)
    })
  )

/**
 * What {@link layerConfig} reads from `Config`: the connection, plus the two client options most often set
 * per deployment.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  /** `redis://…` or `rediss://…` (TLS); kept `Redacted`. */
  readonly url?: Redacted.Redacted | string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** The database index (ioredis `db`), when the URL does not name one. */
  readonly db?: number | undefined
  /** Connect over TLS with Node's defaults (ioredis `tls: {}`); a `rediss://` URL does so already. */
  readonly tls?: boolean | undefined
}

/**
 * Reads the options from `Config`; by default the URL from `REDIS_URL` (as a redacted value). Give it
 * your own `Config` values to read the password, the database index or TLS as well. `options.eviction`:
 * see {@link Eviction}.
 *
 * @example
 * import { Config } from "effect"
 * import * as IoRedis from "effect-lock/Redis/IoRedis"
 *
 * const fromEnv = IoRedis.layerConfig()
 * const custom = IoRedis.layerConfig({
 *   url: Config.redacted("CACHE_URL"),
 *   db: Config.integer("CACHE_DB").pipe(Config.withDefault(0)),
 *   tls: Config.boolean("CACHE_TLS").pipe(Config.withDefault(false))
 * })
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = { url: Config.redacted("REDIS_URL") },
  options: { readonly eviction?: Eviction | undefined } = {}
): Layer.Layer<Redis.Redis, ConfigError.ConfigError | InvalidOptions> =>
  Layer.unwrapEffect(
    Effect.map(Config.unwrap(config), ({ db, tls, ...connection }) =>
      layer({
        ...connection,
        ...options,
        client: { ...(db === undefined ? {} : { db }), ...(tls === true ? { tls: {} } : {}) }
      }))
  )

/**
 * Options of {@link layerCluster}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions {
  /** Seed nodes, as `"host:port"` or `{ host, port }`; the client discovers the rest. */
  readonly nodes: ReadonlyArray<string | { readonly host: string; readonly port: number }>
  /** The password of every node; kept `Redacted`. */
  readonly password?: Redacted.Redacted | undefined
  /** Any other ioredis `Cluster` option (`scaleReads`, `slotsRefreshTimeout`, `redisOptions`, …). */
  readonly client?: IORedisClusterOptions | undefined
  /** What to do about masters that may evict keys; see {@link Eviction}. Default `"warn"`. */
  readonly eviction?: Eviction | undefined
}

const parseNode = (node: unknown): Effect.Effect<{ readonly host: string; readonly port: number }, InvalidOptions> => {
  const invalid = new InvalidOptions({
    option: "nodes",
    expected: "\"host:port\" or { host, port }",
    received: render(node)
  })
  if (typeof node === "object" && node !== null) {
    const { host, port } = node as { readonly host?: unknown; readonly port?: unknown }
    return typeof host === "string" && host !== "" && Number.isInteger(port) && (port as number) > 0 &&
        (port as number) < 65536
      ? Effect.succeed({ host, port: port as number })
      : Effect.fail(invalid)
  }
  if (typeof node !== "string") return Effect.fail(invalid)
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(node.trim())
  const port = match === null ? NaN : Number(match[2])
  return match !== null && port > 0 && port < 65536 ? Effect.succeed({ host: match[1]!, port }) : Effect.fail(invalid)
}

/**
 * Creates an ioredis `Cluster` client from seed nodes and owns it: it is quit when the layer is
 * released. Every key of one lock shares a hash tag (`{id}`), so each script runs on the one master
 * that owns the lock's slot; `MOVED`/`ASK` redirections are followed by the client.
 *
 * @example
 * import { Redacted } from "effect"
 * import * as IoRedis from "effect-lock/Redis/IoRedis"
 *
 * const RedisLive = IoRedis.layerCluster({
 *   nodes: ["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"],
 *   password: Redacted.make("s3cret")
 * })
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<Redis.Redis, InvalidOptions> =>
  Layer.scoped(
    Redis.Redis,
    Effect.gen(function*() {
      if (!Array.isArray(options.nodes) || options.nodes.length === 0) {
        return yield* new InvalidOptions({
          option: "nodes",
          expected: "at least one node",
          received: render(options.nodes)
        })
      }
      const nodes = yield* Effect.forEach(options.nodes, parseNode)
      const runtime = yield* Effect.runtime<never>()
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const redisOptions: RedisOptions = {
            ...options.client?.redisOptions,
            ...(options.password === undefined ? {} : { password: Redacted.value(options.password) })
          }
          const created = new Cluster(nodes.map((node) => ({ ...node })), { ...options.client, redisOptions })
          created.on("error", (error: unknown) => logConnectionError(runtime, error))
          return created
        }),
        close
      )
      return yield* make(client, options)
    })
  )

/**
 * Reads the cluster's seed nodes from `Config`: by default `REDIS_CLUSTER_NODES`, a comma-separated
 * list of `host:port`, and the password, if any, from `REDIS_CLUSTER_PASSWORD` (redacted).
 * `options.eviction`: see {@link Eviction}.
 *
 * @example
 * import * as IoRedis from "effect-lock/Redis/IoRedis"
 *
 * // REDIS_CLUSTER_NODES=10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
 * const RedisLive = IoRedis.layerClusterConfig()
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: Config.Config.Wrap<Pick<ClusterOptions, "nodes" | "password">> = {
    nodes: Config.array(Config.string(), "REDIS_CLUSTER_NODES"),
    password: Config.redacted("REDIS_CLUSTER_PASSWORD").pipe(Config.option, Config.map(Option.getOrUndefined))
  },
  options: { readonly eviction?: Eviction | undefined } = {}
): Layer.Layer<Redis.Redis, ConfigError.ConfigError | InvalidOptions> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), (read) => layerCluster({ ...read, ...options })))
