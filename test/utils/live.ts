/**
 * Helpers of the tests against real processes: wait for a condition (never for time), and a raw ioredis
 * client for looking at what Redis holds.
 */
import { Duration, Effect, Schedule } from "effect"
import { Redis as IORedis } from "ioredis"

/** Polls (every 10 ms, up to `within`) until `check` holds, and returns the value that passed. */
export const eventually = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  within: Duration.DurationInput = "20 seconds"
) =>
  Effect.filterOrFail(self, check, () => new Error("not yet")).pipe(
    Effect.retry(Schedule.spaced("10 millis")),
    Effect.timeoutFail({
      duration: within,
      onTimeout: () => new Error(`condition not met within ${Duration.format(within)}`)
    })
  )

/** A plain ioredis client for the test itself, quit with the scope. */
export const raw = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit().catch(() => "")))
