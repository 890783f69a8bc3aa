/**
 * The multi-process mutual-exclusion checker: P worker processes × K critical sections against one
 * redis-server, then three checks on what they did; beside it, the read-write lock's checker (readers and
 * writers under SIGSTOP and SIGKILL faults) and the two-process `withLocks` deadlock check. Used by the
 * test suite (small defaults) and by `npm run check:safety` (larger ones).
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { Effect, Random, Stream } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"

export interface Section {
  readonly process: number
  readonly fence: number
  /** Redis TIME, microseconds. */
  readonly start: number
  readonly end: number
}

export interface Report {
  readonly processes: number
  readonly sectionsPerProcess: number
  readonly sections: ReadonlyArray<Section>
  readonly counter: number
  /** Pairs of sections (in start order) where the next began before the previous ended. */
  readonly overlaps: ReadonlyArray<readonly [Section, Section]>
  /** Pairs (in start order) whose fences do not strictly increase. */
  readonly fenceInversions: ReadonlyArray<readonly [Section, Section]>
  readonly exitCodes: ReadonlyArray<number>
}

/**
 * A plain client for a checker URL: `redis://…` is one server; `redis+cluster://host:port,host:port,…`
 * is a Redis Cluster given by its seed nodes.
 */
export const clusterNodes = (url: string): ReadonlyArray<string> | undefined =>
  url.startsWith("redis+cluster://") ? url.slice("redis+cluster://".length).split(",") : undefined

export const plainClient = (url: string): IORedis | Cluster => {
  const nodes = clusterNodes(url)
  return nodes === undefined
    ? new IORedis(url)
    : new Cluster(nodes.map((node) => ({ host: node.split(":")[0]!, port: Number(node.split(":")[1]) })))
}

/** Spawns one worker process and collects its JSON lines. */
export const spawnWorker = (args: ReadonlyArray<string>) =>
  Command.make(process.execPath, "--import", "tsx", "test/safety/worker.ts", ...args).pipe(Command.start)

export const lines = (stream: Stream.Stream<Uint8Array, unknown>) => stream.pipe(Stream.decodeText(), Stream.splitLines)

