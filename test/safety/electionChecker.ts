/**
 * The election's multi-process checker: P worker processes (./electionWorker.ts) run `runAsLeader` on
 * one election until T terms have begun, while the checker faults the deployment, round after round:
 * SIGKILL of the leader (a new process takes its place), SIGSTOP of the leader for 1.5 leases, CLIENT
 * KILL of every connection, SCRIPT FLUSH, and a restart of redis-server (with an append-only file
 * fsynced on every write, so the term counter survives it: without persistence, a restart forgets it).
 * Then three checks on what the workers recorded on the machine's monotonic clock:
 *
 * - no overlap: each term ends (its loss or end, but no later than its local deadline) before the next
 *   term begins;
 * - terms strictly increase in the order leaderships begin;
 * - fenced writes land in term order (the log the fenced script appends to never goes back), and a
 *   write refused as stale is counted.
 *
 * Used by the test suite (small defaults) and by `npm run check:safety` (larger ones).
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { Deferred, Duration, Effect, Exit, type Fiber, Ref, Schedule, Scope, Stream } from "effect"
import { build } from "esbuild"
import { Redis as IORedis } from "ioredis"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as RedisServer from "../utils/RedisServer.js"
import { lines } from "./checker.js"

export type Record =
  | { readonly e: "ready"; readonly pid: number }
  | { readonly e: "start"; readonly term: number; readonly t: number; readonly d: number }
  | { readonly e: "d"; readonly term: number; readonly d: number }
  | {
    readonly e: "end"
    readonly term: number
    readonly t: number
    readonly d: number
    readonly ok: number
    readonly stale: number
  }

export interface Term {
  readonly term: number
  readonly identity: string
  readonly start: number
  /** Its loss or end, but no later than its local deadline; its latest local deadline if it never ended (killed). */
  readonly end: number
  readonly ended: boolean
}

export interface Report {
  readonly terms: ReadonlyArray<Term>
  /** Consecutive terms (by term) where the next began before the previous ended. */
  readonly overlaps: ReadonlyArray<readonly [Term, Term]>
  /** Consecutive leaderships (by start) whose terms do not strictly increase. */
  readonly inversions: ReadonlyArray<readonly [Term, Term]>
  /** Places in the fenced log where the term went back. */
  readonly logInversions: number
  readonly writes: number
  readonly staleRefused: number
  /** The faults injected: SIGKILLs and SIGSTOPs that hit a process while it led, and the others. */
  readonly faults: {
    readonly sigkill: number
    readonly sigstop: number
    readonly clientKill: number
    readonly scriptFlush: number
    readonly restart: number
  }
  /** The hand-over gaps (ms): the next term's start minus the previous one's end, by cause. */
  readonly gaps: { readonly resign: ReadonlyArray<number>; readonly sigkill: ReadonlyArray<number> }
  readonly processes: number
}

interface Worker {
  readonly identity: string
  readonly pid: number
  readonly fiber: Fiber.RuntimeFiber<void, unknown>
}

/**
 * The worker, bundled once per run by esbuild (packages stay external, resolved from node_modules): a
 * process then starts in a fraction of the time tsx's loader takes, so a replaced process soon campaigns.
 */
export const bundleWorker = Effect.acquireRelease(
  Effect.promise(async () => {
    const root = mkdtempSync(join("node_modules", ".cache-effect-lock-election-"))
    const outfile = join(root, "electionWorker.mjs")
    await build({
      entryPoints: ["test/safety/electionWorker.ts"],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      outfile,
      logLevel: "error"
    })
    return { root, outfile }
  }),
  ({ root }) => Effect.sync(() => rmSync(root, { recursive: true, force: true }))
)

