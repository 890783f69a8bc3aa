/**
 * `npm run bench`: effect-lock against its peers, side by side on one redis-server started here (and the
 * Upstash REST fixture in front of it), in one process run. Libraries are interleaved round by round and
 * medians are reported; the table is printed and written to bench/results.md (and .json).
 *
 * Scenarios: uncontended acquire+release cycles; W workers contending for one lock around a ~1 ms
 * read-modify-write of a counter (W = 2, 8, 32); and a debounce burst.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Redis as IORedis } from "ioredis"
import * as fs from "node:fs"
import * as os from "node:os"
import * as Debounce from "../src/Debounce.js"
import type { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Upstash from "../src/Redis/Upstash.js"
import * as RedisServer from "../test/utils/RedisServer.js"
import * as UpstashServer from "../test/utils/UpstashServer.js"
import { type Contender, contenders, type Servers } from "./contenders.js"

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CYCLES = Number(process.env.BENCH_CYCLES ?? 400)
const SECTIONS = Number(process.env.BENCH_SECTIONS ?? 96)
const WORKERS = (process.env.BENCH_WORKERS ?? "2,8,32").split(",").map(Number)

const now = () => performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
}
const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** Commands Redis has run (INFO commandstats, which counts commands inside scripts too). */
const commandCount = async (admin: IORedis) =>
  (await admin.info("commandstats"))
    .split("\n")
    .filter((line) => line.startsWith("cmdstat_") && !line.startsWith("cmdstat_info"))
    .reduce((sum, line) => sum + Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), 0)

let keySeq = 0
const freshKey = (label: string) => `bench:${label}:${process.pid}:${keySeq++}`

interface Uncontended {
  readonly cyclesPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly commandsPerCycle: number
}

const uncontended = async (contender: Contender, admin: IORedis): Promise<Uncontended> => {
  const worker = await contender.makeWorker(freshKey("u"))
  for (let i = 0; i < 20; i++) { // warm-up: connections, scripts loaded
    await worker.acquire()
    await worker.release()
  }
  const before = await commandCount(admin)
  const cycles: Array<number> = []
  const start = now()
  for (let i = 0; i < CYCLES; i++) {
    const t = now()
    await worker.acquire()
    await worker.release()
    cycles.push(now() - t)
  }
  const elapsed = now() - start
  const commands = (await commandCount(admin)) - before - 0
  await worker.close()
  return {
    cyclesPerSecond: (CYCLES / elapsed) * 1000,
    p50: percentile(cycles, 50),
    p99: percentile(cycles, 99),
    commandsPerCycle: commands / CYCLES
  }
}

interface Contended {
  readonly seconds: number
  readonly sectionsPerSecond: number
  readonly handoffP50: number
  readonly handoffP99: number
  readonly handoffMax: number
  readonly selfRetake: number
  readonly fairness: number
  readonly commandsPerAcquisition: number
  readonly failed: number
  readonly counterOk: boolean
}

interface Section {
  readonly worker: number
  readonly asked: number
  readonly acquired: number
  readonly released: number
}

const contended = async (contender: Contender, workers: number, admin: IORedis, redisUrl: string): Promise<Contended> => {
  const key = freshKey(`c${workers}`)
  const counter = `${key}:counter`
  const perWorker = Math.max(1, Math.round(SECTIONS / workers))
  const team = await Promise.all(Array.from({ length: workers }, () => contender.makeWorker(key)))
  const clients = team.map(() => new IORedis(redisUrl))
  await Promise.all(clients.map((c) => c.ping()))
  const sections: Array<Section> = []
  let failed = 0
  const before = await commandCount(admin)
  const start = now()
  await Promise.all(team.map(async (worker, w) => {
    const client = clients[w]!
    for (let k = 0; k < perWorker; k++) {
      const asked = now()
      while (!(await worker.acquire())) failed++
      const acquired = now()
      const value = Number(await client.get(counter))
      await sleep(1)
      await client.set(counter, String(value + 1))
      await worker.release()
      sections.push({ worker: w, asked, acquired, released: now() })
    }
  }))
  const elapsed = now() - start
  const commands = (await commandCount(admin)) - before - 2 * workers * perWorker // minus the counter's GET/SET
  const total = Number(await admin.get(counter))
  await Promise.all([...team.map((w) => w.close()), ...clients.map((c) => c.quit())])

  const ordered = [...sections].sort((a, b) => a.acquired - b.acquired)
  const handoffs: Array<number> = []
  let retakes = 0
  for (let i = 1; i < ordered.length; i++) {
    const [prev, next] = [ordered[i - 1]!, ordered[i]!]
    if (prev.worker === next.worker) retakes++
    else handoffs.push(Math.max(0, next.acquired - prev.released))
  }
  // The most acquisitions by others that any waiter sat through while it waited.
  const fairness = Math.max(
    0,
    ...sections.map((s) => sections.filter((o) => o.worker !== s.worker && o.acquired > s.asked && o.acquired < s.acquired).length)
  )
  return {
    seconds: elapsed / 1000,
    sectionsPerSecond: (sections.length / elapsed) * 1000,
    handoffP50: percentile(handoffs, 50),
    handoffP99: percentile(handoffs, 99),
    handoffMax: Math.max(...handoffs),
    selfRetake: retakes / Math.max(1, ordered.length - 1),
    fairness,
    commandsPerAcquisition: commands / sections.length,
    failed,
    counterOk: total === workers * perWorker
  }
}

