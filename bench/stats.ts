/** Pure arithmetic over what the measuring processes report. */
import type { Section } from "./measure.js"

/** Commands per cycle (or acquisition) on each node of a cluster, by role, busiest first. */
/** The index of the first of `sorted` greater than `t`. */
const firstAbove = (sorted: ReadonlyArray<number>, t: number) => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! <= t) lo = mid + 1
    else hi = mid
  }
  return lo
}

export interface PerNode {
  readonly masters: ReadonlyArray<number>
  readonly replicas: ReadonlyArray<number>
}

/** Per-node command deltas (same order as `roles`) divided by `n`, grouped by role, busiest first. */
export const perNode = (
  deltas: ReadonlyArray<number>,
  roles: ReadonlyArray<"master" | "replica">,
  n: number
): PerNode => {
  const of = (role: "master" | "replica") =>
    deltas.flatMap((d, i) => (roles[i] === role ? [d / Math.max(1, n)] : [])).sort((a, b) => b - a)
  return { masters: of("master"), replicas: of("replica") }
}

export const median = (xs: ReadonlyArray<number>) => {
  const sorted = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest-rank percentile. */
export const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export interface UncontendedRun {
  readonly cycles: number
  readonly p50: number
  readonly p99: number
  readonly mean: number
  readonly commandsPerCycle: number
  /** Connections opened to Redis during the cycles (the REST fixture's own pool counts too). */
  readonly connections: number
  readonly errors: ReadonlyArray<string>
  /** On a cluster: commands per cycle on each node. */
  readonly perNode?: PerNode | undefined
}

export const uncontended = (
  sections: ReadonlyArray<Section>,
  commands: number,
  connections: number,
  errors: ReadonlyArray<string> = []
): UncontendedRun => {
  const times = sections.map((s) => s.released - s.asked)
  return {
    cycles: times.length,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    mean: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length),
    commandsPerCycle: commands / Math.max(1, times.length),
    connections,
    errors
  }
}

export interface ContendedRun {
  readonly sections: number
  readonly seconds: number
  readonly sectionsPerSecond: number
  readonly handoffP50: number
  readonly handoffP99: number
  readonly handoffMax: number
  /** Share of acquisitions that went to the worker that released just before. */
  readonly retakes: number
  /** The most acquisitions by other workers that any one waiter sat through while it waited. */
  readonly mostWaitedThrough: number
  readonly commandsPerAcquisition: number
  readonly gaveUp: number
  readonly counterOk: boolean
  /** Whether the run hit its time limit before every worker finished its sections. */
  readonly cut: boolean
  readonly errors: ReadonlyArray<string>
  /** On a cluster: commands per acquisition on each node. */
  readonly perNode?: PerNode | undefined
}

export const contended = (
  sections: ReadonlyArray<Section>,
  options: {
    readonly commands: number
    readonly gaveUp: number
    readonly counter: number
    readonly expected: number
    readonly errors?: ReadonlyArray<string>
  }
): ContendedRun => {
  const ordered = [...sections].sort((a, b) => a.acquired - b.acquired)
  const start = Math.min(...sections.map((s) => s.asked))
  const end = Math.max(...sections.map((s) => s.released))
  const handoffs: Array<number> = []
  let retakes = 0
  for (let i = 1; i < ordered.length; i++) {
    const [prev, next] = [ordered[i - 1]!, ordered[i]!]
    if (prev.worker === next.worker) retakes++
    else handoffs.push(Math.max(0, next.acquired - prev.released))
  }
  // For each waiter, count the others' acquisitions strictly inside its wait (binary search on `ordered`).
  const acquiredTimes = ordered.map((s) => s.acquired)
  const firstAfter = (t: number) => firstAbove(acquiredTimes, t)
  let mostWaitedThrough = 0
  for (const s of sections) {
    let n = 0
    for (let i = firstAfter(s.asked); i < ordered.length && ordered[i]!.acquired < s.acquired; i++) {
      if (ordered[i]!.worker !== s.worker) n++
    }
    mostWaitedThrough = Math.max(mostWaitedThrough, n)
  }
  const seconds = (end - start) / 1000
  return {
    sections: sections.length,
    seconds,
    sectionsPerSecond: sections.length / seconds,
    handoffP50: percentile(handoffs, 50),
    handoffP99: percentile(handoffs, 99),
    handoffMax: handoffs.length === 0 ? NaN : Math.max(...handoffs),
    retakes: retakes / Math.max(1, ordered.length - 1),
    mostWaitedThrough,
    commandsPerAcquisition: options.commands / Math.max(1, sections.length),
    gaveUp: options.gaveUp,
    counterOk: options.counter === sections.length,
    cut: sections.length < options.expected,
    errors: options.errors ?? []
  }
}

export interface SemaphoreRun {
  readonly sections: number
  readonly seconds: number
  readonly sectionsPerSecond: number
  /** From the latest release before an acquisition to it, for acquisitions that waited through that release. */
  readonly handoffP50: number
  readonly handoffP99: number
  /** The most acquisitions by other workers that any one waiter sat through while it waited. */
  readonly mostWaitedThrough: number
  readonly commandsPerAcquisition: number
  readonly gaveUp: number
  readonly cut: boolean
  readonly errors: ReadonlyArray<string>
}

export const semaphore = (
  sections: ReadonlyArray<Section>,
  options: {
    readonly commands: number
    readonly gaveUp: number
    readonly expected: number
    readonly errors?: ReadonlyArray<string>
  }
): SemaphoreRun => {
  const ordered = [...sections].sort((a, b) => a.acquired - b.acquired)
  const acquiredTimes = ordered.map((s) => s.acquired)
  const releases = sections.map((s) => s.released).sort((a, b) => a - b)
  const handoffs: Array<number> = []
  let mostWaitedThrough = 0
  for (const s of sections) {
    const i = firstAbove(releases, s.acquired) - 1
    if (i >= 0 && releases[i]! > s.asked) handoffs.push(s.acquired - releases[i]!)
    let n = 0
    for (let j = firstAbove(acquiredTimes, s.asked); j < ordered.length && ordered[j]!.acquired < s.acquired; j++) {
      if (ordered[j]!.worker !== s.worker) n++
    }
    mostWaitedThrough = Math.max(mostWaitedThrough, n)
  }
  const start = Math.min(...sections.map((s) => s.asked))
  const end = Math.max(...sections.map((s) => s.released))
  const seconds = (end - start) / 1000
  return {
    sections: sections.length,
    seconds,
    sectionsPerSecond: sections.length / seconds,
    handoffP50: percentile(handoffs, 50),
    handoffP99: percentile(handoffs, 99),
    mostWaitedThrough,
    commandsPerAcquisition: options.commands / Math.max(1, sections.length),
    gaveUp: options.gaveUp,
    cut: sections.length < options.expected,
    errors: options.errors ?? []
  }
}
