/**
 * `npm run bench` (after `npm run build` and bench/build.ts): effect-lock against the raw floor and its
 * peers, from the library's build under plain `node`.
 *
 * This process is the server side: it starts a redis-server and the Upstash REST fixture (in this
 * process) on free loopback ports and, where `taskset` exists, pins itself and redis-server to CPU 0 and
 * every measuring process (bench/measure.ts) to CPU 1. Rounds are interleaved: each round measures every
 * library once per scenario; ratios to the floor (and to @upstash/lock on REST) are taken within a round and
 * the headline is the median of those per-round ratios.
 *
 *   npm run bench               full run (≈ 5 minutes): bench/results.md, bench/results.json, the README table
 *   npm run bench -- --quick    smoke run (one round, every scenario tiny): results.md/json only, marked as such
 *
 * The cluster rows (backend `cluster`) run on a local 3-master, 3-replica Redis Cluster, started only when
 * one of them is selected; their commands are counted on every node of it.
 *
 * Environment: BENCH_ONLY=id,id (contender ids, see contenders.ts; the floor and @upstash/lock always run),
 * BENCH_ROUNDS=n.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { build } from "esbuild"
import { Redis as IORedis } from "ioredis"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as zlib from "node:zlib"
import * as RedisCluster from "../test/utils/RedisCluster.js"
import * as RedisServer from "../test/utils/RedisServer.js"
import * as UpstashServer from "../test/utils/UpstashServer.js"
import { type Contender, contenders, SEMAPHORE_PERMITS, semaphoreContenders, type Servers } from "./contenders.js"
import type { AllocJob, AllocResult, Job, LongRunResult, LoopJob, LoopResult, Section } from "./measure.js"
import { type Bundle, render, type Results, updateReadme } from "./report.js"
import * as Stats from "./stats.js"

const quick = process.argv.includes("--quick") || process.env.BENCH_QUICK === "1"
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const measureJs = fileURLToPath(new URL("./measure.js", import.meta.url))

const config = quick
  ? {
    rounds: 1,
    cycles: 100,
    warmup: 20,
    contendedWarmup: 1,
    workers: 8,
    sections: 4,
    deadlineMs: 3_000,
    allocCycles: 100,
    longCalls: 3_000,
    longWindow: 300,
    longDeadlineMs: 3_000
  }
  : {
    rounds: 3,
    cycles: 500,
    warmup: 100,
    contendedWarmup: 3,
    workers: 8,
    sections: 50,
    deadlineMs: 20_000,
    allocCycles: 500,
    longCalls: 50_000,
    longWindow: 5_000,
    longDeadlineMs: 60_000
  }
const rounds = Number(process.env.BENCH_ROUNDS ?? config.rounds)

// ---------------------------------------------------------------------------------------------- pinning

const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()
const cpus = os.cpus().length
let pinned = hasTaskset && cpus >= 2
const SERVER_CPU = 0
const CLIENT_CPU = 1
const pin = (pid: number, cpu: number) =>
  execFileSync("taskset", ["-a", "-pc", String(cpu), String(pid)], { stdio: "ignore" })

// ------------------------------------------------------------------------------------ measuring children

interface Child {
  readonly alive: () => boolean
  readonly send: (line: string) => void
  /** The payload of the next `@@bench <tag>` line; fails if another tag comes or the process exits. */
  readonly next: (tag: string) => Promise<string>
  readonly exited: Promise<void>
}

