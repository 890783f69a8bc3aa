/**
 * The command line's credentials and output (issue 23 §9, issue 21 §5), with real processes against a
 * private redis-server: where the URL may come from and where it must not go (the command's
 * environment, `/proc/<pid>/cmdline`), escaped output, no ANSI escapes off a terminal, `--help`,
 * durations, and the failures that must come before the lock is taken or at once.
 */
import * as Command from "@effect/platform/Command"
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import * as Cli from "./utils/cli.js"
import { killOnExit, live, lockKey } from "./utils/cli.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

const h = Cli.harness()
const { awaitFile, child, cli, command, go, redis, runCli } = Cli.tools(h)

const ESC = "\u001b"

/** A TCP server that accepts connections and never answers: Redis that cannot be reached in time. */
const silentServer = Effect.acquireRelease(
  Effect.async<{ readonly server: net.Server; readonly url: string }>((resume) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => void sockets.add(socket))
    server.on("close", () => sockets.forEach((socket) => socket.destroy()))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      resume(Effect.succeed({ server, url: `redis://127.0.0.1:${address.port}` }))
    })
  }),
  ({ server }) => Effect.sync(() => server.close())
)

/** `effect-lock <args>` on a pseudo-terminal (util-linux `script`), with `env` set. */
const onTerminal = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Command.make("script", "-qec", [process.execPath, h.bundle(), ...args].join(" "), "/dev/null").pipe(
    Command.env({ TERM: "xterm", NO_COLOR: "", ...env }),
    Command.string
  )

