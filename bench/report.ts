/** Turns the numbers of a bench run into bench/results.md and the README's table. */
import * as fs from "node:fs"
import type { Backend } from "./contenders.js"
import type { AllocResult, LongRunResult } from "./measure.js"
import { type ContendedRun, median, type PerNode, type SemaphoreRun, type UncontendedRun } from "./stats.js"

export interface Bundle {
  readonly label: string
  readonly minified: number
  readonly gzip: number
}

export type Mode = "one process" | "one process per worker"

export interface Results {
  readonly quick: boolean
  readonly date: string
  readonly machine: {
    readonly cpu: string
    readonly cores: number
    readonly memoryGiB: number
    readonly node: string
    readonly redis: string
    readonly pinning: string
  }
  readonly config: {
    readonly rounds: number
    readonly cycles: number
    readonly workers: number
    readonly sections: number
    readonly deadlineMs: number
    readonly allocCycles: number
    readonly longCalls: number
    readonly longWindow: number
  }
  readonly contenders: ReadonlyArray<
    { readonly id: string; readonly name: string; readonly backend: Backend; readonly settings: string }
  >
  /** One record per round: contender id → its run. */
  readonly uncontended: Array<Record<string, UncontendedRun>>
  readonly contended: Array<
    { readonly round: number; readonly mode: Mode; readonly runs: Record<string, ContendedRun> }
  >
  readonly alloc: Record<string, AllocResult>
  /** The semaphore rows (absent in results of older runs). */
  semaphore?: {
    readonly permits: number
    readonly workers: number
    readonly processes: number
    readonly contenders: ReadonlyArray<{ readonly id: string; readonly name: string; readonly settings: string }>
    readonly rounds: Array<{
      readonly round: number
      readonly uncontended: Record<string, UncontendedRun>
      readonly contended: Record<string, SemaphoreRun>
    }>
  }
  longRun: LongRunResult | undefined
  bundles: ReadonlyArray<Bundle>
  seconds: number
}

const FLOOR = "floor"
const UPSTASH_LOCK = "upstash-lock"

const fmt = (n: number | undefined, digits = 2) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : "–")
/** Commands per node of a cluster run: masters, then replicas, busiest first. */
const nodes = (p: PerNode | undefined) =>
  p === undefined
    ? "–"
    : `${p.masters.map((n) => fmt(n, 1)).join(" / ")} (masters); ${
      p.replicas.map((n) => fmt(n, 1)).join(" / ")
    } (replicas)`

/** The rows of one backend's tables: on REST and on the cluster, the single-node floor (and Lock.acquire) beside them. */
const rowsOf = (results: Results, backend: Backend) =>
  results.contenders.filter((c) =>
    c.backend === backend ||
    (backend !== "tcp" && c.id === FLOOR) ||
    (backend === "cluster" && c.id === "el-acquire")
  )

const TITLES: Record<Backend, string> = {
  tcp: "redis-server over TCP",
  rest: "Upstash REST fixture",
  cluster: "Redis Cluster, 3 masters + 3 replicas; the single-node floor and Lock.acquire beside it"
}

const kb = (bytes: number | undefined) => (bytes === undefined ? "–" : `${(bytes / 1024).toFixed(1)} KB`)

/** Medians over rounds, and ratios taken within each round (the headline is their median). */
const views = (results: Results) => {
  const unc = (id: string, f: (r: UncontendedRun) => number) =>
    median(results.uncontended.map((round) => (round[id] === undefined ? NaN : f(round[id]))))
  const uncRatios = (id: string, base: string) =>
    results.uncontended.map((round) => (round[id] && round[base] ? round[id].p50 / round[base].p50 : NaN))
  const conRounds = (mode: Mode) => results.contended.filter((c) => c.mode === mode)
  const con = (mode: Mode, id: string, f: (r: ContendedRun) => number) =>
    median(conRounds(mode).map((c) => (c.runs[id] === undefined ? NaN : f(c.runs[id]))))
  const conRatios = (mode: Mode, id: string, base: string) =>
    conRounds(mode).map((c) =>
      c.runs[id] && c.runs[base] ? c.runs[id].sectionsPerSecond / c.runs[base].sectionsPerSecond : NaN
    )
  const conAll = (mode: Mode, id: string) => conRounds(mode).flatMap((c) => (c.runs[id] ? [c.runs[id]] : []))
  return { unc, uncRatios, con, conRatios, conAll }
}

