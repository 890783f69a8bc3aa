/**
 * A measuring process, started by bench/main.ts (pinned to the client CPU where `taskset` exists) and run
 * with plain `node --expose-gc` on the library's build. It serves jobs sent as `JOB <json>` lines on stdin
 * (or runs the one job given as its argument) and answers in lines that start with `@@bench ` (anything
 * else a library prints is ignored):
 *
 * - `loop`: builds `workers` workers (connections, scripts loaded, a warm-up), says `READY`, waits for
 *   `GO`, runs every worker's loop at once, says `DONE <json>` with every section's timestamps, waits for
 *   `CLOSE`, closes them, collects garbage, says `CLOSED`. The parent reads INFO commandstats between
 *   READY and DONE.
 * - `alloc`: bytes allocated per uncontended cycle (v8 GCProfiler: heap growth + what each GC freed).
 * - `longrun`: `withLock({ id, timeout })` called in ONE fiber on the Memory store; time per call by window.
 */
import { Effect } from "effect"
import { Lock } from "effect-lock"
import * as Memory from "effect-lock/Redis/Memory"
import { Redis as IORedis } from "ioredis"
import * as readline from "node:readline"
import * as v8 from "node:v8"
import { maxFiberRefStackDepth } from "../test/utils/fiberRefDepth.js"
import { byId, type Hooks, type Servers, type Worker } from "./contenders.js"

export interface LoopJob {
  readonly kind: "loop"
  readonly contender: string
  readonly servers: Servers
  readonly lockId: string
  /** The counter key the critical section increments; none for uncontended cycles (empty section). */
  readonly counter: string | null
  readonly workers: number
  /** Index of this process's first worker (workers in other processes have the others). */
  readonly firstWorker: number
  readonly count: number
  readonly warmup: number
  readonly deadlineMs: number
}

export interface AllocJob {
  readonly kind: "alloc"
  readonly contender: string
  readonly servers: Servers
  readonly lockId: string
  readonly count: number
  readonly warmup: number
}

export interface LongRunJob {
  readonly kind: "longrun"
  readonly calls: number
  readonly window: number
  readonly deadlineMs: number
}

export type Job = LoopJob | AllocJob | LongRunJob

/** One critical section: times in ms on the system-wide monotonic clock (comparable across processes). */
export interface Section {
  readonly worker: number
  readonly asked: number
  readonly acquired: number
  readonly released: number
}

export interface LoopResult {
  readonly sections: ReadonlyArray<Section>
  readonly gaveUp: number
  /** What went wrong (a worker's loop failed, or the run hung): the row is reported as failed. */
  readonly errors: ReadonlyArray<string>
}

export interface AllocResult {
  readonly cycles: number
  readonly bytesPerCycle: number
  readonly gcs: number
  readonly gcMicrosPerCycle: number
  /** Fibers forked per cycle (Effect libraries; undefined for Promise ones). */
  readonly forksPerCycle?: number
  readonly error?: string
}

export interface LongRunResult {
  readonly calls: number
  readonly finished: boolean
  /** Mean µs per call in each window of `window` calls, in order. */
  readonly windows: ReadonlyArray<number>
  readonly window: number
  readonly heapUsedMiB: number
  readonly deepestFiberRefStack: number
}

/** CLOCK_MONOTONIC in milliseconds: the same clock in every process on the machine. */
export const now = () => {
  const [s, ns] = process.hrtime()
  return s * 1e3 + ns / 1e6
}

const say = (tag: string, payload?: unknown) =>
  process.stdout.write(`@@bench ${tag}${payload === undefined ? "" : ` ${JSON.stringify(payload)}`}\n`)

/** Lines from the parent, one at a time. */
const queue: Array<string> = []
const waiting: Array<(line: string) => void> = []
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const waiter = waiting.shift()
  if (waiter === undefined) queue.push(line)
  else waiter(line)
}).on("close", () => {
  // The parent is gone: so is the reason to run (a one-job process finishes its job first).
  if (process.argv[2] === undefined) process.exit(0)
})
const nextLine = () =>
  queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<string>((resolve) => waiting.push(resolve))
const expect = async (expected: string) => {
  const line = await nextLine()
  if (line.trim() !== expected) throw new Error(`expected ${expected} from the parent, got ${line}`)
}
const gc = () => (globalThis as { gc?: () => void }).gc?.()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const noHooks: Hooks = { asked: () => {}, acquired: () => {}, released: () => {}, gaveUp: () => {} }

const describe = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0]!.slice(0, 200)

/** How long past its time limit a run may take before this process gives up on it (and exits after). */
const GRACE_MS = 15_000
/** How long building and warming up the workers may take. */
const SETUP_MS = 30_000

/** Whether `promise` settled within `ms`. */
const within = async (promise: Promise<unknown>, ms: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  ])
  clearTimeout(timer)
  return settled
}

