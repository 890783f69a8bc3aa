/**
 * The line of waiters: how one acquisition tries, waits and wakes — for every primitive.
 *
 * - An uncontended acquisition is one try: one request, nothing forked, no race.
 * - After a failed try a waiter (in line by default) listens on the resource's channel, asks for the
 *   subscription, waits for its confirmation one polling interval at most, and looks once more, so a
 *   release published meanwhile is never missed. A waiter counts on push only when its last try was
 *   sent with the subscription confirmed (and the server publishes): until then it polls as if there
 *   were no push, so a subscription that never confirms (a proxy that buffers the event stream, a
 *   subscriber connection refused by `maxclients`) costs a poll, not a reservation, per hand-off.
 * - Then it sleeps in ONE `Effect.async`, ended by whichever comes first: its wake-up (the resource was
 *   handed to it; the message handler resumes it directly), or an entry on the service's timer at
 *   {@link nextWakeAt}. A hand-off to another waiter cuts the sleep to that reservation's length: if
 *   that waiter is dead, this one looks as soon as it lapses.
 * - Every try carries the acquisition's deadline, so a request still in flight ends by it too: no
 *   answer is a `RedisError`, never contention. Past the deadline no try is sent.
 * - However it ends without the resource (gave up, timed out, interrupted, Redis fault), an acquisition
 *   that sent a try leaves the line in one owner-checked step that also hands on what its unheard try
 *   may have won or been reserved.
 *
 * One acquisition's state is one {@link Attempt}; the sleep's is one {@link Wakeups}.
 */