interface Target {
  readonly what: string
  readonly target: string
  readonly measured: string
  readonly met: boolean | undefined
}

const targets = (results: Results): ReadonlyArray<Target> => {
  const { con, conAll, conRatios, unc, uncRatios } = views(results)
  const W = results.config.workers
  const both = (f: (mode: Mode) => number, digits = 2, unit = "") =>
    `${fmt(f("one process"), digits)}${unit} (per-worker processes: ${fmt(f("one process per worker"), digits)}${unit})`
  const check = (value: number, ok: (v: number) => boolean) => (Number.isFinite(value) ? ok(value) : undefined)
  const rows: Array<Target> = []
  const add = (what: string, target: string, value: number, ok: (v: number) => boolean, measured: string) =>
    rows.push({ what, target, measured, met: check(value, ok) })

  for (const [id, label] of [["el-acquire", "Lock.acquire + release"], ["el-withlock", "withLock"]] as const) {
    const ratio = median(uncRatios(id, FLOOR))
    add(`uncontended ${label}, × floor (median of per-round ratios)`, "≤ 1.5", ratio, (v) => v <= 1.5, fmt(ratio))
    const p99 = unc(id, (r) => r.p99)
    add(`uncontended ${label}, p99`, "≤ 1.5 ms", p99, (v) => v <= 1.5, `${fmt(p99, 3)} ms`)
  }
  // Against Effect's own floors, measured in the same run (issue 20 §1).
  const RESOURCE = "effect-resource-floor"
  const withLock = median(uncRatios("el-withlock", FLOOR))
  add("uncontended withLock, × raw floor (no Scope made for it)", "≤ 1.35", withLock, (v) => v <= 1.35, fmt(withLock))
  const acquire = median(uncRatios("el-acquire", RESOURCE))
  add("uncontended Lock.acquire, × Effect resource floor", "≤ 1.1", acquire, (v) => v <= 1.1, fmt(acquire))
  const p99s = unc("el-acquire", (r) => r.p99) / unc(RESOURCE, (r) => r.p99)
  add("uncontended Lock.acquire p99 ÷ Effect resource floor's p99", "≤ 1.5", p99s, (v) => v <= 1.5, fmt(p99s))
  const allocs = (results.alloc["el-acquire"]?.bytesPerCycle ?? NaN) / (results.alloc[RESOURCE]?.bytesPerCycle ?? NaN)
  add("uncontended Lock.acquire allocation ÷ Effect resource floor's", "≤ 1.5", allocs, (v) => v <= 1.5, fmt(allocs))
  const opened = Math.max(
    ...results.uncontended.flatMap((round) =>
      [round["el-acquire"], round["el-withlock"]].flatMap((r) => (r ? [r.connections] : []))
    )
  )
  add(
    `uncontended Lock.acquire and withLock: connections opened during the cycles`,
    "0 (no new connection)",
    opened,
    (v) => v === 0,
    Number.isFinite(opened) ? String(opened) : "–"
  )
  const forks = results.alloc["el-acquire"]?.forksPerCycle ?? NaN
  add(
    `uncontended Lock.acquire: fibers forked per cycle`,
    "0 (≤ 0.01: none until contended)",
    forks,
    (v) => v <= 0.01,
    fmt(forks)
  )
  const parity = median(uncRatios("el-parity", FLOOR))
  add("uncontended parity handle `Lock.make().acquire/release`, × floor", "≤ 1.3", parity, (v) => v <= 1.3, fmt(parity))

  const id = "el-acquire"
  const one = "one process" as const
  const p50 = con(one, id, (r) => r.handoffP50)
  add(
    `contended W = ${W}: hand-off p50`,
    "≤ 0.5 ms",
    p50,
    (v) => v <= 0.5,
    both((m) => con(m, id, (r) => r.handoffP50), 3, " ms")
  )
  const p99 = con(one, id, (r) => r.handoffP99)
  add(
    `contended W = ${W}: hand-off p99`,
    "≤ 3 ms",
    p99,
    (v) => v <= 3,
    both((m) => con(m, id, (r) => r.handoffP99), 3, " ms")
  )
  const sps = median(conRatios(one, id, FLOOR))
  add(
    `contended W = ${W}: sections/s × floor`,
    "≥ 0.75",
    sps,
    (v) => v >= 0.75,
    both((m) => median(conRatios(m, id, FLOOR)))
  )
  const fifo = Math.max(...conAll(one, id).map((r) => r.mostWaitedThrough))
  add(
    `contended W = ${W}: most acquisitions any waiter sat through (FIFO)`,
    `≤ W − 1 = ${W - 1}`,
    fifo,
    (v) => v <= W - 1,
    both((m) => Math.max(...conAll(m, id).map((r) => r.mostWaitedThrough)), 0)
  )
  const retakes = Math.max(...conAll(one, id).map((r) => r.retakes))
  add(
    `contended W = ${W}: releaser re-takes (worst round)`,
    "0%",
    retakes,
    (v) => v === 0,
    both((m) => 100 * Math.max(...conAll(m, id).map((r) => r.retakes)), 0, "%")
  )
  const perCycle = unc(id, (r) => r.commandsPerCycle)
  const commands = con(one, id, (r) => r.commandsPerAcquisition) / perCycle
  add(
    `contended W = ${W}: Redis commands per acquisition ÷ uncontended per cycle`,
    "≤ 2",
    commands,
    (v) => v <= 2,
    both((m) => con(m, id, (r) => r.commandsPerAcquisition) / perCycle)
  )
  const counted = conAll(one, id).concat(conAll("one process per worker", id))
  rows.push({
    what: `contended W = ${W}: counter correct in every run`,
    target: "no lost update",
    measured: counted.length === 0 ? "–" : counted.every((r) => r.counterOk) ? "correct" : "**LOST UPDATES**",
    met: counted.length === 0 ? undefined : counted.every((r) => r.counterOk)
  })

  const up = "el-upstash"
  const upUnc = median(uncRatios(up, UPSTASH_LOCK))
  add(
    "Upstash (REST fixture), default options: uncontended cycle × @upstash/lock's",
    "≤ 1.1",
    upUnc,
    (v) => v <= 1.1,
    fmt(upUnc)
  )
  const upCon = median(conRatios(one, up, UPSTASH_LOCK))
  add(
    `Upstash: contended W = ${W} sections/s × @upstash/lock's`,
    "≥ 1.5",
    upCon,
    (v) => v >= 1.5,
    both((m) => median(conRatios(m, up, UPSTASH_LOCK)))
  )
  const upHand = con(one, up, (r) => r.handoffP50)
  add("Upstash: hand-off p50", "≤ 5 ms", upHand, (v) => v <= 5, both((m) => con(m, up, (r) => r.handoffP50), 2, " ms"))
  const upFifo = Math.max(...conAll(one, up).map((r) => r.mostWaitedThrough))
  add(
    "Upstash: most acquisitions any waiter sat through (FIFO)",
    `≤ W − 1 = ${W - 1}`,
    upFifo,
    (v) => v <= W - 1,
    both((m) => Math.max(...conAll(m, up).map((r) => r.mostWaitedThrough)), 0)
  )

  const long = results.longRun
  if (long !== undefined) {
    const growth = long.finished ? long.windows[long.windows.length - 1]! / long.windows[0]! : NaN
    rows.push({
      what: `long run: ${long.window} last ÷ first calls of ${results.config.longCalls} \`withLock\` in one fiber`,
      target: "≤ 1.25, all calls done (no slowdown over time)",
      measured: long.finished ? fmt(growth) : `did not finish: ${long.calls} calls before the time limit`,
      met: long.finished ? growth <= 1.25 : false
    })
    rows.push({
      what: `long run: deepest FiberRef stack of that fiber after ${long.calls} calls`,
      target: "bounded (≤ 16, whatever the number of calls)",
      measured: String(long.deepestFiberRefStack),
      met: long.deepestFiberRefStack <= 16
    })
  }
  return rows
}

