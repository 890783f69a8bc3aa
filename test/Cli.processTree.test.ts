/**
 * What `effect-lock run` guarantees about the command's process tree (issue 23 §1 and §2), with real
 * processes and process groups: the command never outlives the lease, whatever happens to `run` (SIGKILL,
 * SIGSTOP, SIGTSTP), and the lock is released only once every process of the command's group is gone
 * (a shell that dies at once on SIGTERM, a background job left behind). "Ticking" children write a file
 * every 10 ms: the next owner's child must start after the last write of the previous one.
 */
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Cli from "./utils/cli.js"
import { eventually, isAlive, killOnExit, live, lockKey, signal } from "./utils/cli.js"
import * as Live from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"

const h = Cli.harness()
const { awaitFile, child, cli, command, go, readJson, redis } = Cli.tools(h)

/** `sh -c` of a command line, each word quoted. */
const shell = (script: (quoted: string) => string, words: ReadonlyArray<string>) => [
  "sh",
  "-c",
  script(words.map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(" "))
]

interface Tick {
  readonly at: number
}

/** The process group of `pid` (Linux: field 5 of /proc/<pid>/stat, after the command name). */
const groupOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2])
}

describe.concurrent("effect-lock run: the command's process tree", () => {
  live(
    "the watchdog killed: run stops the rest of the group (SIGTERM, SIGKILL after --kill-after) and exits 70 once it is gone",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-dog")
      const run = yield* cli(command(id, ["--lease", "20s", "--kill-after", "300ms"], child(`${id}-a`, "ticking")))
      const a = yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      yield* killOnExit(a.pid)
      const watchdog = groupOf(a.pid)
      expect(watchdog).not.toBe(a.pid)
      expect(watchdog).not.toBe(run.proc.pid)
      yield* signal(watchdog, "SIGKILL")
      expect((yield* awaitFile<Cli.Term>(`${id}-a`, "term")).signal).toBe("SIGTERM")
      const done = yield* run.finished
      expect(done.code).toBe(70)
      expect(done.stderr).toContain("the watchdog exited")
      expect(isAlive(a.pid)).toBe(false)
    })
  )

  live(
    "run SIGKILLed: the watchdog stops the command (SIGTERM, then SIGKILL after --kill-after) while the lease still holds",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-kill")
      const client = yield* redis
      const run = yield* cli(command(id, ["--lease", "20s", "--kill-after", "300ms"], child(`${id}-a`, "ticking")))
      const a = yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      yield* killOnExit(a.pid)
      yield* signal(run.proc.pid, "SIGKILL")
      const term = yield* awaitFile<Cli.Term>(`${id}-a`, "term")
      expect(term.signal).toBe("SIGTERM")
      // The child ignores SIGTERM: only the SIGKILL after --kill-after ends it.
      yield* eventually(() => !isAlive(a.pid) || undefined, "the child killed")
      // Long before the 20 s lease could lapse: no second owner can have started meanwhile.
      expect(yield* Effect.promise(() => client.pttl(lockKey(id)))).toBeGreaterThan(5000)
    })
  )

  live(
    "run stopped (SIGSTOP): the watchdog kills the command before the lease lapses; the next owner starts after its last write",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-stop")
      const base = ["--id", id, "--redis", h.server().url]
      const first = yield* cli(["run", ...base, "--lease", "3s", "--", ...child(`${id}-a`, "ticking")])
      const a = yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      yield* killOnExit(a.pid)
      yield* killOnExit(first.proc.pid)
      yield* signal(first.proc.pid, "SIGSTOP")
      const second = yield* cli(["run", ...base, "--wait", "30s", "--", ...child(`${id}-b`, "exit")])
      const b = yield* awaitFile<Cli.Started>(`${id}-b`, "started")
      expect(b.fence).toBeGreaterThan(a.fence)
      expect(isAlive(a.pid)).toBe(false)
      expect(readJson<Tick>(`${id}-a`, "tick")!.at).toBeLessThan(b.at)
      expect((yield* second.finished).code).toBe(0)
      // Resumed, the first run finds its command killed and reports the lease lost.
      yield* signal(first.proc.pid, "SIGCONT")
      const done = yield* first.finished
      expect(done.code).toBe(70)
      // Told by the watchdog (it killed the group), or by the lease's own deadline, whichever it hears first.
      expect(done.stderr).toMatch(/the watchdog killed the command's process group|lost the lease/)
    })
  )

  live(
    "run gets SIGTSTP (Ctrl-Z): it does not stop, says so, and keeps the lease alive",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-tstp")
      const client = yield* redis
      const run = yield* cli(command(id, ["--lease", "3s"], child(`${id}-a`, "wait", 6)))
      const a = yield* awaitFile<Cli.Started>(`${id}-a`, "started")
      yield* killOnExit(a.pid)
      yield* killOnExit(run.proc.pid)
      yield* signal(run.proc.pid, "SIGTSTP")
      yield* eventually(() => run.output().stderr.includes("ignoring SIGTSTP") || undefined, "SIGTSTP reported")
      // An extension after the SIGTSTP: the time left goes up again.
      const before = yield* Effect.promise(() => client.pttl(lockKey(id)))
      yield* Live.eventually(Effect.promise(() => client.pttl(lockKey(id))), (ttl) => ttl > before)
      yield* go(`${id}-a`)
      const done = yield* run.finished
      expect(done.code).toBe(6)
    })
  )

  live(
    "lease lost under a shell that dies at once on SIGTERM: its slow worker gets SIGKILL after --kill-after; run exits 70 once it is gone",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-shell")
      const client = yield* redis
      const run = yield* cli(
        command(
          id,
          ["--lease", "3s", "--kill-after", "500ms"],
          shell((worker) => `${worker}; echo the worker ended`, child(`${id}-w`, "ticking"))
        )
      )
      const worker = yield* awaitFile<Cli.Started>(`${id}-w`, "started")
      yield* killOnExit(worker.pid)
      expect(yield* Effect.promise(() => client.del(lockKey(id)))).toBe(1)
      const term = yield* awaitFile<Cli.Term>(`${id}-w`, "term")
      expect(term.signal).toBe("SIGTERM")
      const done = yield* run.finished
      expect(done.code).toBe(70)
      expect(isAlive(worker.pid)).toBe(false)
      expect(done.stderr).toContain("SIGKILL")
    })
  )

  live(
    "a command that exits leaving a background job: the job is stopped and the lock released only once it is gone",
    Effect.gen(function*() {
      const id = yield* uniqueId("tree-bg")
      const base = ["--id", id, "--redis", h.server().url]
      const first = yield* cli([
        "run",
        ...base,
        "--kill-after",
        "500ms",
        "--",
        // The shell exits once the job has started, leaving it behind in the group.
        ...shell(
          (job) => `${job} & while [ ! -e '${join(h.dir(), `${id}-job.started`)}' ]; do sleep 0.01; done; exit 5`,
          child(`${id}-job`, "ticking")
        )
      ])
      const job = yield* awaitFile<Cli.Started>(`${id}-job`, "started")
      yield* killOnExit(job.pid)
      const second = yield* cli(["run", ...base, "--wait", "30s", "--", ...child(`${id}-b`, "exit")])
      const b = yield* awaitFile<Cli.Started>(`${id}-b`, "started")
      expect(isAlive(job.pid)).toBe(false)
      expect(readJson<Tick>(`${id}-job`, "tick")!.at).toBeLessThan(b.at)
      const done = yield* first.finished
      // The command's own code; its job got SIGTERM, ignored it, and was killed.
      expect(done.code).toBe(5)
      expect(done.stderr).toContain("still run")
      expect((yield* awaitFile<Cli.Term>(`${id}-job`, "term")).signal).toBe("SIGTERM")
      expect((yield* second.finished).code).toBe(0)
    })
  )
})
