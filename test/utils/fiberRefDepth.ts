/**
 * How deep the current fiber's FiberRef stacks are. Each FiberRef a fiber has set keeps a stack of
 * `[fiberId, value]` entries (`FiberRefs.locals`); a pattern that pushes without popping makes one grow
 * with every call, and everything that copies or diffs the fiber's refs slows down with it. Deterministic
 * (no timing): a regression test asserts the depth stays bounded over many iterations.
 */
import { Effect, FiberRef } from "effect"

/** The deepest FiberRef stack of the current fiber (the max over every ref it holds). */
export const maxFiberRefStackDepth: Effect.Effect<number> = Effect.withFiberRuntime((fiber) => {
  let max = 0
  for (const stack of fiber.getFiberRefs().locals.values()) max = Math.max(max, stack.length)
  return Effect.succeed(max)
})

/** The depth of the current fiber's runtime-flags stack (`FiberRef.currentRuntimeFlags`), 0 when unset. */
export const runtimeFlagsStackDepth: Effect.Effect<number> = Effect.withFiberRuntime((fiber) =>
  Effect.succeed(fiber.getFiberRefs().locals.get(FiberRef.currentRuntimeFlags)?.length ?? 0)
)