describe.concurrent("effect-lock: credentials and output", () => {
  live(
    "the command gets no Redis credentials (REDIS_URL, UPSTASH_*) unless --pass-redis-env; --redis-file gives the URL",
    Effect.gen(function*() {
      const id = yield* uniqueId("out-env")
      const env = { REDIS_URL: h.server().url, UPSTASH_REDIS_REST_TOKEN: "upstash-token" }
      const file = join(h.dir(), `${id}.url`)
      yield* Effect.sync(() => writeFileSync(file, `${h.server().url}\n`))
      const [stripped, passed, fromFile] = yield* Effect.all([
        runCli(["run", "--id", id, "--wait", "20s", "--", ...child(`${id}-a`, "exit")], env),
        runCli(["run", "--id", id, "--wait", "20s", "--pass-redis-env", "--", ...child(`${id}-b`, "exit")], env),
        runCli(["run", "--id", id, "--wait", "20s", "--redis-file", file, "--", ...child(`${id}-c`, "exit")])
      ], { concurrency: "unbounded" })
      for (const r of [stripped, passed, fromFile]) expect(r.code).toBe(0)
      const [a, b, c] = yield* Effect.all(["a", "b", "c"].map((n) => awaitFile<Cli.Started>(`${id}-${n}`, "started")))
      expect(a!.env).toEqual({ REDIS_URL: null, UPSTASH_REDIS_REST_URL: null, UPSTASH_REDIS_REST_TOKEN: null })
      expect(b!.env).toMatchObject({ REDIS_URL: h.server().url, UPSTASH_REDIS_REST_TOKEN: "upstash-token" })
      expect(c!.fence).toBeGreaterThan(0)
      expect(c!.env.REDIS_URL).toBeNull()
    })
  )

  live(
    "a password in --redis is hidden from /proc/<pid>/cmdline while run runs, with a warning; --redis-file keeps it out of argv",
    Effect.gen(function*() {
      const password = "s3cret-pw-in-argv"
      const server = yield* RedisServer.startFresh({ args: ["--requirepass", password] })
      const url = `redis://:${password}@127.0.0.1:${server.port}`
      const id = yield* uniqueId("out-argv")
      const run = yield* cli(["run", "--id", id, "--redis", url, "--", ...child(`${id}-a`, "wait")])
      yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      const cmdline = readFileSync(`/proc/${run.proc.pid}/cmdline`, "utf8")
      expect(cmdline).toContain("--redis")
      expect(cmdline).toContain(":***@127.0.0.1")
      expect(cmdline).not.toContain(password)
      yield* go(`${id}-a`)
      const done = yield* run.finished
      expect(done.code).toBe(0)
      expect(done.stderr).toContain("can be seen by other users")
      expect(done.stdout + done.stderr).not.toContain(password)

      const file = join(h.dir(), `${id}.url`)
      yield* Effect.sync(() => writeFileSync(file, url))
      const quiet = yield* runCli(["run", "--id", id, "--redis-file", file, "--", ...child(`${id}-b`, "exit", 3)])
      expect(quiet.code).toBe(3)
      expect(quiet.stderr).not.toContain("can be seen by other users")
      expect(quiet.stdout + quiet.stderr).not.toContain(password)
    }).pipe(Effect.provide(RedisServer.layerOwned), Effect.scoped)
  )

  live(
    "what run prints is escaped: a crafted id, command or bad id cannot forge a log line or drive the terminal",
    Effect.gen(function*() {
      const forged = `\neffect-lock: acquired lock "forged" with fence 99\u001b[2K\u009b31m`
      // Ids refuse control characters (64), but say what they got; a bidi override is a valid id; a command
      // name is anything.
      const bidi = `x\u202eevil`
      const [badId, oddId, badCommand] = yield* Effect.all([
        runCli(["run", "--id", `x${forged}`, "--redis", h.server().url, "--", "true"]),
        runCli(["run", "--id", bidi, "--redis", h.server().url, "--", ...child("crafted", "exit")]),
        runCli(["run", "--id", "x", "--redis", h.server().url, "--", `/no/such${forged}`])
      ], { concurrency: "unbounded" })
      expect(badId.code).toBe(64)
      expect(oddId.code).toBe(0)
      expect(badCommand.code).toBe(127)
      const raw = [ESC, "\u009b", "\u202e"]
      for (const r of [badId, oddId, badCommand]) {
        const lines = r.stderr.trimEnd().split("\n")
        for (const line of lines) expect(line).toMatch(/^effect-lock: /)
        expect(lines.filter((line) => line.startsWith("effect-lock: acquired lock \"forged\""))).toEqual([])
        for (const char of raw) expect(r.stderr).not.toContain(char)
      }
      expect(badCommand.stderr).toContain(
        `command not found: /no/such\\neffect-lock: acquired lock "forged" with fence 99\\x1b[2K\\x9b31m`
      )
      const fence = (yield* awaitFile<Cli.Started>("crafted", "started")).fence
      expect(oddId.stderr).toContain(`acquired lock "x\\u202eevil" with fence ${fence}`)
      const status = yield* runCli(["status", "--id", bidi, "--redis", h.server().url, "--json"])
      for (const char of raw) expect(status.stdout).not.toContain(char)
      expect(status.stdout).toContain("\\u202e")
      expect(JSON.parse(status.stdout).id).toBe(bidi)
    })
  )

  live(
    "no ANSI escapes when stdout is not a terminal or NO_COLOR is set; on a terminal, colours",
    Effect.gen(function*() {
      const [piped, noColor, coloured] = yield* Effect.all([
        runCli(["--help"]),
        onTerminal(["--help"], { NO_COLOR: "1" }),
        onTerminal(["--help"], {})
      ], { concurrency: "unbounded" })
      expect(piped.stdout).toContain("effect-lock")
      expect(piped.stdout).not.toContain(ESC)
      expect(noColor).toContain("effect-lock")
      expect(noColor).not.toContain(ESC)
      expect(coloured).toContain(ESC)
    })
  )

  live(
    "--help shows `effect-lock run`, the defaults and each exit code once, 130 and 143 included",
    Effect.gen(function*() {
      const [root, run] = yield* Effect.all([runCli(["--help"]), runCli(["run", "--help"])], {
        concurrency: "unbounded"
      })
      expect(run.stdout).toContain("$ effect-lock run --id ID")
      for (const text of ["(default: 30s)", "(default: 10s)", "(default: 75)", "REDIS_URL", "--redis-file"]) {
        expect(run.stdout).toContain(text)
      }
      for (const help of [root.stdout, run.stdout]) {
        const lines = help.split("\n").map((line) => line.trim())
        for (const code of ["64", "69", "70", "75", "126", "127", "130", "143"]) {
          expect(lines.filter((line) => line === code), code).toHaveLength(1)
        }
      }
    })
  )

  live(
    "durations need a unit (10s, 10 seconds); a bare --lease 10 is refused, not 10 ms",
    Effect.gen(function*() {
      const id = yield* uniqueId("out-duration")
      const base = ["--id", id, "--redis", h.server().url]
      const bare = yield* runCli(["run", ...base, "--lease", "10", "--", ...child(`${id}-x`, "exit")])
      expect(bare.code).toBe(64)
      expect(bare.stderr + bare.stdout).toContain("a number and a unit")
      yield* Effect.forEach([["a", "10 seconds"], ["b", "10s"]] as const, ([n, lease]) =>
        Effect.gen(function*() {
          const other = [...base.slice(0, 1), `${id}-${n}`, ...base.slice(2)]
          const run = yield* cli(["run", ...other, "--lease", lease, "--", ...child(`${id}-${n}`, "wait")])
          yield* awaitFile<Cli.Started>(`${id}-${n}`, "started")
          const status = JSON.parse((yield* runCli(["status", ...other, "--json"])).stdout)
          expect(status.state).toBe("held")
          expect(status.remainingMs).toBeGreaterThan(1000)
          expect(status.remainingMs).toBeLessThanOrEqual(10_000)
          yield* go(`${id}-${n}`)
          expect((yield* run.finished).code).toBe(0)
        }), { concurrency: "unbounded" })
    })
  )

  live(
    "a command that cannot be found (127) or run (126) fails before the lock is taken",
    Effect.gen(function*() {
      const id = yield* uniqueId("out-nocmd")
      const base = ["--id", id, "--redis", h.server().url]
      const [missing, directory] = yield* Effect.all([
        runCli(["run", ...base, "--", "/no/such/cmd"]),
        runCli(["run", ...base, "--", h.dir()])
      ], { concurrency: "unbounded" })
      expect(missing.code).toBe(127)
      expect(missing.stderr).toContain("command not found: /no/such/cmd")
      expect(directory.code).toBe(126)
      for (const r of [missing, directory]) expect(r.stderr).not.toContain("acquired")
      const client = yield* redis
      expect(yield* Effect.promise(() => client.exists(`effect-lock:fence:{${id}}`, lockKey(id)))).toBe(0)
    })
  )

  live(
    "--no-wait against a server that does not answer, or refuses, exits 69 without printing `waiting for lock`",
    Effect.gen(function*() {
      const silent = yield* silentServer
      const port = yield* RedisServer.freePort
      const results = yield* Effect.all([
        runCli(["run", "--id", "x", "--redis", silent.url, "--no-wait", "--", ...child("nowait-a", "exit")]),
        runCli(["run", "--id", "x", "--redis", `redis://127.0.0.1:${port}`, "--no-wait", "--", "true"])
      ], { concurrency: "unbounded" })
      for (const r of results) {
        expect(r.code).toBe(69)
        expect(r.stderr).not.toContain("waiting for lock")
      }
      expect(results[0].stderr).toContain("no answer within 2s")
    })
  )

  live(
    "a stolen key is reported as taken by another owner, not as expired",
    Effect.gen(function*() {
      const id = yield* uniqueId("out-stolen")
      const client = yield* redis
      const run = yield* cli(command(id, ["--lease", "3s"], child(`${id}-a`, "wait", 0, 9)))
      const a = yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      yield* killOnExit(a.pid)
      expect(yield* Effect.promise(() => client.set(lockKey(id), "thief", "PX", 20_000))).toBe("OK")
      const done = yield* run.finished
      expect(done.code).toBe(70)
      expect(done.stderr).toContain("was taken by another owner")
      expect(done.stderr).not.toContain("expired")
    })
  )
})
