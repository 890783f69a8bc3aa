/**
 * The randomized liveness checker, beside the mutual-exclusion one (checker.ts): worker processes
 * (worker.ts `wait`), each with its own ioredis client and several fibers, wait for one lock again and
 * again with random timeouts and interrupts. Round after round, one worker is told to take the lock and
 * hold it; while it holds (so no other worker can be winning at that moment), random workers are
 * SIGKILLed with their waiters in line; then the holder releases, or is SIGKILLed too. Killed workers
 * are replaced.
 *
 * It reports the longest time the lock sat free while someone waited: the longest stretch during which
 * some living fiber was waiting and no fiber held the lock. Times are every process's own wall-clock
 * microseconds (one clock on one machine: the one Redis TIME reads), taken the moment each event
 * happens. A SIGKILLed holder's lease is its own cost, not a liveness fault: the lock counts as held
 * until that lease could have run out (kill time + lease).
 */
import { Effect, Random } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"

export interface Stall {
  /** Milliseconds since the run began. */
  readonly at: number
  readonly millis: number
}

export interface Report {
  readonly rounds: number
  readonly acquisitions: number
  readonly gaveUp: number
  /** Waiter processes SIGKILLed while the lock was held by another worker. */
  readonly waiterKills: number
  readonly holderKills: number
  /** The longest free-while-someone-waited stretch, in ms. */
  readonly worstStall: number
  /** The five longest stretches. */
  readonly stalls: ReadonlyArray<Stall>
  readonly durationMillis: number
}

export interface Options {
  readonly redisUrl: string
  /** Worker processes kept alive. */
  readonly processes: number
  /** Waiting fibers per worker. */
  readonly fibers: number
  /** How long to keep starting rounds, in ms from the start (worker start-up included); one round at least. */
  readonly duration: number
  readonly lease?: number
  /** Chance that each other worker is SIGKILLed in a round (one of them is, at least). */
  readonly killChance?: number
  /** Chance that the round's holder is SIGKILLed instead of releasing. */
  readonly holderKillChance?: number
}

/** One line a worker prints: what happened to which fiber (`"H"`: the round's holder), at µs `t`. */
export interface Event {
  readonly e: "ready" | "wait" | "got" | "rel" | "gaveup"
  readonly f: number | "H"
  readonly t: number
}

/** What one worker process did, and when it was SIGKILLed (µs), if it was. */
export interface Trace {
  readonly events: ReadonlyArray<Event>
  readonly killedAt: number | undefined
}

interface Worker {
  readonly n: number
  readonly child: ChildProcess
  readonly events: Array<Event>
  killedAt: number | undefined
  listeners: Array<(event: Event) => void>
}

const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)

