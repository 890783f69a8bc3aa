/**
 * The Semaphore conformance suite: the same cases for every backend (see ./lock.ts for `Backend`).
 */
import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Ref, Scope } from "effect"
import { semaphoreKeyList, semaphoreKeys } from "../../src/internal/keys.js"
import * as scripts from "../../src/internal/semaphore/scripts.js"
import { randomToken } from "../../src/internal/token.js"
import { Redis } from "../../src/Redis.js"
import * as Semaphore from "../../src/Semaphore.js"
import { readKey, readList, uniqueId } from "../utils/probe.js"
import type { Backend } from "./lock.js"

export const semaphoreConformance = (backend: Backend) =>
  describe(`Semaphore conformance: ${backend.name}`, () => {
    /** Each body in a scope of its own, so holdings are given back while the connection is open. */
    const test = (name: string, body: Effect.Effect<void, unknown, Redis | Scope.Scope>) =>
      backend.test(name, Effect.scoped(body))
    const once = { retry: { attempts: 1 } } as const
    /** Waits until `cond` holds: yielding on TestClock, sleeping briefly on a real server. */
    const until = (cond: Effect.Effect<boolean, unknown, Redis>): Effect.Effect<void, unknown, Redis> =>
      Effect.gen(function*() {
        for (let i = 0; i < 2000; i++) {
          if (yield* cond) return
          yield* backend.exactTime ? Effect.yieldNow() : Effect.sleep(5)
        }
        return yield* Effect.dieMessage("condition never held")
      })
    const inLine = (id: string, length: number) =>
      Effect.map(readList(semaphoreKeys("effect-lock:", id).queue), (line) => line.length === length)

    test("takes up to `permits`, then a plain try is not acquired; fences strictly increase", Effect.gen(function*() {
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
    }))

    test("n permits are taken all at once or not at all", Effect.gen(function*() {
      const id = yield* uniqueId("sem-atomic")
      const sem = yield* Semaphore.make({ id, permits: 3 })
      yield* sem.take(2, once)
      expect((yield* Effect.flip(sem.take(2, once)))._tag).toBe("LockNotAcquired")
      expect(yield* sem.available).toBe(1)
      expect(yield* sem.withPermitsIfAvailable(1)(Effect.succeed("ran"))).toEqual(Option.some("ran"))
    }))

    test("closing the scope gives the permits back and wakes a waiter", Effect.gen(function*() {
      const id = yield* uniqueId("sem-wake")
      const sem = yield* Semaphore.make({ id, permits: 2 })
      const scope = yield* Scope.make()
      yield* Scope.extend(sem.take(2, once), scope)
      const waiter = yield* Effect.fork(sem.withPermits(2, { timeout: 5000 })(Effect.succeed("mine")))
      yield* until(inLine(id, 1))
      yield* Scope.close(scope, Exit.void)
      expect(yield* backend.within(1000, Fiber.join(waiter))).toBe("mine")
      expect(yield* sem.available).toBe(2)
    }))

    test("a waiter for many is not overtaken by a later waiter for fewer", Effect.gen(function*() {
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
    }))

    test("a holder that stops extending loses its permits when its lease ends", Effect.gen(function*() {
      const id = yield* uniqueId("sem-expire")
      const sem = yield* Semaphore.make({ id, permits: 2, lease: backend.shortLease })
      yield* sem.take(2, { ...once, keepAlive: false })
      expect(yield* sem.available).toBe(0)
      yield* backend.elapse(backend.shortLease + backend.margin + 1)
      expect(yield* sem.available).toBe(2)
      const other = yield* Semaphore.make({ id, permits: 2 })
      expect(yield* other.withPermitsIfAvailable(2)(Effect.succeed("ran"))).toEqual(Option.some("ran"))
    }))

    test("processes that disagree on `permits` get InvalidOptions until the semaphore is empty", Effect.gen(function*() {
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
    }))

    test("bad n (0, above permits, fractional, NaN) is InvalidOptions with nothing sent", Effect.gen(function*() {
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
    }))

    test("a release by a token that holds nothing returns 0 and frees nothing", Effect.gen(function*() {
      const id = yield* uniqueId("sem-nonowner")
      const sem = yield* Semaphore.make({ id, permits: 1 })
      yield* sem.take(1, once)
      const redis = yield* Redis
      const keys = semaphoreKeys("effect-lock:", id)
      expect(yield* redis.run(scripts.release, semaphoreKeyList(keys), [randomToken(), "1", keys.channel])).toBe(false)
      expect(yield* sem.available).toBe(0)
    }))

    test("an interrupted waiter leaves the line", Effect.gen(function*() {
      const id = yield* uniqueId("sem-interrupt")
      const sem = yield* Semaphore.make({ id, permits: 1 })
      yield* sem.take(1, once)
      const waiter = yield* Effect.fork(sem.withPermits(1, { timeout: 60_000 })(Effect.void))
      yield* until(inLine(id, 1))
      yield* Fiber.interrupt(waiter)
      expect(yield* inLine(id, 0)).toBe(true)
    }))

    test("every key of an id shares its hash tag", Effect.sync(() => {
      const keys = semaphoreKeys("p:", "a{b}")
      for (const key of [...semaphoreKeyList(keys), keys.channel]) expect(key.startsWith("p:semaphore:{a{b}}")).toBe(true)
    }))
  })
