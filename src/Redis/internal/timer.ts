/**
 * One timer per Redis service: every deadline of every lock on a client (a request's, a waiter's, a
 * lease's keep-alive tick) is an entry in one heap, served by one fiber sleeping on Effect's `Clock`.
 * Scheduling or cancelling an entry forks nothing; the fiber only re-arms when an entry comes due
 * earlier than the one it sleeps for. Time is the clock's monotonic milliseconds
 * (`Clock.currentTimeNanos`), so a wall-clock step never moves a deadline, and `TestClock` drives it all.
 */
import { type Clock, Duration, Effect, FiberSet, type Scope } from "effect"
import type { Timer } from "../../Redis.js"

interface Entry {
  readonly at: number
  readonly task: () => void
  index: number
}

/** A binary min-heap on `at` that knows each entry's index, so an entry is removed in O(log n). */
class Heap {
  private readonly items: Array<Entry> = []

  get size(): number {
    return this.items.length
  }
  peek(): Entry | undefined {
    return this.items[0]
  }
  push(entry: Entry): void {
    entry.index = this.items.length
    this.items.push(entry)
    this.up(entry.index)
  }
  remove(entry: Entry): void {
    const i = entry.index
    if (i < 0 || this.items[i] !== entry) return
    const last = this.items.pop()!
    entry.index = -1
    if (last === entry) return
    this.items[i] = last
    last.index = i
    this.up(i)
    this.down(last.index)
  }
  private swap(i: number, j: number): void {
    const a = this.items[i]!
    const b = this.items[j]!
    this.items[i] = b
    this.items[j] = a
    a.index = j
    b.index = i
  }
  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.items[parent]!.at <= this.items[i]!.at) return
      this.swap(i, parent)
      i = parent
    }
  }
  private down(i: number): void {
    const n = this.items.length
    while (true) {
      const l = 2 * i + 1
      const r = l + 1
      let least = i
      if (l < n && this.items[l]!.at < this.items[least]!.at) least = l
      if (r < n && this.items[r]!.at < this.items[least]!.at) least = r
      if (least === i) return
      this.swap(i, least)
      i = least
    }
  }
}

/** The longest the timer's fiber sleeps, even with nothing to do. */
const IDLE = 1000

const millisOf = (clock: Clock.Clock): number => Number(clock.unsafeCurrentTimeNanos()) / 1_000_000

/** Makes a timer whose fibers (its own, and the background work it runs) live in the current scope. */
export const make: Effect.Effect<Timer, never, Scope.Scope> = Effect.gen(function*() {
  const clock = yield* Effect.clock
  const heap = new Heap()
  /** The instant the fiber sleeps until (Infinity: until an entry comes). */
  let armedAt = Infinity
  /** Resumes the fiber's current wait early, when an entry comes due before `armedAt`. */
  let poke: (() => void) | undefined

  const now = () => millisOf(clock)

  const fireDue = () => {
    const t = now()
    let entry = heap.peek()
    while (entry !== undefined && entry.at <= t) {
      heap.remove(entry)
      try {
        entry.task()
      } catch {
        // A task is a callback of this library; it must not stop the timer for every other entry.
      }
      entry = heap.peek()
    }
  }

  /**
   * Resumed by a poke: an entry came due before `until`, the instant the fiber sleeps for (also one
   * scheduled between the decision to sleep and this wait's registration).
   */
  const poked = (until: number) =>
    Effect.async<void>((resume) => {
      if (armedAt < until) return resume(Effect.void)
      poke = () => {
        poke = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        poke = undefined
      })
    })

  // The only race of the timer: once per re-arming, never per entry.
  const wait = (until: number): Effect.Effect<void> =>
    until === Infinity
      ? poked(until)
      : Effect.raceFirst(clock.sleep(Duration.millis(Math.max(0, Math.ceil(until - now())))), poked(until))

  // With nothing due the fiber still wakes every IDLE ms: entries that come due after that (a request's
  // deadline, a keep-alive tick) then never need a poke, which matters when locks are taken and released
  // in a loop (each cycle schedules and cancels its entries before the fiber would look).
  const loop: Effect.Effect<never> = Effect.suspend(() => {
    fireDue()
    const next = heap.peek()
    armedAt = Math.min(next === undefined ? Infinity : next.at, now() + IDLE)
    return Effect.zipRight(wait(armedAt), loop)
  })
  yield* Effect.forkScoped(Effect.interruptible(loop))
  // Background work belongs to the layer's scope too: closing the layer interrupts every fiber of it.
  const run = yield* FiberSet.makeRuntime<never, void, never>()

  return {
    now,
    fork: (effect) => void run(effect),
    schedule: (at, task) => {
      const entry: Entry = { at, task, index: -1 }
      heap.push(entry)
      if (at < armedAt) {
        armedAt = at
        poke?.()
      }
      return () => heap.remove(entry)
    }
  }
})