export const run = (options: Options): Effect.Effect<Report> =>
  Effect.gen(function*() {
    const lease = options.lease ?? 2000
    const killChance = options.killChance ?? 0.5
    const holderKillChance = options.holderKillChance ?? 0.25
    const id = `liveness-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const workers: Array<Worker> = []
    let next = 0
    const started = nowMicros()

    const spawnWorker = Effect.sync(() => {
      const child = spawn(process.execPath, [
        "--import",
        "tsx",
        "test/safety/worker.ts",
        "wait",
        options.redisUrl,
        id,
        String(options.fibers),
        String(lease)
      ], { stdio: ["pipe", "pipe", "inherit"] })
      const worker: Worker = { n: next++, child, events: [], killedAt: undefined, listeners: [] }
      child.stdin!.on("error", () => {})
      readline.createInterface({ input: child.stdout! }).on("line", (line) => {
        if (!line.startsWith("{")) return
        const event = JSON.parse(line) as Event
        worker.events.push(event)
        for (const listener of worker.listeners) listener(event)
      })
      workers.push(worker)
      return worker
    })
    /** Waits (up to `within` ms) for an event of `worker`, from the `from`th on, that `is` accepts; whether it came. */
    const awaitEvent = (worker: Worker, is: (event: Event) => boolean, within: number, from = 0) =>
      Effect.async<boolean>((resume) => {
        if (worker.events.slice(from).some(is)) return resume(Effect.succeed(true))
        const timer = setTimeout(() => resume(Effect.succeed(false)), within)
        const listener = (event: Event) => {
          if (!is(event)) return
          clearTimeout(timer)
          worker.listeners = worker.listeners.filter((l) => l !== listener)
          resume(Effect.succeed(true))
        }
        worker.listeners.push(listener)
      })
    const kill = (worker: Worker) =>
      Effect.sync(() => {
        worker.killedAt = nowMicros()
        worker.child.kill("SIGKILL")
      })
    const alive = () => workers.filter((w) => w.killedAt === undefined)
    const ready = (worker: Worker) => awaitEvent(worker, (e) => e.e === "ready", 60_000)

    const deadline = started + options.duration * 1000
    const first = yield* Effect.forEach(Array.from({ length: options.processes }), () => spawnWorker)
    yield* Effect.forEach(first, ready, { concurrency: "unbounded" })

    let rounds = 0
    let waiterKills = 0
    let holderKills = 0
    while (rounds === 0 || nowMicros() < deadline) {
      const candidates = alive().filter((w) => w.events.some((e) => e.e === "ready"))
      if (candidates.length === 0) break
      const host = candidates[yield* Random.nextIntBetween(0, candidates.length)]!
      const seen = host.events.length
      host.child.stdin!.write("hold\n")
      const within = Math.max(1000, (deadline - nowMicros()) / 1000) + 2000
      const got = yield* awaitEvent(host, (e) => e.f === "H" && e.e === "got", within, seen)
      if (!got) break
      rounds++
      yield* Effect.sleep(yield* Random.nextIntBetween(100, 300))
      // The host holds the lock: every other worker is waiting or idle, none is winning right now. At
      // least one of them dies each round, with its waiters in line.
      const others = alive().filter((w) => w !== host)
      const doomed: Array<Worker> = []
      for (const worker of others) if ((yield* Random.next) < killChance) doomed.push(worker)
      if (doomed.length === 0 && others.length > 0) doomed.push(others[yield* Random.nextIntBetween(0, others.length)]!)
      for (const worker of doomed) {
        yield* kill(worker)
        waiterKills++
      }
      if ((yield* Random.next) < holderKillChance) {
        yield* kill(host)
        holderKills++
      } else {
        host.child.stdin!.write("release\n")
      }
      // Replacements start in the background; they join the lock's waiters once up.
      for (let i = alive().length; i < options.processes; i++) yield* spawnWorker
      yield* Effect.sleep(1500)
    }
    const ended = nowMicros()
    for (const worker of alive()) yield* kill(worker)

    return { ...analyse(workers, lease, started, ended), rounds, waiterKills, holderKills }
  })

/**
 * The free-while-waited stretches, from every worker's events: times when some living fiber waits and
 * none holds. A killed waiter waits no more; a killed holder's lock counts as held for `lease` ms after
 * the kill (its lease's cost, not a liveness fault).
 */
export const analyse = (workers: ReadonlyArray<Trace>, lease: number, started: number, ended: number) => {
  // +1/-1 steps of "fibers waiting" and "fibers holding", at microsecond times.
  const steps: Array<{ readonly t: number; readonly waiting: number; readonly holding: number }> = []
  let acquisitions = 0
  let gaveUp = 0
  for (const worker of workers) {
    const end = worker.killedAt ?? ended
    const open = new Map<number | "H", Event>()
    for (const event of worker.events) {
      if (event.t > end) break
      const before = open.get(event.f)
      switch (event.e) {
        case "wait":
          steps.push({ t: event.t, waiting: 1, holding: 0 })
          open.set(event.f, event)
          break
        case "got":
          acquisitions++
          if (before?.e === "wait") steps.push({ t: event.t, waiting: -1, holding: 0 })
          steps.push({ t: event.t, waiting: 0, holding: 1 })
          open.set(event.f, event)
          break
        case "rel":
          if (before?.e === "got") steps.push({ t: event.t, waiting: 0, holding: -1 })
          open.delete(event.f)
          break
        case "gaveup":
          gaveUp++
          if (before?.e === "wait") steps.push({ t: event.t, waiting: -1, holding: 0 })
          open.delete(event.f)
          break
      }
    }
    for (const event of open.values()) {
      // A killed waiter waits no more; a killed holder's lease holds the lock until it could run out.
      if (event.e === "wait") steps.push({ t: end, waiting: -1, holding: 0 })
      else steps.push({ t: worker.killedAt === undefined ? end : end + lease * 1000, holding: -1, waiting: 0 })
    }
  }
  steps.sort((a, b) => a.t - b.t)
  const stalls: Array<Stall> = []
  let waiting = 0
  let holding = 0
  let freeSince: number | undefined
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!
    waiting += step.waiting
    holding += step.holding
    // Apply every step at the same instant before judging it.
    if (i + 1 < steps.length && steps[i + 1]!.t === step.t) continue
    const stalled = waiting > 0 && holding === 0 && step.t < ended
    if (stalled && freeSince === undefined) freeSince = step.t
    if (!stalled && freeSince !== undefined) {
      stalls.push({
        at: Math.round((freeSince - started) / 1000),
        millis: Math.min(step.t, ended) / 1000 - freeSince / 1000
      })
      freeSince = undefined
    }
  }
  if (freeSince !== undefined) {
    stalls.push({ at: Math.round((freeSince - started) / 1000), millis: (ended - freeSince) / 1000 })
  }
  stalls.sort((a, b) => b.millis - a.millis)
  return {
    acquisitions,
    gaveUp,
    worstStall: Math.round(stalls[0]?.millis ?? 0),
    stalls: stalls.slice(0, 5).map((s) => ({ at: s.at, millis: Math.round(s.millis) })),
    durationMillis: Math.round((ended - started) / 1000)
  }
}
