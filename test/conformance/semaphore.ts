/**
 * The Semaphore conformance suite: the same cases for every backend (./backends.ts), each with a Redis
 * provided.
 */
import { describe, expect } from "@effect/vitest"
import { Clock, Effect, Exit, FastCheck as fc, Fiber, Option, Ref, Scope } from "effect"
import { semaphoreKeyList, semaphoreKeys } from "../../src/internal/keys.js"
import * as scripts from "../../src/internal/semaphore/scripts.js"
import { randomToken } from "../../src/internal/token.js"
import { Redis } from "../../src/Redis.js"
import * as Semaphore from "../../src/Semaphore.js"
import { eventually } from "../utils/live.js"
import { readKey, readList, uniqueId } from "../utils/probe.js"
import { raw } from "../utils/semaphoreProbe.js"
import type { Backend } from "./backends.js"

export const semaphoreConformance = (backend: Backend) =>
  describe(`Semaphore conformance: ${backend.name}`, () => {
    /** One test, with one client provided; the body in a scope of its own, so holdings are given back while the connection is open. */
    const test = (name: string, body: Effect.Effect<void, unknown, Redis | Scope.Scope>) =>
      backend.test(name, (client) => Effect.provide(Effect.scoped(body), client))
    const once = { retry: { attempts: 1 } } as const
    const until = (cond: Effect.Effect<boolean, unknown, Redis>) => eventually(cond, (holds) => holds)
    const inLine = (id: string, length: number) =>
      Effect.map(readList(semaphoreKeys("effect-lock:", id).queue), (line) => line.length === length)

    test(
      "takes up to `permits`, then a plain try is not acquired; fences strictly increase",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-fill")
        const sem = yield* Semaphore.make({ id, permits: 3 })
        const a = yield* sem.take(1, once)
        const b = yield* sem.take(2, once)
        expect(b.fence).toBeGreaterThan(a.fence)
        expect(yield* sem.available).toBe(0)
        const miss = yield* Effect.flip(sem.take(1, once))
        expect(miss._tag).toBe("LockNotAcquired")
        expect(miss).toMatchObject({ id, reason: "held" })
        expect(yield* sem.withPermitsIfAvailable(1)(Effect.succeed("ran"))).toEqual(Option.none())
      })
    )

    test(
      "n permits are taken all at once or not at all",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-atomic")
        const sem = yield* Semaphore.make({ id, permits: 3 })
        yield* sem.take(2, once)
        expect((yield* Effect.flip(sem.take(2, once)))._tag).toBe("LockNotAcquired")
        expect(yield* sem.available).toBe(1)
        expect(yield* sem.withPermitsIfAvailable(1)(Effect.succeed("ran"))).toEqual(Option.some("ran"))
      })
    )

    test(
      "closing the scope gives the permits back and wakes a waiter",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-wake")
        const sem = yield* Semaphore.make({ id, permits: 2 })
        const scope = yield* Scope.make()
        yield* Scope.extend(sem.take(2, once), scope)
        const waiter = yield* Effect.fork(sem.withPermits(2, { timeout: 5000 })(Effect.succeed("mine")))
        yield* until(inLine(id, 1))
        yield* Scope.close(scope, Exit.void)
        expect(yield* backend.within(1000, Fiber.join(waiter))).toBe("mine")
        expect(yield* sem.available).toBe(2)
      })
    )

    test(
      "a waiter for many is not overtaken by a later waiter for fewer",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-fifo")
        const sem = yield* Semaphore.make({ id, permits: 3 })
        const order = yield* Ref.make<ReadonlyArray<string>>([])
        const big = yield* Scope.make()
        const small = yield* Scope.make()
        yield* Scope.extend(sem.take(2, once), big)
        yield* Scope.extend(sem.take(1, once), small)
        const run = (name: string, n: number) =>
          Effect.fork(sem.withPermits(n, { timeout: 10_000 })(Ref.update(order, (o) => [...o, name])))
        const a = yield* run("a", 3)
        yield* until(inLine(id, 1))
        const b = yield* run("b", 1)
        yield* until(inLine(id, 2))
        yield* Scope.close(small, Exit.void)
        // One permit is free, enough for b, but a is first in line.
        yield* until(Effect.map(sem.available, (n) => n === 1))
        expect(yield* Ref.get(order)).toEqual([])
        expect(yield* inLine(id, 2)).toBe(true)
        yield* Scope.close(big, Exit.void)
        yield* backend.within(2000, Fiber.join(a))
        yield* backend.within(2000, Fiber.join(b))
        expect(yield* Ref.get(order)).toEqual(["a", "b"])
      })
    )

    test(
      "a holder that stops extending loses its permits when its lease ends",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-expire")
        const sem = yield* Semaphore.make({ id, permits: 2, lease: backend.short })
        yield* sem.take(2, { ...once, keepAlive: false })
        expect(yield* sem.available).toBe(0)
        yield* backend.elapse(backend.short + backend.margin + 1)
        expect(yield* sem.available).toBe(2)
        const other = yield* Semaphore.make({ id, permits: 2 })
        expect(yield* other.withPermitsIfAvailable(2)(Effect.succeed("ran"))).toEqual(Option.some("ran"))
      })
    )

    test(
      "processes that disagree on `permits` get InvalidOptions until the semaphore is empty",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-mismatch")
        const three = yield* Semaphore.make({ id, permits: 3 })
        const five = yield* Semaphore.make({ id, permits: 5 })
        const scope = yield* Scope.make()
        yield* Scope.extend(three.take(1, once), scope)
        const error = yield* Effect.flip(five.take(1, once))
        expect(error).toMatchObject({ _tag: "InvalidOptions", option: "permits", received: "5" })
        expect(yield* inLine(id, 0)).toBe(true)
        yield* Scope.close(scope, Exit.void)
        expect(yield* five.withPermitsIfAvailable(5)(Effect.succeed("ran"))).toEqual(Option.some("ran"))
      })
    )

    test(
      "bad n (0, above permits, fractional, NaN) is InvalidOptions with nothing sent",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-bad")
        const sem = yield* Semaphore.make({ id, permits: 3 })
        for (const n of [0, 4, 1.5, NaN, -1]) {
          const error = yield* Effect.flip(sem.take(n, once))
          expect(error._tag).toBe("InvalidOptions")
        }
        for (const key of semaphoreKeyList(semaphoreKeys("effect-lock:", id))) {
          expect((yield* readKey(key)).pttl).toBe(-2)
        }
        expect((yield* Effect.flip(Semaphore.make({ id, permits: 0 })))._tag).toBe("InvalidOptions")
        expect((yield* Effect.flip(Semaphore.make({ id, permits: 2.5 })))._tag).toBe("InvalidOptions")
      })
    )

    test(
      "a release by a token that holds nothing returns 0 and frees nothing",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-nonowner")
        const sem = yield* Semaphore.make({ id, permits: 1 })
        yield* sem.take(1, once)
        const redis = yield* Redis
        const keys = semaphoreKeys("effect-lock:", id)
        expect(yield* redis.run(scripts.release.script, semaphoreKeyList(keys), [randomToken(), "1", keys.channel]))
          .toBe(
            false
          )
        expect(yield* sem.available).toBe(0)
      })
    )

    test(
      "an interrupted waiter leaves the line",
      Effect.gen(function*() {
        const id = yield* uniqueId("sem-interrupt")
        const sem = yield* Semaphore.make({ id, permits: 1 })
        yield* sem.take(1, once)
        const waiter = yield* Effect.fork(sem.withPermits(1, { timeout: 60_000 })(Effect.void))
        yield* until(inLine(id, 1))
        yield* Fiber.interrupt(waiter)
        expect(yield* inLine(id, 0)).toBe(true)
      })
    )

    backend.prop(
      "random take/release/leave/expire by several owners agree with a model and never exceed permits",
      fc.array(modelOp(backend.exactTime), { maxLength: 30 }),
      (ops) => agreesWithModel(ops, backend),
      backend.exactTime ? 300 : 30
    )

    test(
      "every key of an id shares its hash tag",
      Effect.sync(() => {
        const keys = semaphoreKeys("p:", "a{b}")
        for (const key of [...semaphoreKeyList(keys), keys.channel]) {
          expect(key.startsWith("p:semaphore:{a{b}}")).toBe(true)
        }
      })
    )
  })

