/**
 * The Election conformance suite: the same cases for every backend (./backends.ts). Each candidate or
 * observer gets a client of its own, as another process would.
 */
import { describe, expect } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Ref, type Scope, Stream } from "effect"
import * as Election from "../../src/Election.js"
import { electionKeys } from "../../src/internal/election/keys.js"
import { InvalidOptions, LeadershipLost } from "../../src/LockError.js"
import type { Redis } from "../../src/Redis.js"
import { eventually } from "../utils/live.js"
import { readKey, readList, uniqueId } from "../utils/probe.js"
import type { Backend } from "./backends.js"

const HEX_TOKEN = /^[0-9a-f]{32}/

export const electionConformance = (backend: Backend) =>
  describe(`Election conformance: ${backend.name}`, () => {
    const test = (name: string, body: (client: Layer.Layer<Redis>) => Effect.Effect<void, unknown, Scope.Scope>) =>
      backend.test(name, body)
    /** Waits (letting store time pass on TestClock) until `self` holds of `check`. */
    const until = <A, E>(self: Effect.Effect<A, E>, check: (a: A) => boolean) =>
      backend.exactTime
        ? Effect.gen(function*() {
          for (let i = 0; i < 200; i++) {
            const a = yield* self
            if (check(a)) return a
            yield* backend.elapse(10)
          }
          return yield* Effect.die("condition not met in 2 s of store time")
        })
        : eventually(self, check)

    test("a campaign on a free election leads at once, with a first term and its identity readable by others", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("free")
        const leadership = yield* Election.campaign({ id, identity: "worker-1", lease: 5000 })
        // A fresh term counter starts at the server's clock in µs + 1 (docs/fences.md): 1 at TestClock 0.
        expect(Number.isSafeInteger(leadership.term) && leadership.term > 0).toBe(true)
        if (backend.exactTime) expect(leadership.term).toBe(1)
        expect(leadership.identity).toBe("worker-1")
        const seen = yield* Election.leader({ id })
        expect(Option.map(seen, (l) => [l.identity, l.term])).toEqual(Option.some(["worker-1", leadership.term]))
        expect(Duration.toMillis(Option.getOrThrow(seen).remaining)).toBeGreaterThan(4000)
        // The key layout: the election's own namespace, the token's random part then the identity, PX = lease.
        const keys = electionKeys("effect-lock:", id)
        expect(keys.lock).toBe(`effect-lock:election:{${id}}`)
        const raw = yield* readKey(keys.lock)
        expect(raw.value).toMatch(HEX_TOKEN)
        expect(raw.value!.slice(32)).toBe("worker-1")
        expect(raw.pttl).toBeGreaterThan(4000)
        expect(raw.pttl).toBeLessThanOrEqual(5000)
        // A lock of the same id is another resource.
        expect((yield* readKey(`effect-lock:lock:{${id}}`)).value).toBeNull()
      }).pipe(Effect.scoped, Effect.provide(client)))

    test("candidates lead one at a time in arrival order; each resignation hands over with the next term", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("fifo")
        const order = yield* Ref.make<ReadonlyArray<readonly [string, number]>>([])
        const inside = yield* Ref.make(0)
        const candidate = (name: string) =>
          Election.whileLeader({ id, identity: name, lease: 5000 })((leadership) =>
            Effect.gen(function*() {
              expect(yield* Ref.updateAndGet(inside, (n) => n + 1)).toBe(1)
              yield* Ref.update(order, (o) => [...o, [name, leadership.term] as const])
              yield* backend.elapse(20)
              yield* Ref.update(inside, (n) => n - 1)
            })
          ).pipe(Effect.provide(client))
        const a = yield* Effect.fork(candidate("a"))
        yield* until(Ref.get(order), (o) => o.length === 1)
        const b = yield* Effect.fork(candidate("b"))
        yield* until(Election.leader({ id }).pipe(Effect.provide(client)), () => true)
        yield* backend.elapse(5)
        const c = yield* Effect.fork(candidate("c"))
        yield* backend.within(5000, Fiber.join(Fiber.zip(Fiber.zip(a, b), c)))
        // Each hand-over is the next term: consecutive from the first.
        const first = (yield* Ref.get(order))[0]![1]
        expect(yield* Ref.get(order)).toEqual([["a", first], ["b", first + 1], ["c", first + 2]])
        expect(yield* Election.leader({ id }).pipe(Effect.provide(client))).toEqual(Option.none())
      }))

    test("after a resignation only the term counter is left, and it expires a week after the last term", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("ttl")
        const keys = electionKeys("effect-lock:", id)
        const term = yield* Effect.scoped(Effect.map(Election.campaign({ id, lease: 5000 }), (l) => l.term)).pipe(
          Effect.provide(client)
        )
        expect((yield* readKey(keys.lock).pipe(Effect.provide(client))).value).toBeNull()
        const fence = yield* readKey(keys.fence).pipe(Effect.provide(client))
        expect(fence.value).toBe(String(term))
        // Gone, it starts again above every term it gave (docs/fences.md).
        expect(fence.pttl).toBeGreaterThan(7 * 24 * 60 * 60 * 1000 - 60_000)
        for (const key of [keys.queue, keys.alive]) {
          expect(yield* readList(key).pipe(Effect.provide(client))).toEqual([])
        }
      }))

    test("a leader whose lease lapses loses leadership: its work is interrupted with LeadershipLost", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("lapse")
        const interrupted = yield* Deferred.make<void>()
        const term = yield* Ref.make(0)
        const work = Election.whileLeader({ id, lease: backend.short, keepAlive: false })((leadership) =>
          Effect.zipRight(
            Ref.set(term, leadership.term),
            Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
          )
        ).pipe(Effect.provide(client))
        const exit = yield* backend.within(backend.short + backend.margin + 100, Effect.exit(work))
        expect(yield* Deferred.isDone(interrupted)).toBe(true)
        expect(exit).toEqual(Exit.fail(new LeadershipLost({ id, term: yield* Ref.get(term), reason: "expired" })))
      }))

    test("a kept leadership outlives its lease; the next candidate waits for its resignation", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("kept")
        // Long enough for keep-alive steps (every third of it) on a loaded machine.
        const lease = backend.short * 4
        const first = yield* Effect.forkScoped(
          Effect.scoped(Effect.gen(function*() {
            const leadership = yield* Election.campaign({ id, identity: "first", lease })
            yield* backend.elapse(lease * 2)
            expect(yield* leadership.isLost).toBe(false)
            return leadership.term
          })).pipe(Effect.provide(client))
        )
        yield* until(Election.leader({ id }).pipe(Effect.provide(client)), Option.isSome)
        const second = yield* Effect.fork(
          Effect.scoped(Effect.map(Election.campaign({ id, identity: "second", lease }), (l) => l.term)).pipe(
            Effect.provide(client)
          )
        )
        const term = yield* backend.within(lease * 3, Fiber.join(first))
        expect(yield* backend.within(lease * 2, Fiber.join(second))).toBe(term + 1)
      }))

    test("observe gives the leader at once, then every change in order, without duplicates", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("observe")
        const seen = yield* Ref.make<ReadonlyArray<Option.Option<readonly [string, number]>>>([])
        const observer = yield* Effect.forkScoped(
          Election.observe({ id }).pipe(
            Stream.map(Option.map((l) => [l.identity, l.term] as const)),
            Stream.runForEach((l) => Ref.update(seen, (s) => [...s, l])),
            Effect.provide(client)
          )
        )
        yield* until(Ref.get(seen), (s) => s.length === 1)
        const terms: Array<number> = []
        for (const name of ["a", "b", "c"]) {
          yield* Effect.scoped(Effect.gen(function*() {
            terms.push((yield* Election.campaign({ id, identity: name, lease: 5000 })).term)
            yield* until(Ref.get(seen), (s) => Option.exists(s[s.length - 1]!, ([n]) => n === name))
          })).pipe(Effect.provide(client))
          yield* until(Ref.get(seen), (s) => Option.isNone(s[s.length - 1]!))
        }
        // A leader whose lease lapses (no resignation) is seen gone too.
        yield* Effect.gen(function*() {
          terms.push((yield* Election.campaign({ id, identity: "d", lease: backend.short, keepAlive: false })).term)
          yield* until(Ref.get(seen), (s) => s.length === 8)
          yield* backend.elapse(backend.short + backend.margin + 50)
          yield* until(Ref.get(seen), (s) => s.length === 9)
        }).pipe(Effect.scoped, Effect.provide(client))
        yield* Fiber.interrupt(observer)
        // Consecutive terms, each seen exactly as the winner got it (announced or looked up).
        const [first] = terms
        expect(terms).toEqual([first, first! + 1, first! + 2, first! + 3])
        expect(yield* Ref.get(seen)).toEqual([
          Option.none(),
          Option.some(["a", terms[0]]),
          Option.none(),
          Option.some(["b", terms[1]]),
          Option.none(),
          Option.some(["c", terms[2]]),
          Option.none(),
          Option.some(["d", terms[3]]),
          Option.none()
        ])
      }))

    test("observe sees a hand-over between waiting candidates as consecutive terms", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("observe-handover")
        const terms = yield* Ref.make<ReadonlyArray<number>>([])
        const won = yield* Ref.make<ReadonlyArray<number>>([])
        const started = yield* Ref.make(false)
        yield* Effect.forkScoped(
          Election.observe({ id }).pipe(
            Stream.tap(() => Ref.set(started, true)),
            Stream.filterMap((l) => Option.map(l, (l) => l.term)),
            Stream.runForEach((t) => Ref.update(terms, (s) => [...s, t])),
            Effect.provide(client)
          )
        )
        // The observer listens before its first look (on a cluster its first subscription opens a
        // connection to the slot's master): the terms below are won and resigned within milliseconds.
        yield* until(Ref.get(started), (s) => s)
        const candidates = yield* Effect.forEach(
          [0, 1, 2, 3],
          (i) =>
            Effect.fork(
              Election.whileLeader({ id, identity: `c${i}`, lease: 5000 })((leadership) =>
                Effect.zipRight(Ref.update(won, (w) => [...w, leadership.term]), backend.elapse(10))
              ).pipe(Effect.provide(client))
            )
        )
        yield* backend.within(5000, Fiber.join(Fiber.all(candidates)))
        // The four terms are consecutive (each hand-over is the next term).
        const first = (yield* Ref.get(won))[0]!
        expect(yield* Ref.get(won)).toEqual([first, first + 1, first + 2, first + 3])
        const seen = yield* until(Ref.get(terms), (t) => t[t.length - 1] === first + 3)
        // Terms strictly increase; each is seen at most once, and is a term some candidate won.
        expect(seen).toEqual([...seen].sort((x, y) => x - y))
        expect(new Set(seen).size).toBe(seen.length)
        expect(seen.every((t) => t >= first && t <= first + 3)).toBe(true)
      }))

    test("runAsLeader campaigns again after its work ends, and a waiting candidate takes over when it stops", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("requeue")
        const terms = yield* Ref.make<ReadonlyArray<readonly [string, number]>>([])
        const worker = (name: string) =>
          Election.runAsLeader({ id, identity: name, lease: 5000 })((leadership) =>
            Effect.zipRight(Ref.update(terms, (t) => [...t, [name, leadership.term] as const]), backend.elapse(5))
          ).pipe(Effect.provide(client))
        const a = yield* Effect.fork(worker("a"))
        yield* until(Ref.get(terms), (t) => t.length >= 2)
        const b = yield* Effect.fork(worker("b"))
        yield* until(Ref.get(terms), (t) => t.some(([n]) => n === "b"))
        yield* Fiber.interrupt(a)
        const before = (yield* Ref.get(terms)).length
        yield* until(Ref.get(terms), (t) => t.length >= before + 2)
        yield* Fiber.interrupt(b)
        const all = yield* Ref.get(terms)
        // Terms strictly increase across both workers (a term won as `a` was stopped may go unrecorded).
        expect(all.every(([, t], i) => i === 0 || t > all[i - 1]![1])).toBe(true)
        expect(all.slice(-2).every(([n]) => n === "b")).toBe(true)
      }))

    test("singleton runs its work for as long as the layer lives", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("singleton")
        const runs = yield* Ref.make(0)
        const layer = Election.singleton(
          { id, identity: "only" },
          Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.never)
        )
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(layer.pipe(Layer.provide(client)))
          yield* until(Ref.get(runs), (n) => n === 1)
          expect(Option.map(yield* Election.leader({ id }).pipe(Effect.provide(client)), (l) => l.identity)).toEqual(
            Option.some("only")
          )
        }))
        yield* until(Election.leader({ id }).pipe(Effect.provide(client)), Option.isNone)
      }))

    test("bad input is InvalidOptions before anything is sent", (client) =>
      Effect.gen(function*() {
        const id = yield* uniqueId("invalid")
        const bad: ReadonlyArray<readonly [string, Election.Options]> = [
          ["id", { id: "" }],
          ["identity", { id, identity: "" }],
          ["identity", { id, identity: "two\nlines" }],
          ["identity", { id, identity: "x".repeat(257) }],
          ["lease", { id, lease: 0 }],
          ["lease", { id, lease: -5 }],
          ["timeout", { id, timeout: -1 }]
        ]
        for (const [option, options] of bad) {
          const entries: ReadonlyArray<Effect.Effect<unknown, unknown, Redis>> = [
            Effect.scoped(Election.campaign(options)),
            Election.whileLeader(options)(Effect.void),
            Election.runAsLeader(options)(Effect.void)
          ]
          for (const entry of entries) {
            const error = yield* Effect.flip(entry.pipe(Effect.provide(client)))
            expect(error).toBeInstanceOf(InvalidOptions)
            expect((error as InvalidOptions).option).toBe(option)
          }
        }
        const looked = yield* Effect.either(Election.leader({ id: "" }).pipe(Effect.provide(client)))
        expect(looked._tag === "Left" && looked.left).toBeInstanceOf(InvalidOptions)
        const streamed = yield* Effect.either(
          Stream.runDrain(Election.observe({ id: "" })).pipe(Effect.provide(client))
        )
        expect(streamed._tag === "Left" && streamed.left).toBeInstanceOf(InvalidOptions)
        expect((yield* readKey(electionKeys("effect-lock:", id).fence).pipe(Effect.provide(client))).value).toBeNull()
        expect((yield* readKey(electionKeys("effect-lock:", "").lock).pipe(Effect.provide(client))).value).toBeNull()
      }))
  })
