/**
 * Debounce on the Memory backend under TestClock: parity, maxWait, leading edge, per-key, no overlap,
 * TTLs, namespaces, callback shapes and bad input. Time moves only when a test says so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Ref, TestClock } from "effect"
import * as Debounce from "../src/Debounce.js"
import * as Lock from "../src/Lock.js"
import type { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { readKey } from "./utils/probe.js"

/** Runs `calls` (each forked at its offset in ms), lets `total` ms pass, and returns their outcomes. */
const timeline = <A, E>(
  total: number,
  calls: ReadonlyArray<readonly [at: number, call: Effect.Effect<A, E, Redis>]>
) =>
  Effect.gen(function*() {
    const fibers = yield* Effect.forEach(calls, ([at, call]) => Effect.fork(Effect.zipRight(Effect.sleep(at), call)))
    yield* TestClock.adjust(total)
    return yield* Effect.forEach(fibers, Fiber.join)
  })

const ranTag = (o: Debounce.Outcome<unknown>) => o._tag

describe("Debounce (the @upstash/lock contract)", () => {
  it.effect("calls within wait collapse into one run, about wait after the last call, with its arguments", () =>
    Effect.gen(function*() {
      const runs: Array<{ readonly at: number; readonly args: ReadonlyArray<unknown> }> = []
      const d = yield* Debounce.make({
        id: "save",
        wait: 1000,
        callback: (doc: string, rev: number) =>
          Effect.map(TestClock.currentTimeMillis, (at) => {
            runs.push({ at, args: [doc, rev] })
            return `saved ${doc}@${rev}`
          })
      })
      const outcomes = yield* timeline(5000, [
        [0, d.call("a", 1)],
        [300, d.call("b", 2)],
        [600, d.call("c", 3)]
      ])
      expect(outcomes.map(ranTag)).toEqual(["Superseded", "Superseded", "Ran"])
      expect(outcomes[2]).toEqual({ _tag: "Ran", edge: "trailing", result: "saved c@3" })
      expect(runs).toEqual([{ at: 1600, args: ["c", 3] }])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("each call resolves after its own wait; calls further apart than wait each run", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make<Array<string>>([])
      const d = yield* Debounce.make({
        id: "sep",
        wait: "1 second",
        callback: (x: string) => Ref.update(runs, (r) => [...r, x])
      })
      const first = yield* Effect.fork(d.call("one"))
      yield* TestClock.adjust(999)
      expect(first.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      expect((yield* Fiber.join(first))._tag).toBe("Ran")
      const outcomes = yield* timeline(10_000, [[0, d.call("two")], [1500, d.call("three")]])
      expect(outcomes.map(ranTag)).toEqual(["Ran", "Ran"])
      expect(yield* Ref.get(runs)).toEqual(["one", "two", "three"])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("the callback may return an Effect, a Promise or a plain value; a rejection is UnknownException", () =>
    Effect.gen(function*() {
      const viaPromise = yield* Debounce.make({ id: "p", wait: 10, callback: async (n: number) => n * 2 })
      const viaValue = yield* Debounce.make({ id: "v", wait: 10, callback: (n: number) => n + 1 })
      const failing = yield* Debounce.make({
        id: "f",
        wait: 10,
        callback: (): Promise<number> => Promise.reject(new Error("nope"))
      })
      const [a, b] = yield* timeline(100, [[0, viaPromise.call(21)], [0, viaValue.call(41)]])
      expect(a).toEqual({ _tag: "Ran", edge: "trailing", result: 42 })
      expect(b).toEqual({ _tag: "Ran", edge: "trailing", result: 42 })
      const fiber = yield* Effect.fork(failing.call())
      yield* TestClock.adjust(10)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("UnknownException")
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Debounce's own Redis", () => {
  it.effect("a call needs no Redis in its caller's context: it uses the one the debounce was made with", () =>
    Effect.gen(function*() {
      const d = yield* Debounce.make({ id: "ctx", wait: 10, callback: () => Effect.succeed(1) }).pipe(
        Effect.provide(Memory.layer)
      )
      const fiber = yield* Effect.fork(d.call()) // no Redis provided here
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(fiber)).toEqual({ _tag: "Ran", edge: "trailing", result: 1 })
    }))
})

describe("Debounce as a Layer", () => {
  class Greeting extends Context.Tag("test/Greeting")<Greeting, string>() {}
  class Notify extends Context.Tag("test/Notify")<Notify, Debounce.Debounce<[user: string], string>>() {}

  it.effect("a tag provided by Debounce.layer, with the callback's requirements in the layer's type", () => {
    const NotifyLive: Layer.Layer<Notify, unknown, Redis | Greeting> = Debounce.layer(Notify, {
      id: "notify",
      wait: 200,
      callback: (user: string) => Effect.map(Greeting, (hello) => `${hello}, ${user}`)
    })
    return Effect.gen(function*() {
      const notify = yield* Notify
      const [outcome] = yield* timeline(1000, [[0, notify.call("ada")]])
      expect(outcome).toEqual({ _tag: "Ran", edge: "trailing", result: "hello, ada" })
    }).pipe(
      Effect.provide(NotifyLive),
      Effect.provide(Layer.merge(Memory.layer, Layer.succeed(Greeting, "hello")))
    )
  })
})

describe("Debounce beyond the parity", () => {
  it.effect("maxWait: under a steady stream of calls the callback still runs at least once per maxWait", () =>
    Effect.gen(function*() {
      const runs: Array<number> = []
      const d = yield* Debounce.make({
        id: "stream",
        wait: 1000,
        maxWait: 3000,
        callback: (i: number) => Effect.map(TestClock.currentTimeMillis, (at) => void runs.push(at, i))
      })
      // A call every 400 ms for 10 s: without maxWait nothing would run until 11 s.
      const calls = Array.from({ length: 25 }, (_, i) => [i * 400, d.call(i)] as const)
      const outcomes = yield* timeline(20_000, calls)
      const times = runs.filter((_, i) => i % 2 === 0)
      const args = runs.filter((_, i) => i % 2 === 1)
      expect(times[0]).toBeLessThanOrEqual(3000 + 1000)
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(3000 + 400)
      expect(times.at(-1)).toBe(24 * 400 + 1000) // the trailing run after the stream ends
      expect(args.at(-1)).toBe(24)
      const maxWaitRuns = outcomes.filter((o) => o._tag === "Ran" && o.edge === "maxWait")
      expect(maxWaitRuns.length).toBeGreaterThanOrEqual(2)
      // each maxWait run used the latest arguments recorded at that moment
      for (let i = 0; i < args.length - 1; i++) expect(args[i]).toBeGreaterThan(i === 0 ? 0 : args[i - 1]!)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("leading: the first call of a burst runs at once; the rest are suppressed until quiet", () =>
    Effect.gen(function*() {
      const runs: Array<readonly [number, string]> = []
      const d = yield* Debounce.make({
        id: "lead",
        wait: 1000,
        leading: true,
        callback: (x: string) => Effect.map(TestClock.currentTimeMillis, (at) => void runs.push([at, x]))
      })
      const outcomes = yield* timeline(10_000, [
        [0, d.call("a")],
        [500, d.call("b")],
        [1200, d.call("c")], // 700 ms after b: still the same burst
        [2300, d.call("d")] // 1100 ms after c: a new burst
      ])
      expect(outcomes.map(ranTag)).toEqual(["Ran", "Suppressed", "Suppressed", "Ran"])
      expect(outcomes[0]).toMatchObject({ edge: "leading" })
      expect(runs).toEqual([[0, "a"], [2300, "d"]])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("leading with maxWait: a long burst runs again once per maxWait, on the call that crosses it", () =>
    Effect.gen(function*() {
      const runs: Array<number> = []
      const d = yield* Debounce.make({
        id: "lead-max",
        wait: 1000,
        maxWait: 2000,
        leading: true,
        callback: (i: number) => Effect.sync(() => void runs.push(i))
      })
      // A call every 400 ms for 6 s: one endless burst.
      const outcomes = yield* timeline(10_000, Array.from({ length: 16 }, (_, i) => [i * 400, d.call(i)] as const))
      expect(runs).toEqual([0, 5, 10, 15]) // at 0, 2000, 4000 and 6000 ms
      expect(outcomes.filter((o) => o._tag === "Ran").map((o) => (o as { edge: string }).edge)).toEqual([
        "leading",
        "maxWait",
        "maxWait",
        "maxWait"
      ])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("per key: calls for one key never suppress another's", () =>
    Effect.gen(function*() {
      const d = yield* Debounce.make({
        id: "per-key",
        wait: 500,
        key: (tenant: string, _n: number) => tenant,
        callback: (tenant: string, n: number) => Effect.succeed(`${tenant}:${n}`)
      })
      const outcomes = yield* timeline(5000, [
        [0, d.call("a", 1)],
        [100, d.call("b", 1)],
        [200, d.call("a", 2)],
        [300, d.call("b", 2)],
        [310, d.call("a}:x", 1)] // a key that looks like key syntax is still its own key
      ])
      const ran = outcomes.flatMap((o) => (o._tag === "Ran" ? [o.result] : []))
      expect(ran.sort()).toEqual(["a:2", "a}:x:1", "b:2"])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("runs never overlap: a burst that ends during a run waits for it", () =>
    Effect.gen(function*() {
      const inside = yield* Ref.make(0)
      const most = yield* Ref.make(0)
      const spans: Array<readonly [number, number]> = []
      const d = yield* Debounce.make({
        id: "slow",
        wait: 500,
        callback: () =>
          Effect.gen(function*() {
            const start = yield* TestClock.currentTimeMillis
            yield* Ref.update(most, (m) => m) // keep the order of effects explicit
            const n = yield* Ref.updateAndGet(inside, (x) => x + 1)
            yield* Ref.update(most, (m) => Math.max(m, n))
            yield* Effect.sleep(2000)
            yield* Ref.update(inside, (x) => x - 1)
            spans.push([start, yield* TestClock.currentTimeMillis])
          })
      })
      // Burst 1 ends at 500 (run 500–2500); burst 2 ends at 1200 while run 1 is going.
      yield* timeline(20_000, [[0, d.call()], [700, d.call()]])
      expect(yield* Ref.get(most)).toBe(1)
      expect(spans.length).toBe(2)
      expect(spans[1]![0]).toBeGreaterThanOrEqual(spans[0]![1])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("state in Redis always carries a TTL and lives under its own namespace, apart from a Lock of the same id", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make({ id: "shared-id" })
      expect(yield* lock.acquire()).toBe(true)
      const d = yield* Debounce.make({ id: "shared-id", wait: 1000, maxWait: 5000, callback: () => Effect.void })
      const fiber = yield* Effect.fork(d.call())
      yield* TestClock.adjust(10)
      for (const suffix of ["seq", "args", "first"]) {
        const raw = yield* readKey(`effect-lock:debounce:{shared-id}::${suffix}`)
        expect(raw.value).not.toBeNull()
        expect(raw.pttl).toBeGreaterThan(0)
        expect(raw.pttl).toBeLessThanOrEqual(5000 * 4 + 1000)
      }
      yield* TestClock.adjust(1000)
      expect((yield* Fiber.join(fiber))._tag).toBe("Ran")
      expect(yield* lock.status).toBe("ACQUIRED") // the debounce never touched the lock's key
      yield* TestClock.adjust(21_000)
      expect((yield* readKey("effect-lock:debounce:{shared-id}::seq")).value).toBeNull() // expired
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Debounce rejects bad input before anything reaches Redis", () => {
  const withClient = <A, E>(f: (client: FaultyRedis.FaultyRedis) => Effect.Effect<A, E, Redis>) => {
    const client = FaultyRedis.make()
    return f(client).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
  }
  const cb = () => Effect.void
  const badOptions: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    ["wait 0", { wait: 0 }, "wait"],
    ["wait -1", { wait: -1 }, "wait"],
    ["wait NaN", { wait: NaN }, "wait"],
    ["wait 1.5", { wait: 1.5 }, "wait"],
    ["maxWait < wait", { wait: 1000, maxWait: 500 }, "maxWait"],
    ["maxWait NaN", { maxWait: NaN }, "maxWait"],
    ["empty id", { id: "" }, "id"],
    ["over-long id", { id: "x".repeat(513) }, "id"],
    ["no callback", { callback: undefined }, "callback"]
  ]
  for (const [name, overrides, option] of badOptions) {
    it.effect(`make: ${name}`, () =>
      withClient((client) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(Debounce.make({ id: "bad", callback: cb, ...overrides } as any))
          expect(error._tag).toBe("InvalidOptions")
          expect((error as any).option).toBe(option)
          expect(client.calls).toEqual([])
        })
      ))
  }

  const badArguments: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]> = [
    ["a bigint", [10n]],
    ["a function", [() => 1]],
    ["NaN", [NaN]],
    ["a Date", [new Date(0)]],
    ["a cycle", [(() => {
      const o: Record<string, unknown> = {}
      o.self = o
      return o
    })()]],
    ["undefined", [undefined]],
    ["a Map", [new Map()]]
  ]
  for (const [name, args] of badArguments) {
    it.effect(`call with ${name}`, () =>
      withClient((client) =>
        Effect.gen(function*() {
          const d = yield* Debounce.make({ id: "args", callback: (..._: ReadonlyArray<unknown>) => Effect.void })
          const error = yield* Effect.flip(d.call(...args))
          expect(error._tag).toBe("InvalidOptions")
          expect(client.calls).toEqual([])
        })
      ))
  }

  it.effect("call with a key function that returns a non-string or an over-long key", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const d = yield* Debounce.make({
          id: "k",
          key: (k: unknown) => k as string,
          callback: (_: unknown) => Effect.void
        })
        expect((yield* Effect.flip(d.call(5)))._tag).toBe("InvalidOptions")
        expect((yield* Effect.flip(d.call("x".repeat(600))))._tag).toBe("InvalidOptions")
        expect(client.calls).toEqual([])
      })
    ))
})