interface DebounceResult {
  readonly runs: number
  readonly commandsPerCall: number
  readonly lastCallToRun: number
}

class Burst extends Context.Tag("bench/Burst")<Burst, Debounce.Debounce<[worker: number, call: number], void>>() {}

const debounceBurst = async (layer: () => Layer.Layer<Redis, unknown>, admin: IORedis): Promise<DebounceResult> => {
  const id = freshKey("debounce")
  let runs = 0
  let ranAt = 0
  const runtimes = Array.from({ length: 10 }, () =>
    ManagedRuntime.make(
      Debounce.layer(Burst, {
        id,
        wait: 1000,
        callback: (_worker: number, _call: number) =>
          Effect.sync(() => {
            runs++
            ranAt = now()
          })
      }).pipe(Layer.provide(layer()))
    ))
  await Promise.all(runtimes.map((rt) => rt.runPromise(Burst))) // connect first
  const before = await commandCount(admin)
  let lastCall = 0
  await Promise.all(runtimes.flatMap((rt, w) =>
    Array.from({ length: 100 }, (_, n) =>
      rt.runPromise(Effect.flatMap(Burst, (burst) => {
        lastCall = Math.max(lastCall, now())
        return burst.call(w, n)
      })))
  ))
  const commands = (await commandCount(admin)) - before
  await Promise.all(runtimes.map((rt) => rt.dispose()))
  return { runs, commandsPerCall: commands / 1000, lastCallToRun: ranAt - lastCall }
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "–")