const PERMITS = 3

type ModelOp =
  | { readonly kind: "take"; readonly owner: number; readonly n: number; readonly fair: boolean }
  | { readonly kind: "release" | "leave"; readonly owner: number }
  | { readonly kind: "elapse"; readonly ms: number }

/** An operation of one of four owners; time passes only where it is exact (TestClock). */
const modelOp = (exactTime: boolean): fc.Arbitrary<ModelOp> => {
  const owner = fc.nat(3)
  return fc.oneof(
    fc.record({
      kind: fc.constant("take" as const),
      owner,
      n: fc.integer({ min: 1, max: PERMITS }),
      fair: fc.boolean()
    }),
    fc.record({ kind: fc.constant("release" as const), owner }),
    fc.record({ kind: fc.constant("leave" as const), owner }),
    ...(exactTime
      ? [fc.record({ kind: fc.constant("elapse" as const), ms: fc.constantFrom(1, 300, 999, 1000, 1001) })]
      : [])
  )
}

let run = 0

/**
 * Runs `ops` by four owners of one semaphore (3 permits) through its scripts and checks every answer, the
 * permits available and the line against a model. On a real server time is not exact: nothing may expire
 * by itself while a run lasts, so leases and waiters last 10 minutes there.
 */
const agreesWithModel = (ops: ReadonlyArray<ModelOp>, backend: Backend) =>
  Effect.gen(function*() {
    const lease = backend.exactTime ? 1000 : 600_000
    const alive = backend.exactTime ? 1000 : 600_000
    const s = yield* raw(yield* uniqueId(`model-${run++}`), { alive })
    const now = () => (backend.exactTime ? Clock.currentTimeMillis : Effect.succeed(0))
    const holders = new Map<string, { n: number; until: number; fence: number }>()
    const line: Array<{ token: string; n: number; until: number }> = []
    let lastFence = 0
    for (const o of ops) {
      const t = yield* now()
      for (const [token, h] of holders) if (h.until < t) holders.delete(token)
      for (let i = line.length - 1; i >= 0; i--) if (line[i]!.until < t) line.splice(i, 1)
      const used = [...holders.values()].reduce((sum, h) => sum + h.n, 0)
      expect(used).toBeLessThanOrEqual(PERMITS)
      expect(yield* s.available).toBe(PERMITS - used)
      if (o.kind === "elapse") {
        yield* backend.elapse(o.ms)
        continue
      }
      const token = `owner-${o.owner}`
      if (o.kind === "take") {
        const reply = yield* s.take(token, o.n, lease, o.fair)
        const mine = holders.get(token)
        if (mine !== undefined) {
          expect(reply).toEqual({ _tag: "Taken", fence: mine.fence })
          mine.until = Math.max(mine.until, t + lease)
          continue
        }
        const head = line[0]?.token
        if (o.n <= PERMITS - used && (head === undefined || head === token)) {
          expect(reply._tag).toBe("Taken")
          if (reply._tag === "Taken") {
            expect(reply.fence).toBeGreaterThan(lastFence)
            lastFence = reply.fence
            holders.set(token, { n: o.n, until: t + lease, fence: reply.fence })
          }
          const i = line.findIndex((w) => w.token === token)
          if (i >= 0) line.splice(i, 1)
        } else {
          expect(reply._tag).toBe("Waiting")
          if (o.fair) {
            const waiting = line.find((w) => w.token === token)
            if (waiting === undefined) line.push({ token, n: o.n, until: t + alive })
            else {
              waiting.until = t + alive
              waiting.n = o.n
            }
          }
        }
      } else if (o.kind === "release") {
        expect(yield* s.release(token)).toBe(holders.delete(token))
      } else {
        const i = line.findIndex((w) => w.token === token)
        if (i >= 0) line.splice(i, 1)
        expect(yield* s.leave(token)).toBe(holders.delete(token))
      }
      expect(yield* s.line).toEqual(line.map((w) => w.token))
    }
  })