const metText = (met: boolean | undefined) => (met === undefined ? "not measured" : met ? "met" : "**not met**")

const targetTable = (results: Results) => [
  `| target | wanted | measured | |`,
  `| --- | --- | --- | --- |`,
  ...targets(results).map((t) => `| ${t.what} | ${t.target} | ${t.measured} | ${metText(t.met)} |`)
]

const header = (results: Results) => {
  const m = results.machine
  const c = results.config
  return [
    `Command: \`npm run bench${results.quick ? " -- --quick" : ""}\` (${results.seconds} s). Date: ${results.date}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; Redis ${m.redis} on loopback.`,
    `Pinning: ${m.pinning}.`,
    `Library: effect-lock's build (\`dist/\`) under plain \`node\`, through its public entry points only.`,
    `Sizes: ${c.rounds} interleaved round(s); ${c.cycles} uncontended cycles per library per round; contended`,
    `W = ${c.workers} workers × K = ${c.sections} sections of ~1 ms (time limit ${c.deadlineMs / 1000} s per run);`,
    `allocation over ${c.allocCycles} cycles; long run ${c.longCalls} calls.`
  ]
}

export const render = (results: Results): string => {
  const { con, conRatios, unc, uncRatios } = views(results)
  const lines: Array<string> = []
  const out = (...more: ReadonlyArray<string>) => lines.push(...more)
  const W = results.config.workers

  out(`# effect-lock benchmark`, ``)
  if (results.quick) {
    out(`> **Quick smoke run** (\`--quick\`): every scenario tiny, one round. It shows that everything runs, not how`)
    out(`> fast anything is; compare only the figures of a full \`npm run bench\` on a quiet machine.`, ``)
  }
  out(...header(results), ``)
  out(`## Targets`, ``, ...targetTable(results), ``)
  const failures = [
    ...results.uncontended.flatMap((round, i) =>
      Object.entries(round).flatMap(([id, r]) => r.errors.map((e) => `round ${i + 1}, uncontended, \`${id}\`: ${e}`))
    ),
    ...results.contended.flatMap((c) =>
      Object.entries(c.runs).flatMap(([id, r]) =>
        r.errors.map((e) => `round ${c.round}, contended (${c.mode}), \`${id}\`: ${e}`)
      )
    ),
    ...Object.entries(results.alloc).flatMap((
      [id, a]
    ) => (a.error === undefined ? [] : [`allocation, \`${id}\`: ${a.error}`]))
  ]
  if (failures.length > 0) out(`## Failures`, ``, ...failures.map((f) => `- ${f}`), ``)

  const backends = (["tcp", "rest", "cluster"] as const).filter((b) => results.contenders.some((c) => c.backend === b))
  for (const backend of backends) {
    const rows = rowsOf(results, backend)
    const cluster = backend === "cluster"
    out(`## Uncontended: one worker, acquire + release (${TITLES[backend]})`, ``)
    out(
      `| library | p50 ms | p99 ms | × floor (per-round) | ${
        backend === "rest" ? "× @upstash/lock | " : ""
      }Redis commands / cycle | ${
        cluster ? "per node | " : ""
      }connections opened | allocated / cycle | GC µs / cycle | fibers forked / cycle |`
    )
    out(
      `| --- | ---: | ---: | --- | ${backend === "rest" ? "---: | " : ""}---: | ${
        cluster ? "--- | " : ""
      }---: | ---: | ---: | ---: |`
    )
    for (const c of rows) {
      const ratios = uncRatios(c.id, FLOOR)
      const a = results.alloc[c.id]
      const last = results.uncontended.at(-1)?.[c.id]
      out(
        `| ${c.name} | ${fmt(unc(c.id, (r) => r.p50), 3)} | ${fmt(unc(c.id, (r) => r.p99), 3)} | **${
          fmt(median(ratios))
        }** (${ratios.map((r) => fmt(r)).join(", ")}) | ${
          backend === "rest" ? `${fmt(median(uncRatios(c.id, UPSTASH_LOCK)))} | ` : ""
        }${fmt(unc(c.id, (r) => r.commandsPerCycle), 1)} | ${cluster ? `${nodes(last?.perNode)} | ` : ""}${
          Math.max(...results.uncontended.map((round) => round[c.id]?.connections ?? NaN))
        } | ${kb(a?.bytesPerCycle)} | ${fmt(a?.gcMicrosPerCycle, 1)} | ${
          a?.forksPerCycle === undefined ? "–" : fmt(a.forksPerCycle)
        } |`
      )
    }
    out(``)
  }

  for (const mode of ["one process", "one process per worker"] as const) {
    for (const backend of backends) {
      const rows = rowsOf(results, backend)
      const cluster = backend === "cluster"
      const runs = results.contended.filter((c) => c.mode === mode)
      out(
        `## Contended: W = ${W} workers (${mode}) × K = ${results.config.sections} sections, ${
          backend === "tcp" ? "TCP" : TITLES[backend]
        }`,
        ``
      )
      out(
        `| library | sections/s | × floor (per-round) | ${
          backend === "rest" ? "× @upstash/lock | " : ""
        }hand-off p50 ms | p99 ms | most waited through | releaser re-takes | commands / acquisition | ${
          cluster ? "per node | " : ""
        }gave up | counter |`
      )
      out(
        `| --- | ---: | --- | ${backend === "rest" ? "---: | " : ""}---: | ---: | ---: | ---: | ---: | ${
          cluster ? "--- | " : ""
        }---: | --- |`
      )
      for (const c of rows) {
        const all = runs.flatMap((r) => (r.runs[c.id] ? [r.runs[c.id]!] : []))
        const ratios = conRatios(mode, c.id, FLOOR)
        const cut = all.filter((r) => r.cut).length
        const counter = all.length === 0
          ? "–"
          : all.some((r) => r.errors.length > 0)
          ? "**failed** (see Failures)"
          : all.every((r) => r.counterOk)
          ? "correct"
          : "**LOST UPDATES**"
        out(
          `| ${c.name} | ${fmt(con(mode, c.id, (r) => r.sectionsPerSecond), 0)}${
            cut > 0 ? ` (time limit hit in ${cut} round(s))` : ""
          } | **${fmt(median(ratios))}** (${ratios.map((r) => fmt(r)).join(", ")}) | ${
            backend === "rest" ? `${fmt(median(conRatios(mode, c.id, UPSTASH_LOCK)))} | ` : ""
          }${fmt(con(mode, c.id, (r) => r.handoffP50), 3)} | ${fmt(con(mode, c.id, (r) => r.handoffP99), 3)} | ${
            all.length === 0 ? "–" : Math.max(...all.map((r) => r.mostWaitedThrough))
          } | ${fmt(100 * con(mode, c.id, (r) => r.retakes), 0)}% | ${
            fmt(con(mode, c.id, (r) => r.commandsPerAcquisition), 1)
          } | ${cluster ? `${nodes(all.at(-1)?.perNode)} | ` : ""}${
            fmt(con(mode, c.id, (r) => r.gaveUp), 0)
          } | ${counter} |`
        )
      }
      out(``)
    }
  }

  const sem = results.semaphore
  if (sem !== undefined && sem.rounds.length > 0) {
    const semRounds = sem.rounds
    const mid = <A>(pick: (round: (typeof semRounds)[number]) => A | undefined, f: (a: A) => number) =>
      median(semRounds.flatMap((r) => {
        const a = pick(r)
        return a === undefined ? [] : [f(a)]
      }))
    const lockCycle = median(results.uncontended.flatMap((r) => (r["el-acquire"] ? [r["el-acquire"].p50] : [])))
    out(
      `## Semaphore: permits = ${sem.permits}, W = ${sem.workers} workers (${sem.processes} processes) × K = ${results.config.sections} sections of 1 ms, TCP`,
      ``
    )
    out(
      `| library | sections/s | hand-off p50 ms | p99 ms | most waited through | commands / acquisition | gave up | uncontended take + release p50 ms |`
    )
    out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`)
    for (const c of sem.contenders) {
      const all = sem.rounds.flatMap((r) => (r.contended[c.id] ? [r.contended[c.id]!] : []))
      const failed = all.some((r) => r.errors.length > 0)
      const cut = all.filter((r) => r.cut).length
      out(
        `| ${c.name} | ${failed ? "**failed** " : ""}${
          fmt(mid((r) => r.contended[c.id], (r) => r.sectionsPerSecond), 0)
        }${cut > 0 ? ` (time limit hit in ${cut} round(s))` : ""} | ${
          fmt(mid((r) => r.contended[c.id], (r) => r.handoffP50), 3)
        } | ${fmt(mid((r) => r.contended[c.id], (r) => r.handoffP99), 3)} | ${
          all.length === 0 ? "–" : Math.max(...all.map((r) => r.mostWaitedThrough))
        } | ${fmt(mid((r) => r.contended[c.id], (r) => r.commandsPerAcquisition), 1)} | ${
          fmt(mid((r) => r.contended[c.id], (r) => r.gaveUp), 0)
        } | ${fmt(mid((r) => r.uncontended[c.id], (r) => r.p50), 3)} |`
      )
    }
    out(
      ``,
      `Uncontended cycle of effect-lock's \`Lock.acquire\` for comparison: p50 ${
        fmt(lockCycle, 3)
      } ms. Medians over rounds;`
    )
    out(`**hand-off**: from the latest release before an acquisition to it, for acquisitions that waited through that`)
    out(`release. Settings: ${sem.contenders.map((c) => `${c.name}: ${c.settings}`).join("; ")}.`, ``)
  }

  const long = results.longRun
  if (long !== undefined) {
    out(`## Long run: \`withLock({ id, timeout: "5 seconds" })\` in ONE fiber, Memory store`, ``)
    out(
      `| calls | first ${long.window}: µs / call | last ${long.window}: µs / call | last ÷ first | deepest FiberRef stack at the end | heap used at the end (after GC) |`
    )
    out(`| ---: | ---: | ---: | ---: | ---: | ---: |`)
    const first = long.windows[0]
    const last = long.windows[long.windows.length - 1]
    out(
      `| ${long.calls}${long.finished ? "" : ` of ${results.config.longCalls} (time limit)`} | ${fmt(first, 1)} | ${
        fmt(last, 1)
      } | ${fmt(last !== undefined && first !== undefined ? last / first : NaN)} | ${long.deepestFiberRefStack} | ${
        fmt(long.heapUsedMiB, 1)
      } MiB |`
    )
    out(``, `Per window of ${long.window} calls (µs / call): ${long.windows.map((w) => fmt(w, 1)).join(", ")}.`)
    out(`The Effect behaviour behind a growing stack is reproduced on its own in \`bench/fiberref-growth.ts\`.`, ``)
  }

  if (results.bundles.length > 0) {
    out(
      `## Bundle size (esbuild, browser target, minified)`,
      ``,
      `| bundle | minified | gzip |`,
      `| --- | ---: | ---: |`
    )
    for (const b of results.bundles) out(`| ${b.label} | ${kb(b.minified)} | ${kb(b.gzip)} |`)
    out(``)
  }

  out(`## Settings`, ``, `| library | id | waiting settings |`, `| --- | --- | --- |`)
  for (const c of results.contenders) out(`| ${c.name} | \`${c.id}\` | ${c.settings} |`)
  out(``)
  out(
    `- **Floor**: the two commands of a lock cycle with no library: \`SET NX PX\` and an owner-checked \`DEL\` in Lua.`
  )
  out(`- **× floor**: a library's p50 cycle time (uncontended) or sections/s (contended) divided by the floor's`)
  out(`  in the same round (and mode); the bold figure is the median of those per-round ratios, the rounds follow.`)
  out(`- **Workers**: Promise libraries run an \`await\` loop; Effect libraries run ONE fiber per worker looping`)
  out(`  over acquire → section → release, as a queue worker does. "One process per worker" runs each worker in its`)
  out(`  own OS process (how it is deployed); all of them share the client CPU. Every worker has its own client`)
  out(`  (its own connections, or its own effect-lock layer), in both modes.`)
  out(`- **Hand-off**: from a release returning to a *different* worker's acquire returning (0 when the waiter had`)
  out(`  the lock before the releaser heard back). **Most waited through**: the largest number of acquisitions by`)
  out(`  other workers while one waiter waited (FIFO: at most W − 1). **Releaser re-takes**: acquisitions that went`)
  out(`  to the worker that released just before. **Gave up**: acquisitions a library abandoned under its default`)
  out(`  retry (the loop then asks again).`)
  out(`- **Commands**: INFO commandstats delta (commands inside scripts included), minus the section's GET and SET.`)
  out(`  On the cluster: summed over its six nodes (replicas count the writes they apply), and **per node** from the`)
  out(`  last round, masters then replicas, busiest first (the section's counter lives on the single node there).`)
  out(
    `- **Allocated / cycle**: v8 heap growth plus what every GC freed over ${results.config.allocCycles} uncontended cycles`
  )
  out(`  (v8 GCProfiler); GC µs / cycle is the GC time over the same cycles; fibers forked / cycle counts every`)
  out(`  fiber started under the worker's loop (a Supervisor), Effect libraries only.`)
  out(`- **Connections opened**: INFO stats \`total_connections_received\` delta during the timed cycles (worst`)
  out(`  round); on REST it counts the fixture's connections to Redis, not HTTP connections.`)
  return lines.join("\n") + "\n"
}

