/**
 * `withLease` hands the body its lease; `withLock` scopes only the lease: the body's own resources
 * belong to the caller's scope.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope, TestClock } from "effect"
import * as Lock from "../src/Lock.js"
import * as Memory from "../src/Redis/Memory.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"

describe("withLease", () => {
  it.effect("the body gets the lease, and its fence is the acquisition's", () =>
    Effect.gen(function*() {
      const first = yield* Lock.withLease({ id: "fenced" }, (lease) => Effect.succeed(lease.fence))
      const second = yield* Lock.withLease({ id: "fenced" }, (lease) => Effect.succeed(lease.fence))
      expect(second).toBeGreaterThan(first)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("a lost lease interrupts the body with LockLost", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const fiber = yield* Effect.fork(
        Lock.withLease({ id: "stolen", lease: 3000 }, () =>
          Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true))))
      )
      yield* TestClock.adjust(500)
      yield* MemoryTest.steal("stolen")
      yield* TestClock.adjust(1000) // the next keep-alive finds another owner
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("LockLost")
      expect(yield* Ref.get(interrupted)).toBe(true)
    }).pipe(Effect.provide(MemoryTest.layer)))
})

describe("withLock scopes the lease only", () => {
  it.effect("a finalizer the body adds runs when the caller's scope closes, after the lock was released", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const scope = yield* Scope.make()
      const body = Effect.addFinalizer(() => Effect.sync(() => events.push("body's resource closed"))).pipe(
        Effect.zipRight(Effect.sync(() => events.push("body done")))
      )
      const guarded = Lock.withLock(body, { id: "scoped" })
      // `Scope` stays in the requirements (a compile-time check): the caller provides it.
      const requiresScope: [Scope.Scope] extends [Effect.Effect.Context<typeof guarded>] ? true : false = true
      expect(requiresScope).toBe(true)
      yield* Scope.extend(guarded, scope).pipe(Effect.provide(Memory.layer))
      events.push("withLock returned")
      yield* Scope.close(scope, Exit.void)
      expect(events).toEqual(["body done", "withLock returned", "body's resource closed"])
    }))
})
