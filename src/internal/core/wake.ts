/**
 * The protocol's timing: how long a reservation, a place in line and a look last, and when a waiter
 * looks again. `nextWakeAt` is a pure function of what the waiter knows, so it is tested as a property.
 */

/** How long a released lock stays reserved for the waiter it was handed to (a dead waiter blocks no longer). */
export const RESERVATION = 1000
/** How long a waiter keeps its place in line without looking again: a dead waiter drops out after it. */
export const ALIVE = 1000
/** A waiter looks again at least this often: it keeps its place, and catches a wake-up a lost connection ate. */
export const HEARTBEAT = 400
/** Where nothing pushes wake-ups, a waiter looks this often… */
export const POLL = 100
/**
 * …except the first in line, which looks every 5–10 ms (jittered): a release reserves the lock for it,
 * and without a push the reservation must not sit idle for a whole polling interval.
 */
export const FIRST_POLL = 5
/** The line expires this long after the last look (unless leases are longer). */
export const lineTtl = (lease: number): number => Math.max(60_000, lease * 4)

/** The first-in-line poll interval of one waiter, jittered by its random token. */
export const firstPollOf = (token: string): number => FIRST_POLL + (token.charCodeAt(0) % FIRST_POLL)

/** What a waiter knows when it decides how long to sleep. */
export interface WakeInput {
  /** Now, in timer milliseconds. */
  readonly now: number
  /** The holder's lease (or a reservation) left, as the last try saw it. */
  readonly remaining: number
  /** Whether the last try found this waiter first in line. */
  readonly first: boolean
  /** Whether wake-ups are pushed to it (its channel's subscription is live). */
  readonly subscribed: boolean
  /** When its retry schedule allows the next try (`Infinity`: no schedule of its own). */
  readonly scheduled: number
  /** When the acquisition gives up (`Infinity`: never). */
  readonly deadline: number
  /** Its first-in-line poll interval ({@link firstPollOf}). */
  readonly firstPoll: number
  /** It tries only when its schedule says (the parity handle). */
  readonly exactTries: boolean
}

/**
 * When a waiter looks again unless woken first: at the schedule's next try, when the holder's lease
 * ends, often enough to keep its place in line (with push) or to poll (without), and by its deadline;
 * with `exactTries`, only at the schedule's next try (or its deadline).
 */
export const nextWakeAt = (input: WakeInput): number => {
  const { now } = input
  if (input.exactTries) return Math.min(input.scheduled, input.deadline)
  const look = input.subscribed ? HEARTBEAT : input.first ? input.firstPoll : POLL
  return Math.min(input.scheduled, now + input.remaining + 1, now + look, input.deadline)
}
