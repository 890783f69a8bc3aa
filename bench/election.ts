/**
 * `npm run bench:election`: the election's hand-over times, apart from the full bench.
 *
 * Two candidate processes (the checker's worker, bundled: test/safety/electionWorker.ts) run
 * `Election.runAsLeader` on one election, on a private redis-server through IoRedis and through the
 * Upstash REST fixture (pushed over SSE). Times are the machine's monotonic clock, the same in every
 * process.
 *
 * - graceful resign → next leader: each term's work ends after 20 ms and the leader resigns; from the
 *   end of its work to the start of the next leader's (release, wake-up, claim);
 * - SIGKILLed leader → next leader: the leader works until it is SIGKILLed; from the kill to the start
 *   of the next leader's work (lease 1 s, kept every third of it: bounded by the lease + a tick).
 *
 * Writes bench/election.md. `npm run bench:election -- <resigns> <kills>` (default 200 and 15).
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Console, Deferred, Duration, Effect, Ref, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { lines } from "../test/safety/checker.js"
import { bundleWorker, type Record } from "../test/safety/electionChecker.js"
import * as RedisServer from "../test/utils/RedisServer.js"
import * as UpstashServer from "../test/utils/UpstashServer.js"
import { percentile } from "./stats.js"

const [resigns = 200, kills = 15] = process.argv.slice(2).map(Number)
const LEASE = 1000
const HOLD = 20
const mono = () => Number(process.hrtime.bigint()) / 1e6

interface Backend {
  readonly name: string
  readonly url: string
  readonly env: { readonly [k: string]: string }
}

/** A pair of candidates on `backend`; `hold` ms a term (undefined: until killed). */
const candidates = (
  outfile: string,
  backend: Backend,
  id: string,
  hold: number | undefined
) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<
      ReadonlyArray<{ readonly identity: string; readonly term: number; readonly t: number }>
    >([])
    const ends = new Map<number, number>()
    const pids = new Map<string, number>()
    let n = 0
    const spawn = Effect.gen(function*() {
      const identity = `c${n++}`
      const args = [
        backend.url,
        id,
        identity,
        String(LEASE),
        "-",
        "-",
        ...(hold === undefined ? ["1e9"] : [String(hold)])
      ]
      const proc = yield* Command.make(process.execPath, outfile, ...args).pipe(
        Command.env(backend.env),
        Command.start
      )
      const ready = yield* Deferred.make<void>()
      yield* lines(proc.stdout).pipe(
        Stream.filter((line) => line.startsWith("{")),
        Stream.runForEach((line) =>
          Effect.gen(function*() {
            const record = JSON.parse(line) as Record
            if (record.e === "ready") {
              pids.set(identity, record.pid)
              yield* Deferred.succeed(ready, undefined)
            }
            if (record.e === "start") {
              yield* Ref.update(starts, (s) => [...s, { identity, term: record.term, t: record.t }])
            }
            if (record.e === "end") {
              ends.set(record.term, record.t)
            }
          })
        ),
        Effect.forkScoped
      )
      yield* Deferred.await(ready)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          try {
            process.kill(pids.get(identity)!, "SIGKILL")
          } catch {
            // killed already
          }
        })
      )
      return identity
    })
    yield* spawn
    yield* spawn
    const untilStarts = (count: number) =>
      Effect.gen(function*() {
        while ((yield* Ref.get(starts)).length < count) yield* Effect.sleep(Duration.millis(2))
        return yield* Ref.get(starts)
      })
    return { spawn, starts, ends, pids, untilStarts }
  })

const resignGaps = (outfile: string, backend: Backend) =>
  Effect.scoped(Effect.gen(function*() {
    const c = yield* candidates(outfile, backend, `bench-resign-${Date.now()}`, HOLD)
    const warm = 10
    const starts = yield* c.untilStarts(resigns + warm + 1)
    const gaps: Array<number> = []
    for (let i = warm; i < starts.length - 1; i++) {
      const end = c.ends.get(starts[i]!.term)
      const next = starts[i + 1]!
      if (end !== undefined && next.term === starts[i]!.term + 1) gaps.push(next.t - end)
    }
    return gaps
  }))