const main = Effect.gen(function*() {
  const server = yield* RedisServer.startFresh()
  const rest = yield* UpstashServer.start({ redisUrl: server.url, token: "bench-token" })
  const servers: Servers = { redisUrl: server.url, upstashUrl: rest.url, upstashToken: rest.token }
  const admin = new IORedis(server.url)
  const redisVersion = /redis_version:(\S+)/.exec(yield* Effect.promise(() => admin.info("server")))?.[1] ?? "?"
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, Redis ${redisVersion} on loopback`
  // BENCH_ONLY=floor,effect-lock (substrings of names) runs a subset; the floor always runs, first.
  const only = process.env.BENCH_ONLY?.split(",").filter((x) => x.length > 0)
  const all = contenders(servers)
  const libs = only === undefined ? all : all.filter((c, i) => i <= 1 || only.some((o) => c.name.includes(o)))
  console.log(`effect-lock benchmark — ${machine}`)
  console.log(`${ROUNDS} interleaved rounds; ${CYCLES} uncontended cycles, ${SECTIONS} contended sections per run\n`)

  const run = <A>(label: string, f: (c: Contender) => Promise<A>) =>
    Effect.promise(async () => {
      const results = new Map<string, Array<A>>(libs.map((c) => [c.name, []]))
      for (let round = 1; round <= ROUNDS; round++) {
        for (const contender of libs) {
          if (process.stdout.isTTY) process.stdout.write(`\r${label}: round ${round}/${ROUNDS}, ${contender.name}…`.padEnd(100))
          results.get(contender.name)!.push(await f(contender))
        }
      }
      if (process.stdout.isTTY) process.stdout.write("\r".padEnd(100) + "\r")
      else console.log(`${label}: done`)
      return results
    })

  const unc = yield* run("uncontended", (c) => uncontended(c, admin))
  const con = new Map<number, Map<string, Array<Contended>>>()
  for (const w of WORKERS) con.set(w, yield* run(`contended W=${w}`, (c) => contended(c, w, admin, server.url)))
  const deb = yield* Effect.promise(async () => ({
    ioredis: await debounceBurst(() => IoRedis.layer({ url: server.url }), admin),
    upstash: await debounceBurst(
      () => Upstash.layer({ url: rest.url, token: Redacted.make(rest.token) }),
      admin
    )
  }))
  admin.disconnect()

  // Medians over rounds.
  const med = <A>(rows: ReadonlyArray<A>, f: (a: A) => number) => median(rows.map(f))
  const floorName = libs[0]!.name
  const oursName = libs[1]!.name
  const lines: Array<string> = []
  const out = (line = "") => lines.push(line)
  out(`# effect-lock benchmark`)
  out()
  out(`Machine: ${machine}. Command: \`npm run bench\` (${ROUNDS} interleaved rounds, medians). Date: ${new Date().toISOString().slice(0, 10)}.`)
  out()
  out(`## Uncontended: one client, ${CYCLES} acquire + release cycles`)
  out()
  out(`| library | cycles/s | p50 ms | p99 ms | cycle time × floor | × effect-lock | Redis commands / cycle |`)
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`)
  const uncP50 = (name: string) => med(unc.get(name)!, (r) => r.p50)
  for (const c of libs) {
    const rows = unc.get(c.name)!
    out(`| ${c.name} | ${fmt(med(rows, (r) => r.cyclesPerSecond), 0)} | ${fmt(med(rows, (r) => r.p50), 3)} | ${fmt(med(rows, (r) => r.p99), 3)} | ${fmt(uncP50(c.name) / uncP50(floorName))} | ${fmt(uncP50(c.name) / uncP50(oursName))} | ${fmt(med(rows, (r) => r.commandsPerCycle), 1)} |`)
  }
  for (const w of WORKERS) {
    const table = con.get(w)!
    const perWorker = Math.max(1, Math.round(SECTIONS / w))
    const sps = (name: string) => med(table.get(name)!, (r) => r.sectionsPerSecond)
    out()
    out(`## Contended: W = ${w} workers × ${perWorker} critical sections (~1 ms read-modify-write of a counter)`)
    out()
    out(`| library | sections/s | × floor | × effect-lock | hand-off p50 ms | p99 ms | max ms | releaser re-takes | most others waited through | commands / acquisition | failed acquisitions | counter |`)
    out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`)
    for (const c of libs) {
      const rows = table.get(c.name)!
      out(`| ${c.name} | ${fmt(sps(c.name), 0)} | ${fmt(sps(c.name) / sps(floorName))} | ${fmt(sps(c.name) / sps(oursName))} | ${fmt(med(rows, (r) => r.handoffP50), 3)} | ${fmt(med(rows, (r) => r.handoffP99), 3)} | ${fmt(med(rows, (r) => r.handoffMax), 1)} | ${fmt(100 * med(rows, (r) => r.selfRetake), 0)}% | ${fmt(med(rows, (r) => r.fairness), 0)} | ${fmt(med(rows, (r) => r.commandsPerAcquisition), 1)} | ${fmt(med(rows, (r) => r.failed), 0)} | ${rows.every((r) => r.counterOk) ? "correct" : "**LOST UPDATES**"} |`)
    }
  }
  out()
  out(`## Debounce: 1000 calls from 10 workers (each its own client) within wait = 1 s`)
  out()
  out(`| library | runs (must be 1) | Redis commands / call | last call → run ms |`)
  out(`| --- | ---: | ---: | ---: |`)
  out(`| effect-lock (ioredis) | ${deb.ioredis.runs} | ${fmt(deb.ioredis.commandsPerCall, 1)} | ${fmt(deb.ioredis.lastCallToRun, 0)} |`)
  out(`| effect-lock (Upstash REST) | ${deb.upstash.runs} | ${fmt(deb.upstash.commandsPerCall, 1)} | ${fmt(deb.upstash.lastCallToRun, 0)} |`)
  out()
  out(`@upstash/lock 0.2.1 documents a Debounce but does not export it, so it has no row.`)
  out()
  out(`## Settings`)
  out()
  out(`| library | waiting settings |`)
  out(`| --- | --- |`)
  for (const c of libs) out(`| ${c.name} | ${c.settings} |`)
  out()
  out(`Hand-off: from a release returning to a *different* worker's acquire returning (0 when the waiter had`)
  out(`the lock before the releaser heard back). "Most others waited through": the largest number of`)
  out(`acquisitions by other workers that happened while one waiter waited, counted from its call to acquire`)
  out(`(FIFO: W − 1, plus whatever happens before its first try reaches Redis — a few on the slower REST path).`)

  const markdown = lines.join("\n") + "\n"
  console.log(markdown)
  fs.writeFileSync("bench/results.md", markdown)
  fs.writeFileSync(
    "bench/results.json",
    JSON.stringify({ machine, rounds: ROUNDS, uncontended: Object.fromEntries(unc), contended: Object.fromEntries([...con].map(([w, m]) => [w, Object.fromEntries(m)])), debounce: deb }, null, 2)
  )
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
