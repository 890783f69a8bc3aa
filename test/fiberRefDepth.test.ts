/**
 * The FiberRef-depth probe that regression tests use (test/utils/fiberRefDepth.ts), checked against the
 * Effect 3.22 behaviour it exists to catch (reproduced at length in bench/fiberref-growth.ts).
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { maxFiberRefStackDepth, runtimeFlagsStackDepth } from "./utils/fiberRefDepth.js"

const N = 200
const repeat = <E>(body: Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < N; i++) yield* body
  })

it.effect("a scoped resource without a timeout leaves the fiber's stacks as they were", () =>
  Effect.gen(function*() {
    const before = yield* maxFiberRefStackDepth
    yield* repeat(Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void)))
    expect(yield* maxFiberRefStackDepth).toBe(before)
  }))

it.effect("scoped(acquireRelease(…).pipe(timeout(…))) in one fiber grows its runtime-flags stack every call", () =>
  Effect.gen(function*() {
    const before = yield* runtimeFlagsStackDepth
    yield* repeat(Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void).pipe(Effect.timeout("1 second"))))
    const after = yield* runtimeFlagsStackDepth
    expect(after - before).toBeGreaterThanOrEqual(N)
    expect(yield* maxFiberRefStackDepth).toBeGreaterThanOrEqual(after)
  }))