import { Effect, type Schedule } from "effect"
import { LockNotAcquired, RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import { persist } from "./persist.js"
import type { Operations, TryReply } from "./resource.js"
import { type Stepper, stepper } from "./schedule.js"
import { publishRefused } from "./script.js"
import { firstPollOf, nextWakeAt, POLL, RESERVATION } from "./wake.js"

/** How an acquisition waits: the parts of its options the line reads. */
export interface LinePolicy {
  readonly id: string
  readonly lease: number
  /** Milliseconds the whole acquisition may take, if bounded. */
  readonly timeout: number | undefined
  readonly fair: boolean
  /**
   * When to try again after a failed try (each failed try steps it once); `"untilTimeout"`: no schedule
   * of its own, the wait ends with a wake-up, a look at the holder's lease end, or the timeout.
   */
  readonly retry: Schedule.Schedule<unknown, LockNotAcquired> | "untilTimeout"
  /**
   * Try only when `retry` says, never on the line's own looks (the parity handle: exactly `attempts`
   * tries `delay` apart).
   */
  readonly exactTries: boolean
  /**
   * Undo what a failed acquisition's tries may have done (leave the line, hand on an unheard win). The
   * parity handle does not: it keeps its token, and its `release` frees the lock.
   */
  readonly undo: boolean
}

export interface Won {
  readonly fence: number
  /** When the winning try was sent (timer ms): the lease started no earlier. */
  readonly sentAt: number
}

/** How long leaving may take after a failed acquisition (the resource's state is unknown after a fault). */
const LEAVE_LIMIT = 1000

/**
 * How long the first try may wait for its answer, even past a shorter timeout: a zero or tiny timeout
 * means one try answered by Redis, never an outage made up by the deadline.
 */
export const FIRST_ANSWER = 250

/** The shortest pause between two tries of a retry schedule. */
export const MIN_RETRY = 1

interface Waiting {
  readonly woken: () => void
  readonly handedOff: () => void
}

/** One waiter's wake-ups: the message listener, and the sleep (if any) it resumes. */
class Wakeups {
  /** The sleep in progress, if any. */
  current: Waiting | undefined
  /** A wake-up that came while no sleep was in progress (a try was on its way). */
  pending = false
  /** Stops listening; set once listening. */
  remove: Effect.Effect<void> | undefined
  /** Whether the subscription was asked for (and waited for, one polling interval at most) since listening. */
  confirmed = false
  constructor(readonly token: string) {}
  readonly listener = (message: string) => {
    if (message !== this.token) return this.current?.handedOff()
    if (this.current !== undefined) this.current.woken()
    else this.pending = true
  }
}

/** One acquisition's state, from its first try to its end. */
class Attempt<E> {
  /** Whether a try was sent whose effect may need undoing: in line, or won without our hearing it. */
  sent = false
  /** Whether Redis has answered a try of this acquisition (it was reachable, and the resource held). */
  answered = false
  /** The last try was answered "held" outside the line: nothing to undo. */
  cleanMiss = false
  sentAt = 0
  /**
   * Whether the last try was sent while the channel's subscription was confirmed: a release after
   * that try is pushed to this waiter. Before, it may have been published unheard.
   */
  pushed = false
  /** The holder's lease left, and whether this waiter was first in line, as the last try saw them. */
  remaining = 0
  first = false
  /** Made when this acquisition listens for its wake-up (before the first try if others already wait). */
  wakeups: Wakeups | undefined
  /** The retry schedule's run, made at the first miss. */
  schedule: Stepper<LockNotAcquired> | undefined
  readonly deadline: number | undefined
  readonly subscriber: Redis.Subscriber | undefined
  readonly send: Operations<E>["tryAcquire"]

  constructor(
    readonly policy: LinePolicy,
    readonly channel: string,
    readonly redis: Redis.Service,
    readonly ops: Operations<E>,
    readonly token: string,
    readonly onTry: () => void
  ) {
    this.deadline = policy.timeout === undefined ? undefined : redis.timer.now() + policy.timeout
    this.send = policy.fair ? ops.tryAcquireFair : ops.tryAcquire
    this.subscriber = policy.fair ? redis.subscriber : undefined
  }

  /** Sends one try: bounded by the deadline, or for the first try by {@link FIRST_ANSWER} if that is later. */
  try(): Effect.Effect<TryReply, RedisError | E> {
    this.sent = true
    this.cleanMiss = false
    const now = (this.sentAt = this.redis.timer.now())
    this.pushed = this.subscriber !== undefined && this.subscriber.isActive(this.channel)
    this.onTry()
    const deadline = this.deadline
    const bound = deadline === undefined || this.answered ? deadline : Math.max(deadline, now + FIRST_ANSWER)
    return this.send(this.token, this.policy.lease, bound)
  }

  /**
   * A later try (Redis answered an earlier one) still unanswered when the deadline passes ends the
   * acquisition as a timeout: the resource was held when last seen, and the wait is over. A fault
   * reported before the deadline stays a `RedisError`.
   */
  tryAgain(): Effect.Effect<TryReply, LockNotAcquired | RedisError | E> {
    return Effect.catchIf(
      this.try(),
      (e): e is RedisError | E =>
        e instanceof RedisError && this.deadline !== undefined && this.redis.timer.now() >= this.deadline,
      () => Effect.fail(this.timedOut())
    )
  }

  /** Records a missed try; `true` when it won. */
  saw(reply: TryReply): reply is Extract<TryReply, { acquired: true }> {
    this.answered = true
    if (reply.acquired) return true
    this.remaining = reply.remaining
    this.first = reply.first === true
    return false
  }

  /**
   * Sent at once; waited for until the deadline at most (the request goes out all the same, and Redis
   * applies it when it gets it), or LEAVE_LIMIT without one.
   */
  leave(): Effect.Effect<void> {
    const now = this.redis.timer.now()
    const deadline = this.deadline
    // Unanswered, it is retried in the background until the lease an unheard win may hold has lapsed.
    return persist(
      this.redis,
      (at) => this.ops.leave(this.token, at),
      deadline === undefined ? now + LEAVE_LIMIT : Math.max(deadline, now + 1),
      now + this.policy.lease + LEAVE_LIMIT,
      () => Effect.void
    )
  }

  /** How it ends: stop listening, and leave the line unless it won, sent nothing, or missed cleanly. */
  end(succeeded: boolean): Effect.Effect<void> {
    const stop = this.wakeups?.remove ?? Effect.void
    return succeeded || !this.sent || this.cleanMiss ? stop : Effect.zipRight(stop, this.leave())
  }

  timedOut(): LockNotAcquired {
    return new LockNotAcquired({ id: this.policy.id, remaining: this.remaining, reason: "timeout" })
  }

  /** The instant the retry schedule allows the next try (`Infinity`: none of its own), or `undefined` when it gives up. */
  scheduled(now: number, miss: () => LockNotAcquired): Effect.Effect<number | undefined> {
    const retry = this.policy.retry
    if (retry === "untilTimeout") return Effect.succeed(Infinity)
    this.schedule ??= stepper(retry)
    // The error (with its stack trace) is made only for a schedule to see, or to fail with.
    // At least MIN_RETRY apart: a zero-delay schedule (`Schedule.forever`) must not flood Redis.
    return Effect.map(
      this.schedule.next(now, miss()),
      (at) => at === undefined ? undefined : Math.max(at, now + MIN_RETRY)
    )
  }

  /** Resolves `true` when woken, `false` when the timer ends the sleep at `at`. */
  sleep(at: number): Effect.Effect<boolean> {
    const wakeups = this.wakeups!
    const timer = this.redis.timer
    return Effect.async<boolean>((resume) => {
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
  }
}

/** Tries until the resource is won, the schedule gives up, the deadline passes or Redis fails. */
export const obtain = <E>(
  policy: LinePolicy,
  channel: string,
  redis: Redis.Service,
  ops: Operations<E>,
  token: string,
  onTry: () => void
): Effect.Effect<Won, LockNotAcquired | RedisError | E> => {
  const attempt = new Attempt(policy, channel, redis, ops, token, onTry)
  const won = (reply: Extract<TryReply, { acquired: true }>): Won => ({ fence: reply.fence, sentAt: attempt.sentAt })
  const afterFirst = (reply: TryReply) =>
    attempt.saw(reply) ? Effect.succeed(won(reply)) : Effect.map(waitInLine(attempt), won)
  // Where this client's subscription to the channel is already live (others wait for it now), listen
  // before the first try: a wake-up for this waiter can then never slip past unheard, and a failed
  // first try needs no second look. Otherwise the try is made at once: `obtain` runs when the
  // acquisition does (inside `withFiberRuntime`).
  const subscriber = attempt.subscriber
  const first = subscriber !== undefined && subscriber.isActive(channel)
    ? Effect.suspend(() => {
      const w = (attempt.wakeups = new Wakeups(token))
      return Effect.flatMap(subscriber.listen(channel, w.listener), (listening) => {
        w.remove = listening.remove
        w.confirmed = listening.active
        return Effect.flatMap(attempt.try(), afterFirst)
      })
    })
    : Effect.flatMap(attempt.try(), afterFirst)
  // Nothing to stop or undo outside the line, for a caller that undoes nothing: no finalizer at all.
  return !policy.fair && !policy.undo ? first : Effect.onExit(first, (exit) => attempt.end(exit._tag === "Success"))
}

/** The contended part: waits and tries until a try wins; fails as `obtain` says. */
const waitInLine = <E>(
  attempt: Attempt<E>
): Effect.Effect<Extract<TryReply, { acquired: true }>, LockNotAcquired | RedisError | E> =>
  Effect.gen(function*() {
    const { channel, deadline, policy, subscriber } = attempt
    const timer = attempt.redis.timer
    const wakeups = (attempt.wakeups ??= new Wakeups(attempt.token))
    const firstPoll = firstPollOf(attempt.token)
    // A timeout shorter than the first try's answer: that try was the one.
    if (deadline !== undefined && timer.now() >= deadline) return yield* attempt.timedOut()
    if (subscriber !== undefined && !wakeups.confirmed) {
      if (wakeups.remove === undefined) wakeups.remove = (yield* subscriber.listen(channel, wakeups.listener)).remove
      if (!subscriber.isActive(channel)) {
        // One polling interval at most: unconfirmed, the subscription goes on in the subscriber's own
        // fiber, and this waiter polls meanwhile.
        const look = attempt.first ? firstPoll : POLL
        const limit = Math.min(deadline ?? Infinity, timer.now() + look) - timer.now()
        yield* subscriber.subscribe(channel).pipe(Effect.timeout(Math.max(0, limit)), Effect.ignore)
      }
      wakeups.confirmed = true
      // A release published before the subscription was live would be lost: look once more.
      const reply = yield* attempt.tryAgain()
      if (attempt.saw(reply)) return reply
    }
    while (true) {
      attempt.cleanMiss = !policy.fair
      const now = timer.now()
      if (deadline !== undefined && now >= deadline) return yield* attempt.timedOut()
      const miss = () => new LockNotAcquired({ id: policy.id, remaining: attempt.remaining, reason: "held" })
      const scheduled = yield* attempt.scheduled(now, miss)
      if (scheduled === undefined) return yield* miss()
      const at = nextWakeAt({
        now,
        remaining: attempt.remaining,
        first: attempt.first,
        subscribed: attempt.pushed && subscriber!.isActive(channel) && !publishRefused(attempt.redis),
        scheduled,
        deadline: deadline ?? Infinity,
        firstPoll,
        exactTries: policy.exactTries
      })
      const woken = yield* attempt.sleep(at)
      if (!woken && deadline !== undefined && timer.now() >= deadline) return yield* attempt.timedOut()
      const reply = yield* attempt.tryAgain()
      if (attempt.saw(reply)) return reply
    }
  })
