/**
 * The `effect-lock` command line as real OS processes, for the Cli*.test.ts files. The bin is bundled
 * from src by esbuild once per file (packages stay external, resolved from node_modules): a process then
 * starts as fast as from dist, where tsx's loader would add a second to each. Children are small node
 * scripts (test/fixtures/cli-child.mjs) that leave files behind; the tests wait for those files (or for
 * Redis), never for time to pass.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { afterAll, beforeAll, it } from "@effect/vitest"
import { Duration, Effect, Fiber, ManagedRuntime, Schedule, type Scope, Stream } from "effect"
import { build } from "esbuild"
import { Redis as IORedis } from "ioredis"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as RedisServer from "./RedisServer.js"

export interface Finished {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface Started {
  readonly pid: number
  readonly id: string
  readonly fence: number
  readonly at: number
  /** The credentials the child saw in its environment (null: none). */
  readonly env: Record<string, string | null>
}

export interface Term {
  readonly signal: string
  readonly at: number
}

/** What a test file gets: the server, the directory children write to, and the bin. */
export interface Harness {
  readonly server: () => RedisServer.Server
  readonly dir: () => string
  readonly bundle: () => string
}

/** Builds the bin and starts a redis-server before the file's tests; removes both after them. */
export const harness = (): Harness => {
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
        entryPoints: ["cli/src/bin/effect-lock.ts"],
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
  return { server: () => server, dir: () => dir, bundle: () => bundle }
}

/** The helpers of one file's tests, over its harness. */
export const tools = (h: Harness) => {
  /**
   * Starts `effect-lock <args>`. `output()` is what it has printed so far; `finished` waits for it to
   * exit and gives its exit code and all its output.
   */
  const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    Effect.gen(function*() {
      const proc = yield* Command.make(process.execPath, h.bundle(), ...args).pipe(
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
  const child = (
    name: string,
    mode: "exit" | "wait" | "stubborn" | "ticking",
    code = 0,
    termCode = 0
  ) => [process.execPath, "test/fixtures/cli-child.mjs", h.dir(), name, mode, String(code), String(termCode)]

  /** `run --id <id> --redis <the server> <options> -- <argv>`. */
  const command = (id: string, options: ReadonlyArray<string>, argv: ReadonlyArray<string>) => [
    "run",
    "--id",
    id,
    "--redis",
    h.server().url,
    ...options,
    "--",
    ...argv
  ]

  /** Waits for `<name>.<suffix>` and reads it. */
  const awaitFile = <A>(name: string, suffix: string) =>
    eventually(() => readJson<A>(name, suffix), `${name}.${suffix}`)

  /** Reads `<name>.<suffix>` if it is there. */
  const readJson = <A>(name: string, suffix: string) => {
    const file = join(h.dir(), `${name}.${suffix}`)
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as A) : undefined
  }

  const go = (name: string) => Effect.sync(() => writeFileSync(join(h.dir(), `${name}.go`), ""))

  const redis = Effect.acquireRelease(
    Effect.sync(() => new IORedis(h.server().url)),
    (client) => Effect.promise(() => client.quit().catch(() => ""))
  )

  return { awaitFile, child, cli, command, go, readJson, redis, runCli }
}

/** Polls (every 10 ms, up to 20 s) until `check` gives a value. */
export const eventually = <A>(check: () => A | undefined, what: string) =>
  Effect.suspend(() => {
    const value = check()
    return value === undefined ? Effect.fail(new Error(`not yet: ${what}`)) : Effect.succeed(value)
  }).pipe(
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo(Duration.seconds(20)))),
    Effect.orDie
  )

export const lockKey = (id: string) => `effect-lock:lock:{${id}}`

/** Whether `pid` runs: a zombie (killed, not reaped: its parent is gone) does not. */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  if (process.platform !== "linux") return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2))
  } catch {
    return false
  }
}

/** Sends `signal` to `pid` (a process this test started), if it is still there. */
export const signal = (pid: number, signal: NodeJS.Signals) =>
  Effect.sync(() => {
    try {
      process.kill(pid, signal)
    } catch {
      // gone
    }
  })

/** Kills `pid` (a process this test started) when the test's scope closes, if it is still there. */
export const killOnExit = (pid: number) =>
  Effect.addFinalizer(() => Effect.zipRight(signal(pid, "SIGCONT"), signal(pid, "SIGKILL")))

export const live = (
  name: string,
  body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor.CommandExecutor>
) => it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), 60_000)