export const run = (options: {
  readonly redisUrl: string
  readonly processes: number
  readonly sections: number
  readonly lease?: number
}): Effect.Effect<Report, unknown, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const tag = `safety-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const counterKey = `${tag}:counter`
    const runOne = (n: number) =>
      Effect.scoped(Effect.gen(function*() {
        const proc = yield* spawnWorker([
          "sections",
          options.redisUrl,
          tag,
          counterKey,
          String(options.sections),
          String(options.lease ?? 2000)
        ])
        const out = yield* lines(proc.stdout).pipe(
          Stream.filter((line) => line.startsWith("{")),
          Stream.map((line) => ({ process: n, ...(JSON.parse(line) as Omit<Section, "process">) })),
          Stream.runCollect
        )
        const code = yield* proc.exitCode
        return { sections: Array.from(out), code: Number(code) }
      }))
    const results = yield* Effect.all(Array.from({ length: options.processes }, (_, n) => runOne(n)), {
      concurrency: "unbounded"
    })
    const client = plainClient(options.redisUrl)
    const counter = Number(yield* Effect.promise(() => client.get(counterKey)))
    yield* Effect.promise(() => client.del(counterKey).then(() => client.quit()))

    const sections = results.flatMap((r) => r.sections).sort((a, b) => a.start - b.start)
    const pairs = sections.slice(1).map((next, i) => [sections[i]!, next] as const)
    return {
      processes: options.processes,
      sectionsPerProcess: options.sections,
      sections,
      counter,
      overlaps: pairs.filter(([a, b]) => b.start < a.end),
      fenceInversions: pairs.filter(([a, b]) => b.fence <= a.fence),
      exitCodes: results.map((r) => r.code)
    }
  })

// ------------------------------------------------------------------------------------ read-write lock

/** One read or write section of the read-write checker, as a worker printed it (Redis TIME µs). */
export interface RwSection {
  readonly process: number
  readonly m: "r" | "w"
  readonly fence: number
  readonly arrive: number
  readonly start: number
  readonly end: number
  /** Whether the holder still knew its lease held once `end` was read. */
  readonly valid: boolean
}

export interface RwReport {
  readonly processes: number
  readonly sections: ReadonlyArray<RwSection>
  readonly reads: number
  readonly writes: number
  /** Sections whose lease was lost by the time they ended (a SIGSTOPped holder's), left out of the checks. */
  readonly invalid: number
  /** Valid pairs where a write overlaps any other section. */
  readonly writerBeside: ReadonlyArray<readonly [RwSection, RwSection]>
  /** Valid pairs of reads (of different fibers) inside at the same time. */
  readonly readOverlaps: number
  /** Valid writes (in start order) whose fences do not strictly increase. */
  readonly fenceInversions: number
  /** Valid reads that carry a fence older than a write that ended before they started. */
  readonly staleReads: number
  /**
   * Sections overtaken by a later arrival they could not share with (arrived `slack` µs or more after it,
   * started before it), among sections whose process was never stopped (SIGSTOP, or an event-loop stall
   * it reported) while they waited.
   */
  readonly overtaken: number
  /** The most such overtakers of one section. */
  readonly mostOvertakers: number
  /** How many sections the fairness check looked at (the others' processes were stopped while they waited). */
  readonly fairnessChecked: number
  readonly sigstops: number
  /** When each stopped process was stopped and continued (wall-clock µs, the clock Redis TIME reads). */
  readonly stopped: ReadonlyArray<{ readonly process: number; readonly from: number; readonly to: number }>
  readonly sigkills: number
  /** Event-loop stalls of 150 ms or more the workers reported (their waits are left out of the fairness check). */
  readonly stalls: number
  readonly exitCodes: ReadonlyArray<number | null>
}

/** The checks of {@link runReadWrite}, on what the workers printed and when processes were stopped. */
export const analyseReadWrite = (
  all: ReadonlyArray<RwSection>,
  stopped: ReadonlyArray<{ readonly process: number; readonly from: number; readonly to: number }>,
  slack: number
) => {
  const valid = all.filter((s) => s.valid).sort((a, b) => a.start - b.start)
  const overlap = (a: RwSection, b: RwSection) => a.start < b.end && b.start < a.end
  const writerBeside: Array<readonly [RwSection, RwSection]> = []
  let readOverlaps = 0
  for (let i = 0; i < valid.length; i++) {
    for (let j = i + 1; j < valid.length && valid[j]!.start < valid[i]!.end; j++) {
      const [a, b] = [valid[i]!, valid[j]!]
      if (!overlap(a, b)) continue
      if (a.m === "w" || b.m === "w") writerBeside.push([a, b])
      else readOverlaps++
    }
  }
  const writes = valid.filter((s) => s.m === "w")
  const fenceInversions = writes.slice(1).filter((w, i) => w.fence <= writes[i]!.fence).length
  const staleReads = valid.filter((r) => r.m === "r" && writes.some((w) => w.end < r.start && w.fence > r.fence))
    .length
  const wasStopped = (s: RwSection) =>
    stopped.some((p) => p.process === s.process && p.from < s.start && p.to > s.arrive)
  let overtaken = 0
  let mostOvertakers = 0
  let fairnessChecked = 0
  for (const x of all) {
    if (wasStopped(x)) continue
    fairnessChecked++
    const overtakers = all.filter((y) =>
      (x.m === "w" || y.m === "w") && y.arrive >= x.arrive + slack && y.start < x.start
    ).length
    if (overtakers > 0) overtaken++
    mostOvertakers = Math.max(mostOvertakers, overtakers)
  }
  return {
    reads: all.filter((s) => s.m === "r").length,
    writes: all.filter((s) => s.m === "w").length,
    invalid: all.length - valid.length,
    writerBeside,
    readOverlaps,
    fenceInversions,
    staleReads,
    overtaken,
    mostOvertakers,
    fairnessChecked
  }
}

const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)

/**
 * The read-write checker: `processes` worker processes (worker.ts `rw`), `fibers` fibers each, `sections`
 * reads or writes per fiber on one id; meanwhile, every `faultEvery` ms one random worker is SIGSTOPped
 * for 0.2–2.5 s (often longer than its lease) and continued, and `kills` times one is SIGKILLed and
 * replaced. Then the checks of {@link analyseReadWrite}.
 */
export const runReadWrite = (options: {
  readonly redisUrl: string
  readonly processes: number
  readonly fibers: number
  readonly sections: number
  readonly lease?: number
  readonly writeShare?: number
  readonly faultEvery?: number
  readonly kills?: number
  /** Arrival times are read before the first try reaches Redis: a later arrival by less counts as a tie. */
  readonly slack?: number
}): Effect.Effect<RwReport> =>
  Effect.gen(function*() {
    const id = `rw-safety-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const lease = options.lease ?? 1500
    const sections: Array<RwSection> = []
    const stopped: Array<{ process: number; from: number; to: number }> = []
    const stalls: Array<{ process: number; from: number; to: number }> = []
    const exits: Array<Promise<number | null>> = []
    const children: Array<{ readonly n: number; readonly child: ChildProcess; done: boolean }> = []
    const spawnOne = (count: number) => {
      const n = children.length
      const child = spawn(process.execPath, [
        "--import",
        "tsx",
        "test/safety/worker.ts",
        "rw",
        options.redisUrl,
        id,
        String(options.fibers),
        String(count),
        String(lease),
        String(options.writeShare ?? 0.3)
      ], { stdio: ["ignore", "pipe", "inherit"] })
      const entry = { n, child, done: false }
      children.push(entry)
      readline.createInterface({ input: child.stdout! }).on("line", (line) => {
        if (!line.startsWith("{")) return
        const parsed = JSON.parse(line) as Omit<RwSection, "process"> | { readonly stall: readonly [number, number] }
        if ("stall" in parsed) stalls.push({ process: n, from: parsed.stall[0], to: parsed.stall[1] })
        else sections.push({ process: n, ...parsed })
      })
      exits.push(
        new Promise((resolve) =>
          child.on("exit", (code) => {
            entry.done = true
            resolve(code)
          })
        )
      )
    }
    for (let i = 0; i < options.processes; i++) spawnOne(options.sections)
    let sigstops = 0
    let sigkills = 0
    const running = () => children.filter((c) => !c.done)
    const faultEvery = options.faultEvery ?? 1500
    // Faults start once every worker has printed something (they are all up and contending).
    yield* Effect.promise(async () => {
      while (new Set(sections.map((s) => s.process)).size < options.processes && running().length > 0) {
        await new Promise((r) => setTimeout(r, 50))
      }
    })
    // The first fault comes at once, and is a SIGSTOP: a short run on a fast machine gets one too.
    let first = true
    while (running().length > 1) {
      if (!first) yield* Effect.sleep(faultEvery)
      first = false
      const alive = running()
      if (alive.length <= 1) break
      const victim = alive[yield* Random.nextIntBetween(0, alive.length)]!
      if (sigstops > 0 && sigkills < (options.kills ?? 1) && (yield* Random.next) < 0.3) {
        victim.child.kill("SIGKILL")
        sigkills++
        spawnOne(Math.max(1, Math.floor(options.sections / 2)))
        continue
      }
      const from = nowMicros()
      victim.child.kill("SIGSTOP")
      sigstops++
      yield* Effect.sleep(yield* Random.nextIntBetween(200, 2500))
      victim.child.kill("SIGCONT")
      stopped.push({ process: victim.n, from, to: nowMicros() })
    }
    const exitCodes = yield* Effect.promise(() => Promise.all(exits))
    return {
      processes: children.length,
      sections,
      stopped,
      ...analyseReadWrite(sections, [...stopped, ...stalls], options.slack ?? 150_000),
      stalls: stalls.length,
      sigstops,
      sigkills,
      exitCodes
    }
  })

/** Two processes take `[a, b]` and `[b, a]` with `Lock.withLocks`, `count` times each: whether both finished. */
export const runPairs = (options: {
  readonly redisUrl: string
  readonly ids: readonly [string, string]
  readonly count: number
}): Effect.Effect<
  ReadonlyArray<{ readonly done: number; readonly code: number }>,
  unknown,
  CommandExecutor.CommandExecutor
> =>
  Effect.all(
    [options.ids, [options.ids[1], options.ids[0]] as const].map(([a, b]) =>
      Effect.scoped(Effect.gen(function*() {
        const proc = yield* spawnWorker(["pairs", options.redisUrl, a, b, String(options.count)])
        const out = yield* lines(proc.stdout).pipe(
          Stream.filter((line) => line.startsWith("{")),
          Stream.map((line) => JSON.parse(line) as { readonly done: number }),
          Stream.runCollect
        )
        return { done: Array.from(out)[0]?.done ?? 0, code: Number(yield* proc.exitCode) }
      }))
    ),
    { concurrency: "unbounded" }
  )
