/**
 * Where the Promise API meets the host's event loop. Effect code keeps reading time from `Clock`; this
 * module decides only whether a pending timer keeps the process alive:
 *
 * - {@link clock}: Effect's own clock, except that its timers are `unref`'d. A client's timer fiber wakes
 *   every second even when idle, and a lease keeper ticks while a lease is held: neither may hold a
 *   script open after its last `await`, as `@upstash/lock` (which has no timers) never does.
 * - {@link busy}: while a promise of the module is pending, one ref'd handle keeps the process alive, so
 *   a retry's sleep between two HTTP requests is not mistaken for the end of the program.
 *
 * These are the only host timers of the library: everything else schedules on `Clock`.
 */
import { Clock, Duration, Effect } from "effect"

/** Longer delays than a host timer takes (2^31 − 1 ms) never fire, as with Effect's default clock. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

const base = Clock.make()

/** Effect's clock, with timers that do not keep the process alive. */
export const clock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
  currentTimeMillis: base.currentTimeMillis,
  currentTimeNanos: base.currentTimeNanos,
  sleep: (duration) =>
    Effect.async<void>((resume) => {
      const millis = Duration.toMillis(duration)
      if (millis > MAX_TIMER_MILLIS) return
      const handle = setTimeout(() => resume(Effect.void), millis) // Node and Bun have `unref`; elsewhere (edge runtimes) a timer never holds anything open anyway.
      ;(handle as { unref?: () => void }).unref?.()
      return Effect.sync(() => clearTimeout(handle))
    })
}

let pending = 0
let keepAlive: ReturnType<typeof setInterval> | undefined

/** Runs `f`, keeping the process alive until its promise settles. */
export const busy = <A>(f: () => Promise<A>): Promise<A> => {
  if (pending++ === 0) keepAlive = setInterval(() => {}, MAX_TIMER_MILLIS)
  const settle = () => {
    if (--pending === 0) clearInterval(keepAlive)
  }
  try {
    return f().finally(settle)
  } catch (error) {
    settle()
    return Promise.reject(error)
  }
}