/** A measuring process on the client CPU: one job given as argument, or (none) serving `JOB` lines. */
const startChild = (job?: Job): Child => {
  const args = ["--expose-gc", measureJs, ...(job === undefined ? [] : [JSON.stringify(job)])]
  const child = pinned
    ? spawn("taskset", ["-c", String(CLIENT_CPU), process.execPath, ...args], { stdio: ["pipe", "pipe", "inherit"] })
    : spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] })
  const messages: Array<readonly [string, string]> = []
  const waiting: Array<(message: readonly [string, string] | undefined) => void> = []
  let gone = false
  const deliver = (message: readonly [string, string] | undefined) => {
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter(message)
    else if (message !== undefined) messages.push(message)
  }
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    if (!line.startsWith("@@bench ")) return
    const [tag = "", ...rest] = line.slice("@@bench ".length).split(" ")
    deliver([tag, rest.join(" ")])
  })
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      gone = true
      while (waiting.length > 0) deliver(undefined)
      resolve()
    })
  )
  const next = (tag: string) =>
    new Promise<string>((resolve, reject) => {
      const take = (message: readonly [string, string] | undefined) =>
        message === undefined
          ? reject(new Error(`a measuring process exited while the bench waited for ${tag}`))
          : message[0] === tag
          ? resolve(message[1])
          : reject(new Error(`a measuring process said ${message[0]} where the bench waited for ${tag}`))
      const queued = messages.shift()
      if (queued !== undefined) take(queued)
      else if (gone) take(undefined)
      else waiting.push(take)
    })
  return { alive: () => !gone, send: (line) => child.stdin!.write(`${line}\n`), next, exited }
}

/** Commands Redis has run (INFO commandstats, which counts commands inside scripts too), INFO excluded. */
const commandCount = async (admin: IORedis) =>
  (await admin.info("commandstats"))
    .split("\n")
    .filter((line) => line.startsWith("cmdstat_") && !line.startsWith("cmdstat_info"))
    .reduce((sum, line) => sum + Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), 0)

/** Connections Redis has accepted since it started. */
const connectionCount = async (admin: IORedis) =>
  Number(/total_connections_received:(\d+)/.exec(await admin.info("stats"))?.[1] ?? NaN)

/** Where a row's commands and connections are counted: the single node, or every node of the cluster. */
interface Counted {
  readonly admins: ReadonlyArray<IORedis>
  /** Each admin's node role (the cluster's; the single node is a master). */
  readonly roles: ReadonlyArray<"master" | "replica">
}

const commandCounts = (counted: Counted) => Promise.all(counted.admins.map(commandCount))
const connectionCounts = async (counted: Counted) =>
  (await Promise.all(counted.admins.map(connectionCount))).reduce((a, b) => a + b, 0)

interface LoopOutcome {
  /** Connections opened to Redis while the workers ran (after their set-up and warm-up). */
  readonly connections: number
  readonly errors: ReadonlyArray<string>
  readonly sections: ReadonlyArray<Section>
  readonly gaveUp: number
  readonly commands: number
  /** Commands on each counted node (in `Counted` order), the section's excluded where they were counted. */
  readonly commandsByNode: ReadonlyArray<number>
  readonly counter: number
}

let runSeq = 0

/**
 * `workers` workers of one contender, spread over `processes` of the pool's processes (each serves one job at
 * a time, and all of them outlive a job: starting node and loading every library takes longer than most runs).
 */
