/**
 * A worker loop runs the same acquisition for as long as the process lives: nothing may grow with the
 * number of calls. Effect 3.22 grows a fiber's FiberRef stacks when
 * `Effect.scoped(Effect.acquireRelease(…).pipe(Effect.timeout(…)))` repeats in one fiber
 * (bench/fiberref-growth.ts reproduces it); the lock must not have that shape, whatever the options.
 * Deterministic: it counts stack entries, it does not time anything.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Lock from "../src/Lock.js"
import * as Memory from "../src/Redis/Memory.js"
import { maxFiberRefStackDepth as deepestFiberRefStack } from "./utils/fiberRefDepth.js"
import { turnEventLoop } from "./utils/live.js"

const loops = {
  "withLock with a timeout": Lock.withLock({ id: "queue", timeout: "5 seconds" })(Effect.void),
  "withLease with a timeout": Lock.withLease({ id: "queue", timeout: "5 seconds" }, () => Effect.void),
  "scoped acquire with a timeout": Effect.scoped(Lock.acquire({ id: "queue", timeout: "5 seconds" })),
  "withLockIfAvailable": Lock.withLockIfAvailable({ id: "queue" })(Effect.void)
} as const

/** `self` `times` times in this fiber, letting the event loop turn every 200 (see `turnEventLoop`). */
const repeat = <E, R>(self: Effect.Effect<unknown, E, R>, times: number) =>
  Effect.gen(function*() {
    for (let i = 1; i <= times; i++) {
      yield* self
      if (i % 200 === 0) yield* turnEventLoop
    }
  })

describe("long-running loops", () => {
  for (const [name, once] of Object.entries(loops)) {
    it.effect(
      `${name}, 20,000 times in one fiber: the fiber's FiberRef stacks stay bounded`,
      () =>
        Effect.gen(function*() {
          const before = yield* deepestFiberRefStack
          yield* repeat(once, 1000)
          const early = yield* deepestFiberRefStack
          yield* repeat(once, 19_000)
          const late = yield* deepestFiberRefStack
          expect(late).toBe(early)
          expect(late).toBeLessThanOrEqual(before + 2)
        }).pipe(Effect.provide(Memory.layer)),
      120_000
    )
  }
})
