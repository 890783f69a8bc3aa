/**
 * An acquisition's span, made by hand: `Effect.withSpan` would put it in the fiber's context (two
 * FiberRef writes, each a copy of the fiber's refs: kilobytes per acquisition). The span is a child of
 * the caller's current span and ends when the lease is released (or the acquisition fails), so it
 * covers the wait and the hold; an `acquired` event marks where one ends and the other begins. Every
 * primitive's span has this shape: name `<Module>.<op>`, attributes `lock.primitive`, `lock.id` and,
 * once won, `lock.fence`.
 */
import { Clock, Context, type Exit, type Fiber, Tracer } from "effect"
import type { Primitive } from "./resource.js"

export interface AcquisitionSpan {
  readonly acquired: (fence: number) => void
  readonly end: (exit: Exit.Exit<unknown, unknown>) => void
}

/** Starts the span `name` of `primitive` `id`, under the fiber's current span. */
export const start = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  name: string,
  primitive: Primitive,
  id: string
): AcquisitionSpan => {
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  const parent = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
  const span = fiber.currentTracer.span(
    name,
    parent,
    fiber.currentContext,
    [],
    clock.unsafeCurrentTimeNanos(),
    "internal"
  )
  span.attribute("lock.primitive", primitive)
  span.attribute("lock.id", id)
  return {
    acquired: (fence) => {
      span.attribute("lock.fence", fence)
      span.event("acquired", clock.unsafeCurrentTimeNanos())
    },
    end: (exit) => span.end(clock.unsafeCurrentTimeNanos(), exit)
  }
}