const runLoop = async (
  pool: Array<Child>,
  admin: IORedis,
  counted: Counted,
  servers: Servers,
  contender: Contender,
  options: { readonly workers: number; readonly processes: number; readonly count: number; readonly section: boolean }
): Promise<LoopOutcome> => {
  const lockId = `bench:${contender.id}:${process.pid}:${runSeq++}`
  const counter = options.section ? `${lockId}:counter` : null
  const perProcess = options.workers / options.processes
  await refill(pool)
  const children = pool.slice(0, options.processes)
  children.forEach((child, p) =>
    child.send(`JOB ${
      JSON.stringify(
        {
          kind: "loop",
          contender: contender.id,
          servers,
          lockId,
          counter,
          workers: perProcess,
          firstWorker: p * perProcess,
          count: options.count,
          warmup: options.section ? config.contendedWarmup : config.warmup,
          deadlineMs: config.deadlineMs
        } satisfies LoopJob
      )
    }`)
  )
  await Promise.all(children.map((c) => c.next("READY")))
  const connectionsBefore = await connectionCounts(counted)
  const before = await commandCounts(counted)
  for (const c of children) c.send("GO")
  const results = (await Promise.all(children.map((c) => c.next("DONE")))).map((r) => JSON.parse(r) as LoopResult)
  const after = await commandCounts(counted)
  const connections = (await connectionCounts(counted)) - connectionsBefore
  for (const c of children) c.send("CLOSE")
  await Promise.all(children.map((c) => c.next("CLOSED")))
  const sections = results.flatMap((r) => r.sections)
  const counterValue = counter === null ? 0 : Number(await admin.get(counter))
  // the critical section's own GET and SET are not the lock's (they go to the single node)
  const sectionCommands = options.section && counted.admins[0] === admin ? 2 * sections.length : 0
  const commandsByNode = after.map((n, i) => n - before[i]! - (i === 0 ? sectionCommands : 0))
  return {
    connections,
    errors: results.flatMap((r) => r.errors),
    sections,
    gaveUp: results.reduce((sum, r) => sum + r.gaveUp, 0),
    commands: commandsByNode.reduce((a, b) => a + b, 0),
    commandsByNode,
    counter: counterValue
  }
}

/** Starts a fresh process in place of any that has exited (one whose run hung leaves). */
const refill = async (pool: Array<Child>) => {
  for (let i = 0; i < pool.length; i++) {
    if (!pool[i]!.alive()) pool[i] = await startIdle()
  }
}

/** A serving process, once it has loaded every library (so it costs the measured ones no CPU). */
const startIdle = async () => {
  const child = startChild()
  await child.next("IDLE")
  return child
}

/** A job in a process of its own (the long run, whose heap is part of the result). */
const runAlone = async <A>(job: Job): Promise<A> => {
  const child = startChild(job)
  const result = JSON.parse(await child.next("RESULT")) as A
  await child.exited
  return result
}

// --------------------------------------------------------------------------------------- bundle size

const bundleSize = async (
  label: string,
  entry: { readonly file: string } | { readonly contents: string }
): Promise<Bundle> => {
  const result = await build({
    ...("file" in entry
      ? { entryPoints: [path.join(root, entry.file)] }
      : { stdin: { contents: entry.contents, resolveDir: root, loader: "ts" as const } }),
    bundle: true,
    minify: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent"
  })
  const code = result.outputFiles[0]!.contents
  return { label, minified: code.byteLength, gzip: zlib.gzipSync(code, { level: 9 }).byteLength }
}

// ----------------------------------------------------------------------------------------------- main

