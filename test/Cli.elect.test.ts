/**
 * `effect-lock elect` and `effect-lock leader` as real OS processes against a private redis-server (the
 * harness is test/utils/cli.ts): a term's child, its environment and exit code, a hand-over on SIGTERM,
 * a lost leadership, bad input.
 */
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Cli from "./utils/cli.js"
import { eventually, live } from "./utils/cli.js"
import { uniqueId } from "./utils/probe.js"

const h = Cli.harness()
const { awaitFile, child, cli, go, redis, runCli } = Cli.tools(h)

interface Led extends Cli.Started {
  readonly term: number
  readonly identity: string
}

describe.concurrent("effect-lock elect and leader", () => {
  live(
    "elect --once runs the child as leader with its term and identity, leader --json sees it, and the child's code comes through",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-elect-once")
      const base = ["--id", id, "--redis", h.server().url]
      const none = yield* runCli(["leader", ...base, "--json"])
      expect(JSON.parse(none.stdout)).toEqual({ id, leader: null, term: 0 })
      const elect = yield* cli([
        "elect",
        ...base,
        "--identity",
        "host-a",
        "--once",
        "--",
        ...child(`${id}-a`, "wait", 6)
      ])
      const led = yield* awaitFile<Led>(`${id}-a`, "started")
      // A fresh term counter starts at the server's clock in µs (docs/fences.md): the term, digit for digit.
      const t = led.term
      expect(t).toBeGreaterThan(1e15)
      expect(led).toMatchObject({ id, term: t, fence: t, identity: "host-a" })
      const seen = yield* runCli(["leader", ...base, "--json"])
      const report = JSON.parse(seen.stdout)
      expect(report).toMatchObject({ id, leader: { identity: "host-a", term: t }, term: t })
      expect(report.leader.remainingMs).toBeGreaterThan(0)
      expect(report.leader.remainingMs).toBeLessThanOrEqual(15_000)
      expect((yield* runCli(["leader", ...base])).stdout).toContain(`host-a, term ${t},`)
      yield* go(`${id}-a`)
      const done = yield* elect.finished
      expect(done.code).toBe(6)
      expect(done.stderr).toContain(`leading "${id}" as "host-a", term ${t}`)
      expect(JSON.parse((yield* runCli(["leader", ...base, "--json"])).stdout)).toEqual({ id, leader: null, term: t })
      expect((yield* runCli(["leader", ...base])).stdout).toContain(`no leader (latest term ${t})`)
    })
  )

  live(
    "SIGTERM to the leading elect stops its child, then resigns: the waiting candidate leads with the next term",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-elect-handover")
      const base = ["--id", id, "--redis", h.server().url]
      const a = yield* cli(["elect", ...base, "--identity", "a", "--", ...child(`${id}-a`, "wait", 0, 9)])
      const first = yield* awaitFile<Led>(`${id}-a`, "started")
      const b = yield* cli(["elect", ...base, "--identity", "b", "--once", "--", ...child(`${id}-b`, "wait", 0, 0)])
      yield* eventually(() => b.output().stderr.includes(`waiting to lead "${id}"`) || undefined, "b waiting")
      yield* a.proc.kill("SIGTERM")
      const term = yield* awaitFile<Cli.Term>(`${id}-a`, "term")
      expect(term.signal).toBe("SIGTERM")
      const led = yield* awaitFile<Led>(`${id}-b`, "started")
      expect(led).toMatchObject({ term: first.term + 1, identity: "b" })
      // The hand-over comes after a's child exited, and within one round trip of its resignation.
      expect(led.at).toBeGreaterThanOrEqual(term.at)
      expect((yield* a.finished).code).toBe(9)
      yield* go(`${id}-b`)
      expect((yield* b.finished).code).toBe(0)
    })
  )

  live(
    "lost leadership (the key deleted) stops the child and elect campaigns again: a new child with the next term",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-elect-lost")
      const client = yield* redis
      const elect = yield* cli([
        "elect",
        "--id",
        id,
        "--redis",
        h.server().url,
        "--lease",
        "3s",
        "--kill-after",
        "300ms",
        "--",
        ...child(`${id}-a`, "wait")
      ])
      const first = yield* awaitFile<Led>(`${id}-a`, "started")
      expect(first.term).toBeGreaterThan(1e15) // a fresh counter: the server's clock in µs (docs/fences.md)
      expect(first.identity).toMatch(/^.+:\d+:[0-9a-f]{8}$/)
      expect(yield* Effect.promise(() => client.del(`effect-lock:election:{${id}}`))).toBe(1)
      expect((yield* awaitFile<Cli.Term>(`${id}-a`, "term")).signal).toBe("SIGTERM")
      // The same child name: its `started` file is written again by the next term's child.
      const again = yield* eventually(() => {
        const file = join(h.dir(), `${id}-a.started`)
        const led = JSON.parse(readFileSync(file, "utf8")) as Led
        return led.term === first.term + 1 ? led : undefined
      }, "the next term's child")
      expect(again.identity).toBe(first.identity)
      yield* elect.proc.kill("SIGTERM")
      yield* elect.finished
    })
  )

  live(
    "bad input exits 64 before anything is sent",
    Effect.gen(function*() {
      const id = yield* uniqueId("cli-elect-bad")
      const [empty, lease] = yield* Effect.all([
        runCli(["elect", "--id", id, "--redis", h.server().url, "--identity", "", "--", "true"]),
        runCli(["elect", "--id", id, "--redis", h.server().url, "--lease", "0", "--", "true"])
      ], { concurrency: "unbounded" })
      expect(empty.code).toBe(64)
      expect(empty.stderr).toContain("identity")
      expect(lease.code).toBe(64)
      const client = yield* redis
      expect(yield* Effect.promise(() => client.exists(`effect-lock:election:{${id}}:fence`))).toBe(0)
    })
  )
})