export const run = (options: {
  readonly processes: number
  readonly terms: number
  /** Fault rounds (each: SIGKILL, SIGSTOP, CLIENT KILL, SCRIPT FLUSH, restart). */
  readonly rounds: number
  readonly lease?: number
  /** Told each phase as it begins (`npm run check:safety` prints them). */
  readonly progress?: (message: string) => Effect.Effect<void>
}): Effect.Effect<Report, unknown, CommandExecutor.CommandExecutor> =>
  Effect.scoped(Effect.gen(function*() {
    const lease = options.lease ?? 1000
    const worker = yield* bundleWorker
    const dir = mkdtempSync(join(tmpdir(), "effect-lock-election-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const port = yield* RedisServer.freePort
    const serverArgs = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir]
    const startServer = Effect.gen(function*() {
      const scope = yield* Scope.make()
      // The port of the server just stopped may take a moment to be free again.
      yield* Scope.extend(RedisServer.start({ port, args: serverArgs }), scope).pipe(
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(50)))),
        Effect.orDie
      )
      return scope
    })
    let server = yield* startServer
    yield* Effect.addFinalizer(() => Scope.close(server, Exit.void))
    const url = `redis://127.0.0.1:${port}`
    const admin = new IORedis(url, { maxRetriesPerRequest: null })
    admin.on("error", () => {}) // refused while the server restarts; it reconnects
    yield* Effect.addFinalizer(() => Effect.sync(() => admin.disconnect()))

    const tag = `election-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const id = tag
    const storeKey = `${tag}:store`
    const logKey = `${tag}:log`
    const electionKey = `effect-lock:election:{${id}}`

    const records: Array<{ readonly identity: string; readonly record: Record }> = []
    const started = yield* Ref.make(0)
    const workers = new Map<string, Worker>()
    /** The processes in their body as leader (a start printed, not its end). */
    const open = new Set<string>()
    let generation = 0

    const startWorker = (slot: number) =>
      Effect.gen(function*() {
        const identity = `w${slot}-${generation++}`
        const proc = yield* Command.start(
          Command.make(process.execPath, worker.outfile, url, id, identity, String(lease), storeKey, logKey)
        )
        const ready = yield* Deferred.make<number>()
        const fiber = yield* lines(proc.stdout).pipe(
          Stream.filter((line) => line.startsWith("{")),
          Stream.runForEach((line) =>
            Effect.gen(function*() {
              const record = JSON.parse(line) as Record
              records.push({ identity, record })
              if (record.e === "ready") yield* Deferred.succeed(ready, record.pid)
              if (record.e === "start") {
                open.add(identity)
                yield* Ref.update(started, (n) => n + 1)
              }
              if (record.e === "end") open.delete(identity)
            })
          ),
          Effect.forkScoped
        )
        const pid = yield* Deferred.await(ready)
        workers.set(identity, { identity, pid, fiber })
        return identity
      })
    const slotOf = new Map<string, number>()
    yield* Effect.forEach(
      Array.from({ length: options.processes }, (_, slot) => slot),
      (slot) => Effect.map(startWorker(slot), (identity) => slotOf.set(identity, slot)),
      { concurrency: "unbounded" }
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const w of workers.values()) {
          try {
            process.kill(w.pid, "SIGKILL")
          } catch {
            // gone already
          }
        }
      })
    )

    const untilStarted = (n: number) =>
      Effect.gen(function*() {
        while ((yield* Ref.get(started)) < n) yield* Effect.sleep(Duration.millis(10))
      })
    /** The identity of the leader now (from the election's key), if any. */
    const leaderNow = Effect.promise(() => admin.get(electionKey).catch(() => null)).pipe(
      Effect.map((value) => (value === null || value.startsWith("~") ? undefined : value.slice(32)))
    )
    /**
     * Sends `signal` to the leader, until it reaches one that was in its body as leader (it printed the
     * start of a term and not its end: pipes are written synchronously, so the records are all there).
     * A SIGKILLed process is replaced by a new one in its slot; a SIGSTOPped one that was not leading
     * is let go again.
     */
    const hitLeader = (signal: "SIGKILL" | "SIGSTOP") =>
      Effect.gen(function*() {
        for (let i = 0; i < 500; i++) {
          const identity = yield* leaderNow
          const worker = identity === undefined ? undefined : workers.get(identity)
          if (worker === undefined) {
            yield* Effect.sleep(Duration.millis(2))
            continue
          }
          process.kill(worker.pid, signal)
          yield* Effect.sleep(Duration.millis(50))
          const leading = open.has(worker.identity)
          if (signal === "SIGKILL") {
            workers.delete(worker.identity)
            const slot = slotOf.get(worker.identity)!
            yield* Effect.forkScoped(Effect.map(startWorker(slot), (identity) => slotOf.set(identity, slot)))
          } else if (!leading) process.kill(worker.pid, "SIGCONT")
          if (leading) return worker
        }
        return yield* Effect.die(`no leader to send ${signal} to`)
      })

    const faults = { sigkill: 0, sigstop: 0, clientKill: 0, scriptFlush: 0, restart: 0 }
    const killedTerms = new Set<string>()
    const perRound = Math.max(10, Math.floor(options.terms / (options.rounds * 6)))
    const t0 = performance.now()
    const say = (message: string) =>
      Effect.flatMap(Ref.get(started), (n) =>
        options.progress?.(`+${Math.round(performance.now() - t0)} ms, ${n} terms: ${message}`) ?? Effect.void)
    const step = Effect.flatMap(Ref.get(started), (n) =>
      untilStarted(n + perRound))
    for (let round = 0; round < options.rounds; round++) {
      yield* step
      yield* say("SIGKILL of the leader")
      killedTerms.add((yield* hitLeader("SIGKILL")).identity)
      faults.sigkill++
      yield* step
      yield* say("SIGSTOP of the leader")
      const stopped = yield* hitLeader("SIGSTOP")
      faults.sigstop++
      yield* Effect.sleep(Duration.millis(Math.round(lease * 1.5)))
      process.kill(stopped.pid, "SIGCONT")
      yield* step
      yield* say("CLIENT KILL")
      yield* Effect.promise(() => admin.client("KILL", "TYPE", "normal", "SKIPME", "yes"))
      yield* Effect.promise(() => admin.client("KILL", "TYPE", "pubsub"))
      faults.clientKill++
      yield* step
      yield* say("SCRIPT FLUSH")
      yield* Effect.promise(() => admin.script("FLUSH"))
      faults.scriptFlush++
      yield* step
      yield* say("restart of redis-server")
      yield* Scope.close(server, Exit.void)
      yield* Effect.sleep(Duration.millis(200))
      server = yield* startServer
      faults.restart++
    }
    yield* say("faults done")
    yield* untilStarted(options.terms)
    yield* say("done")
    const log = (yield* Effect.promise(() => admin.lrange(logKey, 0, -1))).map(Number)
    yield* Effect.promise(() => admin.del(logKey, storeKey))
    for (const w of workers.values()) process.kill(w.pid, "SIGKILL")
    workers.clear()

    // Every term's window, from what its process printed.
    const byTerm = new Map<number, { identity: string; start: number; d: number; end?: number; ended: boolean }>()
    let writes = 0
    let staleRefused = 0
    for (const { identity, record } of records) {
      if (record.e === "start") byTerm.set(record.term, { identity, start: record.t, d: record.d, ended: false })
      const known = record.e === "ready" ? undefined : byTerm.get(record.term)
      if (known === undefined || known.identity !== identity) continue
      if (record.e === "d") known.d = Math.max(known.d, record.d)
      if (record.e === "end") {
        known.d = Math.max(known.d, record.d)
        known.end = record.t
        known.ended = true
        writes += record.ok + record.stale
        staleRefused += record.stale
      }
    }
    const terms: Array<Term> = Array.from(byTerm, ([term, w]) => ({
      term,
      identity: w.identity,
      start: w.start,
      end: Math.min(w.end ?? Infinity, w.d),
      ended: w.ended
    })).sort((a, b) => a.term - b.term)
    const pairs = terms.slice(1).map((next, i) => [terms[i]!, next] as const)
    const byStart = [...terms].sort((a, b) => a.start - b.start)
    const startPairs = byStart.slice(1).map((next, i) => [byStart[i]!, next] as const)
    let logInversions = 0
    for (let i = 1; i < log.length; i++) if (log[i]! < log[i - 1]!) logInversions++
    const gaps = { resign: [] as Array<number>, sigkill: [] as Array<number> }
    for (const [a, b] of pairs) {
      if (b.term !== a.term + 1) continue
      if (killedTerms.has(a.identity) && !a.ended) gaps.sigkill.push(b.start - a.end)
      else if (a.ended) gaps.resign.push(b.start - a.end)
    }
    return {
      terms,
      overlaps: pairs.filter(([a, b]) => b.start < a.end),
      inversions: startPairs.filter(([a, b]) => b.term <= a.term),
      logInversions,
      writes,
      staleRefused,
      faults,
      gaps,
      processes: options.processes
    }
  }))
