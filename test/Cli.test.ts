/**
 * The `effect-lock` command line as real OS processes against a private redis-server. The bin is
 * bundled from src by esbuild once for the file (packages stay external, resolved from node_modules):
 * a process then starts as fast as from dist, where tsx's loader would add a second to each. The
 * packed install of the tsc build is checked in Cli.packed.test.ts. Children are small node scripts (test/fixtures/cli-child.mjs) that leave files behind;
 * the tests wait for those files (or for Redis), never for time to pass.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, ManagedRuntime, Schedule, type Scope, Stream } from "effect"
import { build } from "esbuild"
import { Redis as IORedis } from "ioredis"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { uniqueId } from "./utils/probe.js"
import * as Proxy from "./utils/Proxy.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

const servers = ManagedRuntime.make(RedisServer.layer)
let server: RedisServer.Server
let dir: string
let bundle: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "effect-lock-cli-"))
  // Inside node_modules so that the external packages resolve; the bin reads ../../package.json.
  const root = mkdtempSync(join("node_modules", ".cache-effect-lock-cli-"))
  writeFileSync(join(root, "package.json"), JSON.stringify({ version: "0.0.0-test" }))
  bundle = join(root, "dist", "bin", "effect-lock.mjs")
  const [started] = await Promise.all([
    servers.runPromise(RedisServer.RedisServer),
    build({
      entryPoints: ["src/bin/effect-lock.ts"],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      outfile: bundle,
      logLevel: "error"
    })
  ])
  server = started
}, 30_000)
afterAll(async () => {
  await servers.dispose()
  rmSync(dir, { recursive: true, force: true })
  rmSync(join(bundle, "..", "..", ".."), { recursive: true, force: true })
})

interface Finished {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Starts `effect-lock <args>`. `output()` is what it has printed so far; `finished` waits for it to exit
 * and gives its exit code and all its output.
 */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const proc = yield* Command.make(process.execPath, bundle, ...args).pipe(
      // Only what a test gives: a REDIS_URL of the developer's would otherwise take precedence.
      Command.env({ REDIS_URL: "", UPSTASH_REDIS_REST_URL: "", UPSTASH_REDIS_REST_TOKEN: "", ...env }),
      Command.start
    )
    const seen = { stdout: "", stderr: "" }
    const collect = (stream: Stream.Stream<Uint8Array, unknown>, into: "stdout" | "stderr") =>
      Effect.fork(Stream.runForEach(Stream.decodeText(stream), (chunk) =>
        Effect.sync(() => {
          seen[into] += chunk
        })))
    const fibers = [yield* collect(proc.stdout, "stdout"), yield* collect(proc.stderr, "stderr")]
    const finished: Effect.Effect<Finished, unknown> = Effect.gen(function*() {
      const code = yield* proc.exitCode
      yield* Fiber.joinAll(fibers)
      return { code, ...seen }
    })
    return { proc, finished, output: () => seen }
  })

const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.flatMap(cli(args, env), (started) => started.finished)

/** The command line of a child (see test/fixtures/cli-child.mjs). */
const child = (name: string, mode: "exit" | "wait" | "stubborn", code = 0, termCode = 0) => [
  process.execPath,
  "test/fixtures/cli-child.mjs",
  dir,
  name,
  mode,
  String(code),
  String(termCode)
]

/** Polls (every 10 ms, up to 20 s) until `check` gives a value. */
const eventually = <A>(check: () => A | undefined, what: string) =>
  Effect.suspend(() => {
    const value = check()
    return value === undefined ? Effect.fail(new Error(`not yet: ${what}`)) : Effect.succeed(value)
  }).pipe(
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo(Duration.seconds(20)))),
    Effect.orDie
  )

/** Waits for `<name>.<suffix>` and reads it. */
const awaitFile = <A>(name: string, suffix: string) =>
  eventually(() => {
    const file = join(dir, `${name}.${suffix}`)
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as A) : undefined
  }, `${name}.${suffix}`)

interface Started {
  readonly pid: number
  readonly id: string
  readonly fence: number
  readonly at: number
}
interface Term {
  readonly signal: string
  readonly at: number
}

const go = (name: string) => Effect.sync(() => writeFileSync(join(dir, `${name}.go`), ""))

const redis = Effect.acquireRelease(
  Effect.sync(() => new IORedis(server.url)),
  (client) => Effect.promise(() => client.quit().catch(() => ""))
)
const lockKey = (id: string) => `effect-lock:lock:{${id}}`

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const live = (
  name: string,
  body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor.CommandExecutor>
) => it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), 30_000)