const began = Date.now()
const progress = (text: string) => {
  const line = text === "" ? "" : `[${Math.round((Date.now() - began) / 1000)} s] ${text}`
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`.padEnd(110).slice(0, 110))
  else if (line !== "") console.log(line)
}

const main = Effect.gen(function*() {
  const started = Date.now()
  const server = yield* RedisServer.startFresh()
  const rest = yield* UpstashServer.start({ redisUrl: server.url, token: "bench-token" })
  let servers: Servers = { redisUrl: server.url, upstashUrl: rest.url, upstashToken: rest.token }
  const admin = yield* Effect.acquireRelease(
    Effect.sync(() => new IORedis(server.url)),
    (c) => Effect.promise(() => c.quit().catch(() => "closed"))
  )
  const info = yield* Effect.promise(() => admin.info("server"))
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? "?"
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0)
  if (pinned) {
    try {
      pin(redisPid, SERVER_CPU)
      pin(process.pid, SERVER_CPU)
    } catch {
      pinned = false
    }
  }
  const machine = {
    cpu: os.cpus()[0]?.model ?? "?",
    cores: cpus,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    redis: redisVersion,
    pinning: pinned
      ? `redis-server and the REST fixture pinned to CPU ${SERVER_CPU}, every measuring node process to CPU ${CLIENT_CPU} (taskset)`
      : `not pinned (${
        hasTaskset ? (cpus < 2 ? "1 CPU" : "taskset refused") : "no taskset"
      }): the floor depends on whether node and redis-server share a CPU`
  }
  console.log(
    `effect-lock benchmark${
      quick ? " (--quick smoke run)" : ""
    }: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, Redis ${machine.redis}`
  )
  console.log(`${machine.pinning}`)

  const only = process.env.BENCH_ONLY?.split(",").filter((x) => x.length > 0)
  const libs = only === undefined
    ? contenders
    : contenders.filter((c) => c.id === "floor" || c.id === "upstash-lock" || only.includes(c.id))

  const single: Counted = { admins: [admin], roles: ["master"] }
  let onCluster: Counted = single
  if (libs.some((c) => c.backend === "cluster")) {
    progress("starting a local Redis Cluster (3 masters, 3 replicas)")
    const cluster = yield* RedisCluster.start
    servers = { ...servers, clusterNodes: cluster.addresses }
    const admins = yield* Effect.forEach(cluster.nodes, (node) =>
      Effect.acquireRelease(
        Effect.sync(() => new IORedis(node.port, node.host)),
        (c) => Effect.promise(() => c.quit().catch(() => "closed"))
      ))
    const roles = yield* Effect.forEach(admins, (c) =>
      Effect.promise(() => c.info("replication")).pipe(
        Effect.map((text) => (text.includes("role:master") ? "master" as const : "replica" as const))
      ))
    if (pinned) { for (const node of cluster.nodes) pin(node.pid, SERVER_CPU) }
    onCluster = { admins, roles }
  }
  const countedFor = (c: Contender) => (c.backend === "cluster" ? onCluster : single)
  const semLibs = only === undefined ? semaphoreContenders : semaphoreContenders.filter((c) => only.includes(c.id))
  /** The semaphore rows: W = 16 workers spread over the pool's processes. */
  const semaphoreRun = { workers: 16, processes: config.workers }

  const results: Results = {
    quick,
    date: new Date().toISOString().slice(0, 10),
    machine,
    config: { ...config, rounds },
    contenders: libs.map((c) => ({ id: c.id, name: c.name, backend: c.backend, settings: c.settings })),
    uncontended: [],
    contended: [],
    alloc: {},
    semaphore: {
      permits: SEMAPHORE_PERMITS,
      ...semaphoreRun,
      contenders: semLibs.map((c) => ({ id: c.id, name: c.name, settings: c.settings })),
      rounds: []
    },
    longRun: undefined,
    bundles: [],
    seconds: 0
  }

  const pool = yield* Effect.acquireRelease(
    Effect.promise(() => Promise.all(Array.from({ length: config.workers }, startIdle))),
    (children) =>
      Effect.promise(async () => {
        for (const c of children) c.send("QUIT")
        await Promise.all(children.map((c) => c.exited))
      })
  )

  yield* Effect.promise(async () => {
    for (let round = 1; round <= rounds; round++) {
      // A different starting library each round, so no library always runs first or last.
      const order = libs.map((_, i) => libs[(i + round - 1) % libs.length]!)
      const uncontended: Record<string, Stats.UncontendedRun> = {}
      for (const c of order) {
        progress(`round ${round}/${rounds} uncontended: ${c.name}`)
        const counted = countedFor(c)
        const run = await runLoop(pool, admin, counted, servers, c, {
          workers: 1,
          processes: 1,
          count: config.cycles,
          section: false
        })
        uncontended[c.id] = {
          ...Stats.uncontended(run.sections, run.commands, run.connections, run.errors),
          ...(c.backend === "cluster"
            ? { perNode: Stats.perNode(run.commandsByNode, counted.roles, run.sections.length) }
            : {})
        }
      }
      results.uncontended.push(uncontended)
      for (const mode of ["one process", "one process per worker"] as const) {
        const contended: Record<string, Stats.ContendedRun> = {}
        for (const c of order) {
          progress(`round ${round}/${rounds} contended (${mode}): ${c.name}`)
          const counted = countedFor(c)
          const run = await runLoop(pool, admin, counted, servers, c, {
            workers: config.workers,
            processes: mode === "one process" ? 1 : config.workers,
            count: config.sections,
            section: true
          })
          contended[c.id] = {
            ...Stats.contended(run.sections, {
              commands: run.commands,
              gaveUp: run.gaveUp,
              counter: run.counter,
              expected: config.workers * config.sections,
              errors: run.errors
            }),
            ...(c.backend === "cluster"
              ? { perNode: Stats.perNode(run.commandsByNode, counted.roles, run.sections.length) }
              : {})
          }
        }
        results.contended.push({ round, mode, runs: contended })
      }
      const semUncontended: Record<string, Stats.UncontendedRun> = {}
      const semContended: Record<string, Stats.SemaphoreRun> = {}
      for (const c of semLibs.map((_, i) => semLibs[(i + round - 1) % semLibs.length]!)) {
        progress(`round ${round}/${rounds} semaphore: ${c.name}`)
        const one = await runLoop(pool, admin, single, servers, c, {
          workers: 1,
          processes: 1,
          count: config.cycles,
          section: false
        })
        semUncontended[c.id] = Stats.uncontended(one.sections, one.commands, one.connections, one.errors)
        const run = await runLoop(pool, admin, single, servers, c, {
          ...semaphoreRun,
          count: config.sections,
          section: true
        })
        semContended[c.id] = Stats.semaphore(run.sections, {
          commands: run.commands,
          gaveUp: run.gaveUp,
          expected: semaphoreRun.workers * config.sections,
          errors: run.errors
        })
      }
      results.semaphore!.rounds.push({ round, uncontended: semUncontended, contended: semContended })
    }
    for (const c of libs) {
      progress(`allocation per cycle: ${c.name}`)
      const alloc: AllocJob = {
        kind: "alloc",
        contender: c.id,
        servers,
        lockId: `bench:alloc:${c.id}:${process.pid}`,
        count: config.allocCycles,
        warmup: config.warmup
      }
      await refill(pool)
      pool[0]!.send(`JOB ${JSON.stringify(alloc)}`)
      results.alloc[c.id] = JSON.parse(await pool[0]!.next("RESULT")) as AllocResult
    }
    progress(`long run: ${config.longCalls} withLock calls in one fiber (Memory store)`)
    results.longRun = await runAlone<LongRunResult>({
      kind: "longrun",
      calls: config.longCalls,
      window: config.longWindow,
      deadlineMs: config.longDeadlineMs
    })
    progress("bundle sizes")
    results.bundles = [
      await bundleSize("effect-lock core + Upstash (test/fixtures/edge-entry.ts)", {
        file: "test/fixtures/edge-entry.ts"
      }),
      await bundleSize("@upstash/lock + @upstash/redis (the same calls)", {
        contents: [
          `import { Lock } from "@upstash/lock"`,
          `import { Redis } from "@upstash/redis"`,
          `export const run = async (url: string, token: string) => {`,
          `  const lock = new Lock({ id: "edge-worker", redis: new Redis({ url, token }) as never })`,
          `  return [await lock.acquire(), await lock.getStatus(), await lock.release()]`,
          `}`
        ].join("\n")
      })
    ]
    progress("")
    if (process.stdout.isTTY) process.stdout.write("\r")
  })

  results.seconds = Math.round((Date.now() - started) / 1000)
  const markdown = render(results)
  console.log(`\n${markdown}`)
  fs.writeFileSync(path.join(root, "bench/results.md"), markdown)
  fs.writeFileSync(path.join(root, "bench/results.json"), JSON.stringify(results, null, 2) + "\n")
  if (!quick && only === undefined) {
    updateReadme(path.join(root, "README.md"), results)
    console.log("Wrote bench/results.md, bench/results.json and the README's benchmark table.")
  } else {
    console.log(
      "Wrote bench/results.md and bench/results.json (the README is updated by a full run of every library only)."
    )
  }
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
