/**
 * The `effect-lock` command line as real OS processes against a private redis-server (the harness is
 * test/utils/cli.ts). The packed install of the tsc build is checked in Cli.packed.test.ts; the process
 * tree in Cli.processTree.test.ts; credentials and output in Cli.output.test.ts.
 */
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import * as Cli from "./utils/cli.js"
import { eventually, isAlive, live, lockKey } from "./utils/cli.js"
import { uniqueId } from "./utils/probe.js"
import * as Proxy from "./utils/Proxy.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

const h = Cli.harness()
const { awaitFile, child, cli, command, go, redis, runCli } = Cli.tools(h)
type Started = Cli.Started
type Term = Cli.Term

describe.concurrent("effect-lock on the command line", () => {
  live(
    "with --no-wait one run runs its child and the other exits 75; status --json tells the truth; the child's code comes through",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-nowait")
      const base = ["--id", id, "--redis", h.server().url]
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
      expect(existsSync(join(h.dir(), `${id}-b.started`))).toBe(false)
      expect(existsSync(join(h.dir(), `${id}-c.started`))).toBe(false)
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
      const base = ["--id", id, "--redis", h.server().url]
      const first = yield* cli(["run", ...base, "--", ...child(`${id}-a`, "wait")])
      const a = yield* awaitFile<Started>(`${id}-a`, "started")
      const second = yield* cli(["run", ...base, "--wait", "20s", "--", ...child(`${id}-b`, "exit", 4)])
      // The second is in line (it says so on stderr) while the first still runs.
      yield* eventually(() => second.output().stderr.includes(`waiting for lock "${id}"`) || undefined, "waiting")
      expect(existsSync(join(h.dir(), `${id}-b.started`))).toBe(false)
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
      const run = yield* cli(command(id, ["--lease", "3s", "--kill-after", "300ms"], child(`${id}-a`, "stubborn")))
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
      const proxy = yield* Proxy.start(h.server())
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
      const second = yield* cli(command(id, ["--wait", "20s"], child(`${id}-b`, "exit")))
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
          const run = yield* cli(command(id, [], child(`${id}-a`, "wait", 0, 42)))
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
        runCli(["run", "--id", id, "--redis", h.server().url, "--no-wait", "--", "./no-such-command-here"]),
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
      const upstash = yield* UpstashServer.start({ redisUrl: h.server().url, token: UpstashServer.TEST_TOKEN })
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