describe.concurrent("effect-lock on the command line", () => {
  live(
    "with --no-wait one run runs its child and the other exits 75; status --json tells the truth; the child's code comes through",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-nowait")
      const base = ["--id", id, "--redis", server.url]
      const first = yield* cli(["run", ...base, "--no-wait", "--", ...child(`${id}-a`, "wait", 7)])
      const started = yield* awaitFile<Started>(`${id}-a`, "started")
      expect(started.id).toBe(id)
      expect(started.fence).toBeGreaterThan(0)

      const [second, custom, held] = yield* Effect.all([
        runCli(["run", ...base, "--no-wait", "--", ...child(`${id}-b`, "exit")]),
        runCli(["run", ...base, "--no-wait", "--conflict-exit-code", "3", "--", ...child(`${id}-c`, "exit")]),
        runCli(["status", ...base, "--json"])
      ], { concurrency: "unbounded" })
      expect(second.code).toBe(75)
      expect(second.stderr).toContain("held by another owner")
      expect(custom.code).toBe(3)
      expect(existsSync(join(dir, `${id}-b.started`))).toBe(false)
      expect(existsSync(join(dir, `${id}-c.started`))).toBe(false)
      const status = JSON.parse(held.stdout)
      expect(status).toMatchObject({ id, state: "held", fence: started.fence })
      expect(status.remainingMs).toBeGreaterThan(0)
      expect(status.remainingMs).toBeLessThanOrEqual(30_000)

      yield* go(`${id}-a`)
      const done = yield* first.finished
      expect(done.code).toBe(7)
      expect(done.stdout).toBe("") // progress goes to stderr only
      expect(done.stderr).toContain(`acquired lock "${id}" with fence ${started.fence}`)
      const free = yield* runCli(["status", ...base, "--json"])
      expect(JSON.parse(free.stdout)).toEqual({ id, state: "free", remainingMs: 0, fence: started.fence })
    })
  )

  live(
    "with --wait the second run waits, then runs its child after the first, with a higher fence",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-wait")
      const base = ["--id", id, "--redis", server.url]
      const first = yield* cli(["run", ...base, "--", ...child(`${id}-a`, "wait")])
      const a = yield* awaitFile<Started>(`${id}-a`, "started")
      const second = yield* cli(["run", ...base, "--wait", "20s", "--", ...child(`${id}-b`, "exit", 4)])
      // The second is in line (it says so on stderr) while the first still runs.
      yield* eventually(() => second.output().stderr.includes(`waiting for lock "${id}"`) || undefined, "waiting")
      expect(existsSync(join(dir, `${id}-b.started`))).toBe(false)
      yield* go(`${id}-a`)
      expect((yield* first.finished).code).toBe(0)
      const b = yield* awaitFile<Started>(`${id}-b`, "started")
      expect(b.fence).toBeGreaterThan(a.fence)
      const done = yield* second.finished
      expect(done.code).toBe(4)
    })
  )

  live(
    "a lost lease (the key deleted) stops the child: SIGTERM, then SIGKILL after --kill-after; the run exits 70",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-lost")
      const client = yield* redis
      const run = yield* cli([
        "run",
        "--id",
        id,
        "--redis",
        server.url,
        "--lease",
        "3s",
        "--kill-after",
        "300ms",
        "--",
        ...child(`${id}-a`, "stubborn")
      ])
      const started = yield* awaitFile<Started>(`${id}-a`, "started")
      const deletedAt = Date.now()
      expect(yield* Effect.promise(() => client.del(lockKey(id)))).toBe(1)
      const term = yield* awaitFile<Term>(`${id}-a`, "term")
      expect(term.signal).toBe("SIGTERM")
      // Found at the first extension (every third of the lease), well before the lease would have run out.
      expect(term.at - deletedAt).toBeLessThan(3000)
      const done = yield* run.finished
      expect(done.code).toBe(70)
      expect(done.stderr).toContain("SIGKILL")
      expect(isAlive(started.pid)).toBe(false)
    })
  )

  live(
    "with Redis frozen, the child is stopped when its lease runs out, before the next owner's child starts; the run exits 70",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-frozen")
      const proxy = yield* Proxy.start(server)
      yield* Effect.addFinalizer(() => proxy.thaw)
      const first = yield* cli([
        "run",
        "--id",
        id,
        "--redis",
        proxy.url,
        "--lease",
        "2s",
        "--",
        ...child(`${id}-a`, "wait", 0, 9)
      ])
      const a = yield* awaitFile<Started>(`${id}-a`, "started")
      yield* proxy.freeze
      const frozenAt = Date.now()
      // The next owner talks to Redis directly, and waits in line for the frozen holder's lease to end.
      const second = yield* cli([
        "run",
        "--id",
        id,
        "--redis",
        server.url,
        "--wait",
        "20s",
        "--",
        ...child(`${id}-b`, "exit")
      ])
      const term = yield* awaitFile<Term>(`${id}-a`, "term")
      expect(term.signal).toBe("SIGTERM")
      // Nothing was confirmed after the freeze, so the lease ended within 2 s of it (wide margin here;
      // the ordering below is the exact check).
      expect(term.at - frozenAt).toBeLessThan(3000)
      const b = yield* awaitFile<Started>(`${id}-b`, "started")
      expect(term.at).toBeLessThan(b.at)
      expect(b.fence).toBeGreaterThan(a.fence)
      const done = yield* first.finished
      expect(done.code).toBe(70)
      expect(done.stderr).toContain("lost")
      expect((yield* second.finished).code).toBe(0)
    })
  )

  live(
    "SIGTERM and SIGINT to the command reach the child as sent; the lock is free as soon as the command has exited",
    Effect.gen(function*() {
      const client = yield* redis
      yield* Effect.forEach(["SIGTERM", "SIGINT"] as const, (signal) =>
        Effect.gen(function*() {
          const id = yield* uniqueId(`cli-${signal}`)
          const run = yield* cli(["run", "--id", id, "--redis", server.url, "--", ...child(`${id}-a`, "wait", 0, 42)])
          yield* awaitFile<Started>(`${id}-a`, "started")
          expect(yield* Effect.promise(() => client.exists(lockKey(id)))).toBe(1)
          yield* Effect.sync(() => process.kill(run.proc.pid, signal))
          const done = yield* run.finished
          // The child's own exit code, after it handled the very signal sent (stopping a scope would
          // only ever send SIGTERM).
          expect((yield* awaitFile<Term>(`${id}-a`, "term")).signal).toBe(signal)
          expect(done.code).toBe(42)
          expect(done.stderr).toContain(`received ${signal}`)
          expect(yield* Effect.promise(() => client.exists(lockKey(id)))).toBe(0)
        }), { concurrency: "unbounded" })
    })
  )

  live(
    "bad options exit 64 before anything is sent; an unreachable Redis exits 69 without printing its URL",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-bad")
      const port = yield* RedisServer.freePort
      const unreachable = `redis://:s3cret-password@127.0.0.1:${port}`
      const [badLease, both, missing, down] = yield* Effect.all([
        runCli(["run", "--id", "x", "--redis", unreachable, "--lease", "5 parsecs", "--", "true"]),
        runCli(["run", "--id", "x", "--redis", unreachable, "--wait", "1s", "--no-wait", "--", "true"]),
        runCli(["run", "--id", id, "--redis", server.url, "--no-wait", "--", "./no-such-command-here"]),
        runCli(["status", "--id", "x", "--redis", unreachable])
      ], { concurrency: "unbounded" })
      expect(badLease.code).toBe(64)
      expect(badLease.stderr).toContain("--lease")
      expect(both.code).toBe(64)
      expect(missing.code).toBe(127)
      expect(down.code).toBe(69)
      expect(down.stderr).toContain("Redis")
      for (const r of [badLease, both, down]) expect(r.stdout + r.stderr).not.toContain("s3cret")
    })
  )

  live(
    "on Upstash (UPSTASH_REDIS_REST_URL and _TOKEN) a run gets a fence and status sees it, without printing the token",
    Effect.gen(function*() {
      const upstash = yield* UpstashServer.start({ redisUrl: server.url, token: UpstashServer.TEST_TOKEN })
      const env = { UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: upstash.token }
      const id = yield* uniqueId("cli-upstash")
      const done = yield* runCli(["run", "--id", id, "--no-wait", "--", ...child(`${id}-a`, "exit", 5)], env)
      expect(done.code).toBe(5)
      const started = yield* awaitFile<Started>(`${id}-a`, "started")
      const status = yield* runCli(["status", "--id", id, "--json"], env)
      expect(JSON.parse(status.stdout)).toEqual({ id, state: "free", remainingMs: 0, fence: started.fence })
      for (const r of [done, status]) expect(r.stdout + r.stderr).not.toContain(upstash.token)
    })
  )
})