const BEGIN = "<!-- bench:begin (written by npm run bench) -->"
const END = "<!-- bench:end -->"

/** Replaces the README's table between the bench markers with this run's headline figures. */
export const updateReadme = (file: string, results: Results) => {
  const { con, conRatios, unc, uncRatios } = views(results)
  const W = results.config.workers
  const table = [
    BEGIN,
    ...(results.quick
      ? [
        `**Quick smoke run** (\`--quick\`, on a busy machine): it shows the table's shape, not how fast anything is.`,
        ``
      ]
      : []),
    ...header(results),
    ``,
    `| library | uncontended × floor | p99 ms | contended W = ${W}: sections/s × floor (one process / per-worker processes) | hand-off p50 ms | most waited through | allocated / cycle |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...results.contenders.map((c) => {
      const one = con("one process", c.id, (r) => r.handoffP50)
      const fifo = Math.max(
        ...results.contended.filter((r) => r.mode === "one process" && r.runs[c.id]).map((r) =>
          r.runs[c.id]!.mostWaitedThrough
        )
      )
      return `| ${c.name}${c.backend === "rest" && !c.name.includes("Upstash)") ? " (REST)" : ""} | ${
        fmt(median(uncRatios(c.id, FLOOR)))
      } | ${fmt(unc(c.id, (r) => r.p99), 3)} | ${fmt(median(conRatios("one process", c.id, FLOOR)))} / ${
        fmt(median(conRatios("one process per worker", c.id, FLOOR)))
      } | ${fmt(one, 3)} | ${Number.isFinite(fifo) ? fifo : "–"} | ${kb(results.alloc[c.id]?.bytesPerCycle)} |`
    }),
    END
  ].join("\n")
  const readme = fs.readFileSync(file, "utf8")
  const start = readme.indexOf(BEGIN)
  const end = readme.indexOf(END)
  if (start < 0 || end < start) throw new Error(`README.md has no ${BEGIN} … ${END} block`)
  fs.writeFileSync(file, readme.slice(0, start) + table + readme.slice(end + END.length))
}
