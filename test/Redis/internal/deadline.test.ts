/** The shared per-call bound, under TestClock: one timer for every call, no race per call. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, TestClock } from "effect"
import * as Deadline from "../../../src/Redis/internal/deadline.js"

const never = () => new Promise<number>(() => {})
const settled = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("Deadline", () => {
  it.scoped("a call with no answer fails exactly at the bound; calls started later fail later", () =>
    Effect.gen(function*() {
      const { call } = yield* Deadline.make("1 second")
      const first = yield* Effect.fork(call(never, () => "error", () => "timeout"))
      yield* TestClock.adjust(400)
      const second = yield* Effect.fork(call(never, () => "error", () => "timeout"))
      yield* TestClock.adjust(599)
      expect(yield* settled(first)).toBe(false)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.await(first)).toEqual(Exit.fail("timeout"))
      expect(yield* settled(second)).toBe(false)
      yield* TestClock.adjust(400)
      expect(yield* Fiber.await(second)).toEqual(Exit.fail("timeout"))
    }))

  it.scoped("answers and rejections in time pass through, and a throw is an error", () =>
    Effect.gen(function*() {
      const { call } = yield* Deadline.make("1 second")
      expect(yield* call(() => Promise.resolve(7), () => "error", () => "timeout")).toBe(7)
      expect(yield* Effect.flip(call(() => Promise.reject(new Error("x")), (e) => (e as Error).message, () => "timeout")))
        .toBe("x")
      expect(yield* Effect.flip(call(() => { throw new Error("sync") }, (e) => (e as Error).message, () => "timeout")))
        .toBe("sync")
      // nothing pending: the timer is parked, and a later call still gets its full bound
      yield* TestClock.adjust(10_000)
      const late = yield* Effect.fork(call(never, () => "error", () => "timeout"))
      yield* TestClock.adjust(999)
      expect(yield* settled(late)).toBe(false)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.await(late)).toEqual(Exit.fail("timeout"))
    }))

  it.scoped("an interrupted call is forgotten; the others keep their bounds", () =>
    Effect.gen(function*() {
      const { call } = yield* Deadline.make("1 second")
      const a = yield* Effect.fork(call(never, () => "error", () => "timeout"))
      yield* TestClock.adjust(100)
      const b = yield* Effect.fork(call(never, () => "error", () => "timeout"))
      yield* Fiber.interrupt(a)
      yield* TestClock.adjust(1000)
      expect(yield* Fiber.await(b)).toEqual(Exit.fail("timeout"))
    }))
})
