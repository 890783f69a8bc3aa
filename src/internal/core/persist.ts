/**
 * Owner-checked clean-up that must not be lost to one failed answer: a `leave` after a try whose
 * answer never came (it may have won), a release whose answer was lost. The first attempt is the
 * caller's; if it fails, the service's layer keeps trying in the background (`Timer.fork`), a spaced
 * attempt at a time, until one is answered or `until` passes (by then the lease that could be held
 * has lapsed on its own). The scripts check the owner, so a retry never frees another owner's lock.
 */
import { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

/** How long one attempt may wait for its answer. */
const ATTEMPT_LIMIT = 1000
/** The pause between background attempts. */
export const RETRY_SPACING = 200

/**
 * Runs `send(deadline)` now; on failure, reports `failed` and hands the retries to the layer's
 * background. Never fails.
 */
export const persist = (
  redis: Redis.Service,
  send: (deadline: number) => Effect.Effect<unknown, RedisError>,
  first: number,
  until: number,
  failed: (error: RedisError) => Effect.Effect<void>
): Effect.Effect<void> => {
  const timer = redis.timer
  const again: Effect.Effect<void> = Effect.suspend(() => {
    const now = timer.now()
    if (now >= until) return Effect.void
    return Effect.catchAll(
      send(Math.min(until, now + ATTEMPT_LIMIT)),
      () => Effect.zipRight(Effect.sleep(RETRY_SPACING), again)
    )
  })
  return Effect.catchAll(
    send(first),
    (error) =>
      Effect.zipRight(failed(error), Effect.sync(() => timer.fork(Effect.zipRight(Effect.sleep(RETRY_SPACING), again))))
  )
}
