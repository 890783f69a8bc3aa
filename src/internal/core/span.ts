/**
 * An acquisition's span, made by hand: `Effect.withSpan` would put it in the fiber's context (two
 * FiberRef writes, each a copy of the fiber's refs: kilobytes per acquisition). The span is a child of
 * the caller's current span and ends when the lease is released (or the acquisition fails), so it
 * covers the wait and the hold; an `acquired` event marks where one ends and the other begins. Every
 * primitive's span has this shape: name `<Module>.<op>`, attributes `lock.primitive`, `lock.id`,
 * `lock.acquired` and, once won, `lock.fence`.
 *
 * Finding the resource held is an answer, not a fault: an acquisition that gave up because another
 * owner holds it (`LockNotAcquired` `"held"`: `withLockIfAvailable`, the handle's `false`, tries used
 * up) ends its span OK with `lock.acquired: false`; a `"timeout"` is the caller's deadline missed and
 * ends it as a failure (OTel status ERROR), as does any other error. Once won, the span ends with the
 * hold's exit, whatever it is.
 */
import { Cause, Clock, Context, Exit, type Fiber, Option, Tracer } from "effect"
import { LockNotAcquired } from "../../LockError.js"
import type { Primitive } from "./resource.js"

export interface AcquisitionSpan {
  readonly acquired: (fence: number) => void
  readonly end: (exit: Exit.Exit<unknown, unknown>) => void
}

/** Whether `exit` is the answer "another owner holds it" (not a fault). */
const foundHeld = (exit: Exit.Exit<unknown, unknown>): boolean => {
  if (Exit.isSuccess(exit)) return false
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof LockNotAcquired && failure.value.reason === "held"
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
  let won = false
  return {
    acquired: (fence) => {
      won = true
      span.attribute("lock.acquired", true)
      span.attribute("lock.fence", fence)
      span.event("acquired", clock.unsafeCurrentTimeNanos())
    },
    end: (exit) => {
      if (!won) span.attribute("lock.acquired", false)
      span.end(clock.unsafeCurrentTimeNanos(), !won && foundHeld(exit) ? Exit.void : exit)
    }
  }
}
