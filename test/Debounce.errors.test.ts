/**
 * What each Debounce entry point can fail with: `make` with InvalidOptions; `layer` with nothing (a bad
 * option is a defect when it is built); `call` with the callback's own errors, RedisError and
 * InvalidOptions for arguments, and never with the run lock's LockLost or LockNotAcquired.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Cause, Context, Effect, Equal, Exit, Fiber, Option, TestClock } from "effect"
import * as Debounce from "../src/Debounce.js"
import { type InvalidOptions, LockLost, type RedisError } from "../src/LockError.js"
import type { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"

class Notify extends Context.Tag("test/Notify")<Notify, Debounce.Debounce<[user: string], string>>() {}

/** Compiles only if `A` and `B` are the same type. */
const sameType = <A, B>(_: [A] extends [B] ? ([B] extends [A] ? true : false) : false) => {}

describe("Debounce error channels", () => {
  it("layer: no error type for options written in code; call: the callback's errors, RedisError and InvalidOptions", () => {
    const _notifyLive = Debounce.layer(Notify, {
      id: "notify",
      wait: "1 second",
      callback: (user: string) => Effect.succeed(user)
    })
    sameType<typeof _notifyLive, Layer.Layer<Notify, never, Redis>>(true)
    const _call = Effect.flatMap(
      Debounce.make({
        id: "typed",
        callback: (n: number) => n > 0 ? Effect.succeed(n) : Effect.fail("negative" as const)
      }),
      (d) => d.call(1)
    )
    sameType<Effect.Effect.Error<typeof _call>, "negative" | RedisError | InvalidOptions>(true)
  })

  it.effect("layer: a bad option stops the layer with an InvalidOptions defect naming it, before Redis is touched", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.provide(Notify, Debounce.layer(Notify, { id: "", callback: (user: string) => Effect.succeed(user) }))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const defect = Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : Option.none()
      expect(defect).toEqual(Option.some(expect.objectContaining({ _tag: "InvalidOptions", option: "id" })))
      expect(yield* MemoryTest.keyspace).toEqual({})
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("call: a run whose lock is lost mid-way is interrupted and fails with RedisError, not LockLost", () =>
    Effect.gen(function*() {
      const started: Array<string> = []
      const d = yield* Debounce.make({
        id: "report",
        wait: 100,
        key: (tenant: string) => tenant,
        callback: (tenant: string) => Effect.zipRight(Effect.sync(() => started.push(tenant)), Effect.never)
      })
      const call = yield* Effect.fork(d.call("acme"))
      yield* TestClock.adjust(100)
      expect(started).toEqual(["acme"])
      // the run lock of key "acme": id "6:report:acme" (length-prefixed), under "<prefix>debounce:"
      yield* MemoryTest.expire("6:report:acme", { prefix: "effect-lock:debounce:" })
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(Fiber.join(call))
      expect(error).toMatchObject({ _tag: "RedisError", operation: "debounce run lock" })
      expect(error.message).toContain("report")
    }).pipe(Effect.provide(MemoryTest.layer)))

  it.effect("call: the callback's own LockLost reaches the caller as it is", () =>
    Effect.gen(function*() {
      const own = new LockLost({ id: "inner", fence: 7, reason: "expired" })
      const d = yield* Debounce.make({ id: "nested", wait: 10, callback: () => Effect.fail(own) })
      const call = yield* Effect.fork(d.call())
      yield* TestClock.adjust(10)
      const got = yield* Effect.flip(Fiber.join(call))
      // the same value (Effect may hand back a copy of an Error that crossed a span)
      expect(got).toBeInstanceOf(LockLost)
      expect(Equal.equals(got, own)).toBe(true)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("make: a prefix that would make the run lock's prefix too long is InvalidOptions", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Debounce.make({ id: "p", prefix: "x".repeat(250), callback: () => Effect.void }))
      expect(error).toMatchObject({ _tag: "InvalidOptions", option: "prefix" })
      const ok = yield* Debounce.make({ id: "p", prefix: "x".repeat(247), wait: 10, callback: () => Effect.succeed(1) })
      const call = yield* Effect.fork(ok.call())
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(call)).toEqual({ _tag: "Ran", edge: "trailing", result: 1 })
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Debounce key names", () => {
  it.effect("no raw control character of ours in any key: the run lock's id is length-prefixed and printable", () =>
    Effect.gen(function*() {
      const seen = new Set<string>()
      const d = yield* Debounce.make({
        id: "digest",
        wait: 100,
        key: (user: string) => user,
        callback: (_user: string) =>
          Effect.flatMap(
            MemoryTest.keyspace,
            (keys) => Effect.sync(() => Object.keys(keys).forEach((k) => seen.add(k)))
          )
      })
      const call = yield* Effect.fork(d.call("ann"))
      yield* TestClock.adjust(100)
      yield* Fiber.join(call)
      expect([...seen]).toContain("effect-lock:debounce:lock:{6:digest:ann}")
      for (const key of seen) {
        expect([...key].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)).toBe(false)
      }
    }).pipe(Effect.provide(MemoryTest.layer)))
})
