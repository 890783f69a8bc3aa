/**
 * Issue 23 §3: a burst whose last caller dies still runs once. Real OS processes on a real redis-server:
 * the last caller of a burst is SIGKILLed during its wait, or during its run; the other caller's process
 * (its call already resolved `Superseded`) adopts the run once the dead caller's claim lapses, within
 * `wait` and one lease. Was: no run at all, while the other call resolved `Superseded`.
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope, Stream } from "effect"
import type { Redis as IORedis } from "ioredis"
import * as path from "node:path"
import { eventually, raw } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

const WAIT = 1500
// long enough that a caller slowed down by a loaded machine keeps its claim
const LEASE = 3000

/** One caller's process; its first stdout line (the call's outcome) once it comes. */
const caller = (url: string, id: string, value: number, slow: boolean) =>
  Effect.gen(function*() {
    const proc = yield* Command.make(
      process.execPath,
      "--import",
      "tsx",
      path.join(import.meta.dirname, "fixtures/debounce-child.ts"),
      url,
      id,
      String(WAIT),
      String(LEASE),
      String(value),
      slow ? "1" : "0"
    ).pipe(Command.start)
    // stdout is read to its end: a caller's log lines must never meet a closed pipe
    const lines: Array<string> = []
    yield* proc.stdout.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) => Effect.sync(() => lines.push(line))),
      Effect.forkScoped
    )
    yield* proc.stderr.pipe(Stream.runDrain, Effect.forkScoped)
    const outcome = eventually(
      Effect.sync(() => lines.find((line) => line.startsWith("{"))),
      (line) => line !== undefined,
      "20 seconds"
    ).pipe(Effect.map((line) => (JSON.parse(line!) as { outcome: unknown }).outcome))
    return { proc, outcome }
  })

const seqOf = (admin: IORedis, id: string) => Effect.promise(() => admin.get(`effect-lock:debounce:{${id}}::seq`))
const runsOf = (admin: IORedis, id: string) => Effect.promise(() => admin.lrange(`${id}:runs`, 0, -1))

const scenario = (
  name: string,
  killWhen: (admin: IORedis, id: string, last: CommandExecutor.Process) => Effect.Effect<void, unknown>,
  slow: boolean
) =>
  it.scopedLive(name, () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh()
      const admin = yield* raw(server.url)
      const id = yield* uniqueId("dead-caller")
      const first = yield* caller(server.url, id, 1, false)
      const last = yield* caller(server.url, id, 2, slow)
      const flag = (name: string) => Effect.promise(() => admin.get(`${id}:${name}`))
      // a step that does not come says which, and what had run
      const step = <A, E>(name: string, self: Effect.Effect<A, E>) =>
        Effect.catchAll(self, (error) =>
          Effect.flatMap(
            runsOf(admin, id),
            (runs) => Effect.fail(new Error(`${name}: ${String(error)}; runs ${runs}`))
          ))
      yield* eventually(
        Effect.zip(flag("ready:1"), flag("ready:2")),
        ([a, b]) => a !== null && b !== null,
        "30 seconds"
      )
      yield* Effect.promise(() => admin.set(`${id}:go:1`, "1"))
      yield* eventually(seqOf(admin, id), (seq) => seq === "1", "20 seconds")
      yield* Effect.promise(() => admin.set(`${id}:go:2`, "1"))
      yield* eventually(seqOf(admin, id), (seq) => seq === "2", "20 seconds")
      yield* step("the last caller's run", killWhen(admin, id, last.proc))
      yield* last.proc.kill("SIGKILL")
      const killedAt = Date.now()
      // the other call resolved Superseded: a later call (the dead one) owed the run…
      expect(yield* first.outcome).toEqual({ _tag: "Superseded" })
      // …and the run came, in the other caller's process, with the last arguments, once
      const runs = yield* step(
        "the adopted run",
        eventually(runsOf(admin, id), (runs) => runs.some((r) => r.startsWith("end:")), "20 seconds")
      )
      expect(Date.now() - killedAt).toBeLessThan(WAIT + 2 * LEASE + 5000)
      const ended = runs.filter((r) => r.startsWith("end:"))
      expect(ended).toEqual([`end:${first.proc.pid}:2`])
      // nothing more is owed: no second run
      yield* Effect.sleep(WAIT + 2 * LEASE)
      expect((yield* runsOf(admin, id)).filter((r) => r.startsWith("end:"))).toEqual(ended)
      expect(yield* first.proc.isRunning).toBe(true)
    }).pipe(Effect.provide(NodeContext.layer)) as Effect.Effect<void, unknown, Scope.Scope>, 90_000)

describe("Debounce: a burst whose last caller dies still runs once (issue 23 §3)", () => {
  scenario(
    "the last caller SIGKILLed during its wait: the other caller's process runs the burst",
    () => Effect.void,
    false
  )
  scenario(
    "the last caller SIGKILLed during its run: the other caller's process runs the burst again, to its end",
    (admin, id, last) =>
      Effect.asVoid(eventually(runsOf(admin, id), (runs) => runs.includes(`start:${last.pid}:2`), "20 seconds")),
    true
  )
})