const killGaps = (outfile: string, backend: Backend) =>
  Effect.scoped(Effect.gen(function*() {
    const c = yield* candidates(outfile, backend, `bench-kill-${Date.now()}`, undefined)
    const killed = new Set<string>()
    /** The first start after `t` by a process not killed. */
    const startAfter = (t: number) =>
      Effect.gen(function*() {
        while (true) {
          const found = (yield* Ref.get(c.starts)).find((s) => s.t > t && !killed.has(s.identity))
          if (found !== undefined) return found
          yield* Effect.sleep(Duration.millis(2))
        }
      })
    const gaps: Array<number> = []
    let leader = yield* startAfter(0)
    for (let i = 0; i < kills; i++) {
      // Let the leader keep its lease a while (a keep-alive step or two), at a random point of the interval.
      yield* Effect.sleep(Duration.millis(400 + Math.floor(Math.random() * 400)))
      const latest = (yield* Ref.get(c.starts)).filter((s) => !killed.has(s.identity)).at(-1)!
      leader = latest.t > leader.t ? latest : leader
      const killedAt = mono()
      process.kill(c.pids.get(leader.identity)!, "SIGKILL")
      killed.add(leader.identity)
      leader = yield* startAfter(killedAt)
      gaps.push(leader.t - killedAt)
      yield* c.spawn // a new process joins the line behind the waiting one
    }
    return gaps
  }))

const row = (name: string, what: string, gaps: ReadonlyArray<number>) =>
  `| ${name} | ${what} | ${gaps.length} | ${percentile(gaps, 50).toFixed(1)} | ${percentile(gaps, 99).toFixed(1)} | ${
    Math.max(...gaps).toFixed(1)
  } |`

const program: Effect.Effect<void, unknown, CommandExecutor.CommandExecutor> = Effect.scoped(Effect.gen(function*() {
  const { outfile } = yield* bundleWorker
  const server = yield* RedisServer.startFresh()
  const upstash = yield* UpstashServer.start({ redisUrl: server.url, token: UpstashServer.TEST_TOKEN })
  const backends: ReadonlyArray<Backend> = [
    { name: "IoRedis", url: server.url, env: {} },
    {
      name: "Upstash (REST fixture, SSE)",
      url: upstash.url,
      env: { UPSTASH_REDIS_REST_TOKEN: upstash.token }
    }
  ]
  const rows: Array<string> = []
  for (const backend of backends) {
    yield* Console.log(`${backend.name}: ${resigns} resignations…`)
    rows.push(row(backend.name, "graceful resign → next leader", yield* resignGaps(outfile, backend)))
    yield* Console.log(rows[rows.length - 1]!)
    yield* Console.log(`${backend.name}: ${kills} SIGKILLs of the leader…`)
    rows.push(
      row(backend.name, `SIGKILLed leader → next leader (lease ${LEASE} ms)`, yield* killGaps(outfile, backend))
    )
    yield* Console.log(rows[rows.length - 1]!)
  }
  const table = [
    "# Election hand-over times",
    "",
    "`npm run bench:election` (bench/election.ts): two candidate processes on one election, times on the",
    "machine's monotonic clock. Graceful: from the end of the leader's work to the start of the next",
    `leader's (each term works ${HOLD} ms). SIGKILL: from the kill to the start of the next leader's work,`,
    `with a lease of ${LEASE} ms kept every third of it; the kill lands at a random point of the keep-alive`,
    "interval, so the wait is what was left of the lease (at most the lease) plus the waiter's look.",
    "Measured on a shared 2-core machine, beside other work: read the p50 as typical, the p99 as loaded.",
    "",
    "| backend | hand-over | n | p50 ms | p99 ms | max ms |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    ""
  ].join("\n")
  fs.writeFileSync(path.join(import.meta.dirname, "election.md"), table)
  yield* Console.log(`\n${table}`)
}))

program.pipe(Effect.provide(NodeContext.layer), Effect.runPromise).catch((e) => {
  console.error(e)
  process.exit(1)
})
