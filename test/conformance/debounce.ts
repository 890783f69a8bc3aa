/**
 * The Debounce conformance suite, for every backend (./backends.ts). Each caller gets its own client (its
 * own connection on a real server), as separate processes would.
 */
import { describe, expect } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schedule } from "effect"
import * as Debounce from "../../src/Debounce.js"
import * as FaultyRedis from "../utils/FaultyRedis.js"
import { eventually } from "../utils/live.js"
import { readKey, uniqueId } from "../utils/probe.js"
import type { Backend } from "./backends.js"

type Outcome = Debounce.Outcome<unknown>

export const debounceConformance = (backend: Backend) =>
  describe(`Debounce conformance: ${backend.name}`, () => {
    const { elapse, margin, short: wait, test, within } = backend
    const echo = (id: string, extra: Partial<Debounce.Options<[string, number], unknown>> = {}) =>
      Debounce.make({ id, wait, callback: (who: string, n: number) => Effect.succeed([who, n] as const), ...extra })

    test("sequential callers on separate clients: exactly one run, by the last caller, with its arguments", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("seq")
        // Caller i+1 starts once caller i's call is recorded in Redis, so "last" is well defined.
        const callers = yield* Effect.forEach([1, 2, 3, 4, 5], (n) =>
          Effect.gen(function*() {
            const marked = yield* Deferred.make<void>()
            const spy = FaultyRedis.make()
            spy.on("debounce.mark", FaultyRedis.Then(Deferred.succeed(marked, undefined)))
            const layer = spy.layer.pipe(Layer.provide(client))
            const fiber = yield* Effect.forkScoped(
              Effect.flatMap(echo(id), (d) => d.call(`caller-${n}`, n)).pipe(Effect.provide(layer))
            )
            yield* Deferred.await(marked)
            return fiber
          }))
        const outcomes: Array<Outcome> = yield* within(
          wait * 4,
          Effect.forEach(callers, (f) => f.await.pipe(Effect.flatten))
        )
        expect(outcomes.map((o) => o._tag)).toEqual(["Superseded", "Superseded", "Superseded", "Superseded", "Ran"])
        expect(outcomes[4]).toEqual({ _tag: "Ran", edge: "trailing", result: ["caller-5", 5] })
      }))

    test("concurrent callers on separate clients: exactly one runs, with its own arguments", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("conc")
        const outcomes: Array<Outcome> = yield* within(
          wait * 4,
          Effect.all(
            Array.from(
              { length: 8 },
              (_, n) => Effect.flatMap(echo(id), (d) => d.call(`caller-${n}`, n)).pipe(Effect.provide(client))
            ),
            { concurrency: "unbounded" }
          )
        )
        const ran = outcomes.flatMap((o, n) => (o._tag === "Ran" ? [[o, n] as const] : []))
        expect(ran.length).toBe(1)
        const [winner, n] = ran[0]!
        expect(winner._tag === "Ran" && winner.result).toEqual([`caller-${n}`, n])
        expect(outcomes.filter((o) => o._tag === "Superseded").length).toBe(7)
      }))

    test("calls further apart than wait each run", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("apart")
        const d = yield* echo(id)
        const first = yield* within(wait * 4, d.call("a", 1))
        const second = yield* within(wait * 4, d.call("b", 2))
        expect(first).toEqual({ _tag: "Ran", edge: "trailing", result: ["a", 1] })
        expect(second).toEqual({ _tag: "Ran", edge: "trailing", result: ["b", 2] })
      }).pipe(Effect.provide(client)))

    test("per key: one key's calls never suppress another's", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("keys")
        const d = yield* echo(id, { key: (who) => who })
        const outcomes = yield* within(
          wait * 4,
          Effect.all([d.call("a", 1), d.call("b", 1), d.call("a", 2)], { concurrency: "unbounded" })
        )
        const ran = outcomes.flatMap((o) => (o._tag === "Ran" ? [o.result] : []))
        expect(ran.length).toBe(2)
        expect(ran.map((r) => (r as ReadonlyArray<string>)[0]).sort()).toEqual(["a", "b"])
      }).pipe(Effect.provide(client)))

    test("leading: the first call runs at once, the rest of the burst is suppressed", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("lead")
        const d = yield* echo(id, { leading: true, wait: wait * 10 })
        const first = yield* d.call("first", 1)
        const rest = yield* Effect.all([d.call("second", 2), d.call("third", 3)])
        expect(first).toEqual({ _tag: "Ran", edge: "leading", result: ["first", 1] })
        expect(rest.map((o) => o._tag)).toEqual(["Suppressed", "Suppressed"])
      }).pipe(Effect.provide(client)))

    test("debounce state carries a TTL and sits under the debounce namespace", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("ttl")
        const d = yield* echo(id)
        const fiber = yield* Effect.fork(d.call("x", 1))
        const base = `effect-lock:debounce:{${id}}:`
        // Wait for the call to be recorded, then look at the keys while the burst is open.
        const seq = yield* eventually(readKey(`${base}:seq`), (raw) => raw.value !== null)
        expect(seq.pttl).toBeGreaterThan(0)
        for (const suffix of ["args", "first", "owner"]) {
          expect((yield* readKey(`${base}:${suffix}`)).pttl).toBeGreaterThan(0)
        }
        expect((yield* readKey(`effect-lock:lock:{${id}}`)).value).toBeNull()
        yield* within(wait * 4, fiber.await)
      }).pipe(Effect.provide(client)))

    // Issue 23 §3 (the processes and SIGKILL: test/Debounce.deadCaller.test.ts). Was: no run at all.
    test("a burst whose last caller is stopped during its wait still runs once, on another caller, within wait and a lease", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("stopped")
        const lease = wait * 2
        const runs: Array<readonly [string, number]> = []
        const caller = (who: string, n: number) =>
          Effect.gen(function*() {
            const marked = yield* Deferred.make<void>()
            const spy = FaultyRedis.make()
            spy.on("debounce.mark", FaultyRedis.Then(Deferred.succeed(marked, undefined)))
            // the caller's client lives on after its call, as its process would (the other caller's watches on it)
            const services = yield* Layer.build(spy.layer.pipe(Layer.provide(client)))
            const d = yield* Debounce.make({
              id,
              wait,
              lease,
              callback: (who: string, n: number) => Effect.sync(() => runs.push([who, n]))
            }).pipe(Effect.provide(services))
            const fiber = yield* Effect.forkScoped(d.call(who, n))
            yield* Deferred.await(marked)
            return fiber
          })
        const first = yield* caller("first", 1)
        const last = yield* caller("last", 2)
        yield* Fiber.interrupt(last)
        expect(yield* within(wait * 4, Fiber.join(first))).toEqual({ _tag: "Superseded" })
        const ran = Effect.repeat(Effect.sync(() => runs.length), {
          until: (n) => n > 0,
          schedule: Schedule.spaced(10)
        })
        yield* within(wait + lease * 2 + margin, ran)
        expect(runs).toEqual([["last", 2]])
        // nothing more is owed
        yield* elapse(wait + lease * 3 + margin)
        expect(runs).toEqual([["last", 2]])
      }).pipe(Effect.provide(client)))
  })
