/**
 * The lock's span, made by hand: `Effect.withSpan` would put it in the fiber's context (two FiberRef
 * writes, each a copy of the fiber's refs: kilobytes per acquisition). This span is a child of the
 * caller's current span and ends when the lease is released (or the acquisition fails), so it covers
 * the wait and the hold; an `acquired` event marks where one ends and the other begins.
 */
import { Clock, Context, type Exit, type Fiber, Tracer } from "effect"

export interface LockSpan {
  readonly acquired: (fence: number) => void
  readonly end: (exit: Exit.Exit<unknown, unknown>) => void
}

/** Starts the span `Lock.acquire` with the lock id as an attribute, under the fiber's current span. */
export const start = (fiber: Fiber.RuntimeFiber<unknown, unknown>, id: string): LockSpan => {
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  const parent = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
  const span = fiber.currentTracer.span(
    "Lock.acquire",
    parent,
    fiber.currentContext,
    [],
    clock.unsafeCurrentTimeNanos(),
    "internal"
  )
  span.attribute("lock.id", id)
  return {
    acquired: (fence) => {
      span.attribute("lock.fence", fence)
      span.event("acquired", clock.unsafeCurrentTimeNanos())
    },
    end: (exit) => span.end(clock.unsafeCurrentTimeNanos(), exit)
  }
}
