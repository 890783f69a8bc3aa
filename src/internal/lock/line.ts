/**
 * The line of waiters: how one acquisition tries, waits and wakes.
 *
 * - An uncontended acquisition is one try: one request, nothing forked, no race.
 * - After a failed try a waiter (in line by default) listens on the lock's channel, makes sure it is
 *   subscribed, and looks once more, so a release published meanwhile is never missed.
 * - Then it sleeps in ONE `Effect.async`, ended by whichever comes first: its wake-up (the lock was
 *   handed to it; the message handler resumes it directly), an entry on the service's timer (the
 *   holder's lease or a reservation ends, the retry schedule's next try, the heartbeat that keeps its
 *   place in line, the acquisition's deadline). A hand-off to another waiter cuts the sleep to that
 *   reservation's length: if that waiter is dead, this one looks as soon as it lapses.
 * - Every try carries the acquisition's deadline, so a request still in flight ends by it too: no
 *   answer is a `RedisError`, never contention. Past the deadline no try is sent.
 * - However it ends without the lock (gave up, timed out, interrupted, Redis fault), an acquisition that
 *   sent a try leaves the line in one owner-checked step that also hands on a lock its unheard try may
 *   have won or been reserved.
 */
import { Effect, ScheduleDecision, ScheduleIntervals } from "effect"
import { LockNotAcquired, type RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import type { AcquireReply } from "../lockScripts.js"
import { FIRST_POLL, HEARTBEAT, POLL, RESERVATION } from "./operations.js"
import type { Acquisition } from "./options.js"

/**
 * What the line needs of an acquisition's options: the lock's, or any other resource's (a semaphore's)
 * whose keys have a wake-up channel.
 */
export type LineOptions = Pick<Acquisition, "id" | "timeout" | "fair" | "retry"> & {
  readonly keys: { readonly channel: string }
}

/**
 * The operations the line sends: the lock's {@link Operations}, or another resource's scripts with the
 * same contract. A try may fail with an error of the resource's own (`E`).
 */
export interface LineOperations<E = never> {
  readonly tryAcquire: (token: string, lease: number, deadline?: number) => Effect.Effect<AcquireReply, RedisError | E>
  readonly tryAcquireFair: (
    token: string,
    lease: number,
    deadline?: number
  ) => Effect.Effect<AcquireReply, RedisError | E>
  readonly leave: (token: string, deadline?: number) => Effect.Effect<boolean, RedisError>
}

export interface Won {
  readonly fence: number
  /** When the winning try was sent (timer ms): the lease started no earlier. */
  readonly sentAt: number
}

/** How long leaving may take after a failed acquisition (the lock's state is unknown after a fault). */
const LEAVE_LIMIT = 1000

/** Tries until the lock is won, the schedule gives up, the deadline passes or Redis fails. */
export const obtain = <E = never>(
  acq: LineOptions & Pick<Acquisition, "lease">,
  redis: Redis.Service,
  ops: LineOperations<E>,
  token: string,
  onTry: () => void
): Effect.Effect<Won, LockNotAcquired | RedisError | E> => {
  const timer = redis.timer
  const deadline = acq.timeout === undefined ? undefined : timer.now() + acq.timeout
  const send = acq.fair ? ops.tryAcquireFair : ops.tryAcquire
  const subscriber = acq.fair ? redis.subscriber : undefined
  /** Whether a try was sent whose effect may need undoing: in line, or won without our hearing it. */
  let sent = false
  /** The last try was answered "held" outside the line: nothing to undo. */
  let cleanMiss = false
  let sentAt = 0
  /** Made when this acquisition listens for its wake-up (before the first try if others already wait). */
  let wakeups: Wakeups | undefined

  const attempt = (): Effect.Effect<AcquireReply, RedisError | E> => {
    sent = true
    cleanMiss = false
    sentAt = timer.now()
    onTry()
    return send(token, acq.lease, deadline)
  }

  // Sent at once; waited for until the deadline at most (the request goes out all the same, and Redis
  // applies it when it gets it), or LEAVE_LIMIT without one.
  const leave = Effect.suspend(() => {
    const now = timer.now()
    return ops.leave(token, deadline === undefined ? now + LEAVE_LIMIT : Math.max(deadline, now + 1))
  }).pipe(Effect.ignore)

  const wait = (remaining: number, first: boolean) =>
    Effect.suspend(() => {
      wakeups ??= new Wakeups(token)
      return waitInLine({
        acq,
        redis,
        wakeups,
        deadline,
        attempt,
        remaining,
        first,
        miss: () => (cleanMiss = !acq.fair)
      })
    }).pipe(Effect.map((reply): Won => ({ fence: reply.fence, sentAt })))

  const tryFirst = Effect.flatMap(
    Effect.suspend(attempt),
    (reply) =>
      reply.acquired ? Effect.succeed<Won>({ fence: reply.fence, sentAt }) : wait(reply.remaining, reply.first === true)
  )

  // Where this client's subscription to the lock's channel is already live (others wait for it now),
  // listen before the first try: a wake-up for this waiter can then never slip past unheard, and a
  // failed first try needs no second look.
  const first = subscriber !== undefined && subscriber.isActive(acq.keys.channel)
    ? Effect.suspend(() => {
      const w = (wakeups = new Wakeups(token))
      return Effect.flatMap(subscriber.listen(acq.keys.channel, w.listener), (listening) => {
        w.remove = listening.remove
        w.confirmed = listening.active
        return tryFirst
      })
    })
    : tryFirst

  return Effect.onExit(first, (exit) => {
    const stop = wakeups?.remove ?? Effect.void
    return exit._tag === "Success" || !sent || cleanMiss ? stop : Effect.zipRight(stop, leave)
  })
}

interface Waiting {
  readonly woken: () => void
  readonly handedOff: () => void
}

/** One waiter's wake-ups: the message listener, and the wait (if any) it resumes. */
class Wakeups {
  /** The wait in progress, if any. */
  current: Waiting | undefined
  /** A wake-up that came while no wait was in progress (a try was on its way). */
  pending = false
  /** Stops listening; set once listening. */
  remove: Effect.Effect<void> | undefined
  /** Whether messages published since listening are sure to arrive (the subscription was live). */
  confirmed = false
  constructor(readonly token: string) {}
  readonly listener = (message: string) => {
    if (message !== this.token) return this.current?.handedOff()
    if (this.current !== undefined) this.current.woken()
    else this.pending = true
  }
}

/** The contended part: waits and tries until a try wins; fails as `obtain` says. */
const waitInLine = <E>(options: {
  readonly acq: LineOptions
  readonly redis: Redis.Service
  readonly wakeups: Wakeups
  readonly deadline: number | undefined
  readonly attempt: () => Effect.Effect<AcquireReply, RedisError | E>
  readonly remaining: number
  readonly first: boolean
  readonly miss: () => void
}): Effect.Effect<{ readonly fence: number }, LockNotAcquired | RedisError | E> => {
  const { acq, attempt, deadline, redis, wakeups } = options
  const timer = redis.timer
  const subscriber = acq.fair ? redis.subscriber : undefined
  const channel = acq.keys.channel
  const schedule = acq.retry === "untilTimeout" ? undefined : acq.retry
  let state: unknown = schedule?.initial
  // Jittered per waiter (from its random token), so heads of different locks do not poll in step.
  const firstPoll = FIRST_POLL + (wakeups.token.charCodeAt(0) % FIRST_POLL)

  /** Resolves `true` when woken, `false` when the timer ends the wait at `at`. */
  const sleep = (at: number) =>
    Effect.async<boolean>((resume) => {
      if (wakeups.pending) {
        wakeups.pending = false
        return resume(Effect.succeed(true))
      }
      let target = at
      const end = (woken: boolean) => () => {
        wakeups.current = undefined
        cancel()
        resume(Effect.succeed(woken))
      }
      let cancel = timer.schedule(target, end(false))
      wakeups.current = {
        woken: end(true),
        handedOff: () => {
          const lapse = timer.now() + RESERVATION + 1
          if (lapse >= target) return
          cancel()
          target = lapse
          cancel = timer.schedule(target, end(false))
        }
      }
      return Effect.sync(() => {
        wakeups.current = undefined
        cancel()
      })
    })

  /** The instant the schedule allows the next try, or `undefined` when it gives up. */
  const next = (miss: () => LockNotAcquired, now: number): Effect.Effect<number | undefined> =>
    schedule === undefined ?
      Effect.succeed(Infinity) :
      Effect.map(schedule.step(now, miss(), state), ([s, _, decision]) => {
        state = s
        return ScheduleDecision.isDone(decision)
          ? undefined
          : Math.max(now, ScheduleIntervals.start(decision.intervals))
      })

  const timedOut = (remaining: number) => new LockNotAcquired({ id: acq.id, remaining, reason: "timeout" })

  return Effect.gen(function*() {
    let remaining = options.remaining
    /** Whether the last answer put this waiter first in line. */
    let first = options.first
    if (subscriber !== undefined && !wakeups.confirmed) {
      if (wakeups.remove === undefined) wakeups.remove = (yield* subscriber.listen(channel, wakeups.listener)).remove
      if (!subscriber.isActive(channel)) {
        // Bounded: without a confirmed subscription the heartbeat still finds the lock free.
        const limit = Math.min(deadline ?? Infinity, timer.now() + RESERVATION) - timer.now()
        yield* subscriber.subscribe(channel).pipe(Effect.timeout(Math.max(0, limit)), Effect.ignore)
      }
      wakeups.confirmed = true
      // A release published before the subscription was live would be lost: look once more.
      const reply = yield* attempt()
      if (reply.acquired) return reply
      remaining = reply.remaining
      first = reply.first === true
    }
    while (true) {
      options.miss()
      const now = timer.now()
      if (deadline !== undefined && now >= deadline) return yield* timedOut(remaining)
      // The error (with its stack trace) is made only for a schedule to see, or to fail with.
      const miss = () => new LockNotAcquired({ id: acq.id, remaining, reason: "held" })
      let at = yield* next(miss, now)
      if (at === undefined) return yield* miss()
      // Look again when the holder's lease (or a reservation) ends, and often enough to keep a place in
      // line, or to poll where nothing pushes.
      at = Math.min(at, now + remaining + 1)
      if (subscriber !== undefined && subscriber.isActive(channel)) at = Math.min(at, now + HEARTBEAT)
      else at = Math.min(at, now + (first ? firstPoll : POLL))
      if (deadline !== undefined) at = Math.min(at, deadline)
      const woken = yield* sleep(at)
      if (!woken && deadline !== undefined && timer.now() >= deadline) return yield* timedOut(remaining)
      const reply = yield* attempt()
      if (reply.acquired) return reply
      remaining = reply.remaining
      first = reply.first === true
    }
  })
}