const loop = async (job: LoopJob) => {
  const errors: Array<string> = []
  const contender = byId(job.contender)
  const team: Array<Worker> = []
  const clients: Array<IORedis> = []
  const setUp = async () => {
    for (let w = 0; w < job.workers; w++) team.push(await contender.makeWorker(job.servers, job.lockId))
    if (job.counter !== null) { for (const _ of team) clients.push(new IORedis(job.servers.redisUrl)) }
    await Promise.all(clients.map((c) => c.ping()))
    // Warm-up on the same lock, one worker after the other (uncontended): connections, scripts, JIT.
    for (const worker of team) await worker.run(job.warmup, noHooks, undefined, () => false)
  }
  let stuck = !(await within(
    setUp().catch((error: unknown) => {
      errors.push(`setting up: ${describe(error)}`)
      team.length = 0
    }),
    SETUP_MS
  ))
  if (stuck) {
    errors.push(`setting up took longer than ${SETUP_MS / 1000} s: given up`)
    team.length = 0
  }
  say("READY")
  await expect("GO")
  const sections: Array<Section> = []
  let gaveUp = 0
  const deadline = now() + job.deadlineMs
  const stop = () => now() > deadline
  const finished = Promise.all(team.map((worker, i) => {
    const w = job.firstWorker + i
    const client = clients[i]
    const counter = job.counter
    const section = client === undefined || counter === null ? undefined : async () => {
      const value = Number(await client.get(counter))
      await sleep(1)
      await client.set(counter, String(value + 1))
    }
    const open = new Map<number, { asked: number; acquired: number }>()
    return worker.run(
      job.count,
      {
        asked: (k) => void open.set(k, { asked: now(), acquired: NaN }),
        acquired: (k) => void (open.get(k)!.acquired = now()),
        released: (k) => {
          const s = open.get(k)!
          open.delete(k)
          sections.push({ worker: w, asked: s.asked, acquired: s.acquired, released: now() })
        },
        gaveUp: () => void gaveUp++
      },
      section,
      stop
    ).catch((error: unknown) => void errors.push(`worker ${w}: ${describe(error)}`))
  }))
  if (!(await within(finished, job.deadlineMs + GRACE_MS))) {
    errors.push(`still running ${GRACE_MS / 1000} s past the time limit: given up`)
    stuck = true
  }
  say("DONE", { sections: [...sections], gaveUp, errors } satisfies LoopResult)
  await expect("CLOSE")
  if (stuck) {
    // Whatever is stuck stays stuck: leave, and the parent starts a fresh process in this one's place.
    say("CLOSED")
    process.exit(0)
  }
  await Promise.all([...team.map((w) => w.close()), ...clients.map((c) => c.quit())]).catch(() => undefined)
  gc()
  say("CLOSED")
}

interface GCStatistics {
  readonly cost: number
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
}

const alloc = (job: AllocJob) =>
  measureAlloc(job).catch((error: unknown) =>
    say(
      "RESULT",
      { cycles: 0, bytesPerCycle: NaN, gcs: 0, gcMicrosPerCycle: NaN, error: describe(error) } satisfies AllocResult
    )
  )

const measureAlloc = async (job: AllocJob) => {
  const worker = await byId(job.contender).makeWorker(job.servers, job.lockId)
  await worker.run(job.warmup, noHooks, undefined, () => false)
  gc() // so that the GCs below free only what these cycles allocated
  const forksBefore = worker.forks?.()
  const profiler = new v8.GCProfiler()
  const before = v8.getHeapStatistics().used_heap_size
  profiler.start()
  await worker.run(job.count, noHooks, undefined, () => false)
  const forksAfter = worker.forks?.()
  const data = profiler.stop() as unknown as { readonly statistics: ReadonlyArray<GCStatistics> }
  const after = v8.getHeapStatistics().used_heap_size
  const freed = data.statistics.reduce(
    (sum, gc) => sum + gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize,
    0
  )
  const cost = data.statistics.reduce((sum, gc) => sum + gc.cost, 0)
  await worker.close()
  say(
    "RESULT",
    {
      cycles: job.count,
      bytesPerCycle: (after - before + freed) / job.count,
      gcs: data.statistics.length,
      gcMicrosPerCycle: cost / job.count,
      ...(forksBefore === undefined || forksAfter === undefined
        ? {}
        : { forksPerCycle: (forksAfter - forksBefore) / job.count })
    } satisfies AllocResult
  )
}

const longRun = async (job: LongRunJob) => {
  const deadline = now() + job.deadlineMs
  const result = await Effect.runPromise(
    Effect.gen(function*() {
      const windows: Array<number> = []
      let calls = 0
      let start = now()
      while (calls < job.calls) {
        yield* Lock.withLock(Effect.void, { id: "long-run", timeout: "5 seconds" })
        calls++
        const t = now()
        if (calls % job.window === 0) {
          windows.push(((t - start) * 1000) / job.window)
          start = t
        }
        if (t > deadline) break
      }
      const deepestFiberRefStack = yield* maxFiberRefStackDepth
      // Still inside the fiber, so whatever it holds on to counts (after a full GC: run with --expose-gc).
      gc()
      const heapUsedMiB = process.memoryUsage().heapUsed / 2 ** 20
      return { calls, windows, deepestFiberRefStack, heapUsedMiB }
    }).pipe(Effect.provide(Memory.layer))
  )
  say("RESULT", { ...result, finished: result.calls >= job.calls, window: job.window } satisfies LongRunResult)
}

const run = (job: Job) => (job.kind === "loop" ? loop(job) : job.kind === "alloc" ? alloc(job) : longRun(job))

/** With a job as argument: run it and exit. Without: serve jobs (`JOB <json>` lines) until `QUIT`. */
const serve = async () => {
  if (process.argv[2] !== undefined) return run(JSON.parse(process.argv[2]) as Job)
  say("IDLE") // every library is loaded
  for (;;) {
    const line = await nextLine()
    if (line.trim() === "QUIT") return
    if (line.startsWith("JOB ")) await run(JSON.parse(line.slice(4)) as Job)
  }
}

serve().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
