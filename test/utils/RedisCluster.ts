/**
 * A real Redis Cluster for tests: three masters and three replicas, each a `redis-server` process on a
 * free loopback port (its cluster bus on another free port), configuration files in a temporary
 * directory, joined with `redis-cli --cluster create … --cluster-replicas 1`. Ready once every node
 * says `cluster_state:ok` and knows all six nodes, and every master's replica is online; every process
 * is stopped (by its PID) and the directory removed when the scope closes.
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Context, Data, Duration, Effect, Layer, type Scope, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as IoRedisBackend from "../../src/Redis/IoRedis.js"
import { eventually } from "./live.js"
import { freePort, untilReady } from "./RedisServer.js"

export class RedisClusterError extends Data.TaggedError("RedisClusterError")<{ readonly message: string }> {}

export interface Node {
  readonly host: string
  readonly port: number
  readonly pid: number
  /** Sends `signal` to the process (SIGKILL for a crash). */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

export interface Cluster {
  /** Every node, masters and replicas alike, in start order. */
  readonly nodes: ReadonlyArray<Node>
  /** `host:port` of every node, as `REDIS_CLUSTER_NODES` lists them. */
  readonly addresses: ReadonlyArray<string>
  /** The Redis version of the nodes (e.g. "7.0.15"). */
  readonly version: string
}

export class RedisCluster extends Context.Tag("test/RedisCluster")<RedisCluster, Cluster>() {}

const missing = (what: string) =>
  `${what} was not found on PATH: install Redis (apt-get install redis-server redis-tools) to run the cluster tests`

/** Starts one cluster-enabled node and waits until it accepts connections. */
const startNode = (
  dir: string
): Effect.Effect<Node, RedisClusterError, Scope.Scope | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const bus = yield* freePort
    const command = Command.make(
      "redis-server",
      "--port",
      String(port),
      "--cluster-port",
      String(bus),
      "--bind",
      "127.0.0.1",
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      path.join(dir, `nodes-${port}.conf`),
      "--cluster-node-timeout",
      "1000",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no"
    )
    const process = yield* Command.start(command).pipe(
      Effect.mapError(() => new RedisClusterError({ message: missing("redis-server") }))
    )
    yield* untilReady(process, (message) => new RedisClusterError({ message }))
    return {
      host: "127.0.0.1",
      port,
      pid: process.pid,
      kill: (signal = "SIGTERM") => Effect.ignore(process.kill(signal))
    }
  })

/** Runs a command to completion; its output, or a failure with it. */
const run = (command: Command.Command) =>
  Effect.scoped(Effect.gen(function*() {
    const process = yield* Command.start(command)
    const [stdout, stderr, code] = yield* Effect.all([
      Stream.mkString(Stream.decodeText(process.stdout)),
      Stream.mkString(Stream.decodeText(process.stderr)),
      process.exitCode
    ], { concurrency: 3 })
    return { stdout, stderr, code }
  }))

const info = (node: Node, section: "cluster info" | "cluster nodes" | "info server" | "info replication") =>
  Effect.acquireUseRelease(
    Effect.sync(() => new IORedis(node.port, node.host, { lazyConnect: true, maxRetriesPerRequest: 0 })),
    (client) => Effect.tryPromise(() => client.call(...(section.split(" ") as [string, string])) as Promise<string>),
    (client) => Effect.sync(() => client.disconnect())
  )

/** Whether `node` says the cluster is ok and knows all `nodes` (false while it does not answer). */
const healthy = (node: Node, nodes: ReadonlyArray<Node>) =>
  Effect.all([info(node, "cluster info"), info(node, "cluster nodes")]).pipe(
    Effect.map(([clusterInfo, clusterNodes]) =>
      clusterInfo.includes("cluster_state:ok") &&
      clusterNodes.trim().split("\n").filter((line) => !line.includes("fail")).length === nodes.length
    ),
    Effect.orElseSucceed(() => false)
  )

/** Polls until every node says the cluster is ok and knows all nodes. */
export const waitHealthy = (nodes: ReadonlyArray<Node>, within: Duration.DurationInput = "30 seconds") =>
  eventually(Effect.forEach(nodes, (node) => healthy(node, nodes)), (oks) => oks.every(Boolean), within).pipe(
    Effect.mapError(() =>
      new RedisClusterError({ message: `the cluster was not ok within ${Duration.format(within)}` })
    )
  )

/** Starts the six nodes, creates the cluster and waits until it is ok. */
export const start: Effect.Effect<Cluster, unknown, Scope.Scope | CommandExecutor.CommandExecutor> = Effect.gen(
  function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-lock-cluster-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const nodes = yield* Effect.forEach(
      Array.from({ length: 6 }),
      () => startNode(dir).pipe(Effect.retry({ times: 3 })),
      {
        concurrency: 6
      }
    )
    const addresses = nodes.map((node) => `${node.host}:${node.port}`)
    const created = yield* run(
      Command.make("redis-cli", "--cluster", "create", ...addresses, "--cluster-replicas", "1", "--cluster-yes")
    ).pipe(Effect.mapError(() => new RedisClusterError({ message: missing("redis-cli") })))
    if (created.code !== 0 || !created.stdout.includes("All 16384 slots covered")) {
      return yield* new RedisClusterError({
        message: `redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`
      })
    }
    yield* waitHealthy(nodes)
    // and every replica has finished its first sync (so WAIT and failover see a live replica)
    const synced = (node: Node) =>
      info(node, "info replication").pipe(
        Effect.map((replication) => !replication.includes("role:master") || /slave0:.*state=online/.test(replication)),
        Effect.orElseSucceed(() => false)
      )
    yield* eventually(Effect.forEach(nodes, synced), (oks) => oks.every(Boolean), "30 seconds").pipe(
      Effect.mapError(() => new RedisClusterError({ message: "replicas did not sync" }))
    )
    const server = yield* info(nodes[0]!, "info server").pipe(Effect.orElseSucceed(() => ""))
    const version = /redis_version:([\d.]+)/.exec(server)?.[1] ?? "unknown"
    return { nodes, addresses, version }
  }
)

/** One cluster for a test file. */
export const layer: Layer.Layer<RedisCluster, unknown> = Layer.scoped(RedisCluster, start).pipe(
  Layer.provide(NodeContext.layer)
)

/** The IoRedis Cluster backend on the file's cluster (one client per use). */
export const ioredis = Layer.unwrapEffect(
  Effect.map(RedisCluster, (cluster) => IoRedisBackend.layerCluster({ nodes: cluster.addresses }).pipe(Layer.orDie))
)
