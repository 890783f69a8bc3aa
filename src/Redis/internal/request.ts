/**
 * One request to a backend as an Effect: a promise from the client, answered by its reply, or failed by
 * the deadline on the service's timer (no fiber, no race), or abandoned on interruption. A backend that
 * can drop a request (over `fetch`) is handed an `AbortSignal`, aborted when the deadline passes or the
 * caller is interrupted; one that cannot (ioredis) gets none, and pays for none. At the deadline the
 * error names the connection's current fault, if the backend knows one: a refused connection reads
 * `no answer before the deadline: connect ECONNREFUSED 127.0.0.1:6379`, not a bare timeout.
 */
import { Duration, Effect } from "effect"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

export interface Bounds {
  readonly timer: Redis.Timer
  /** A failure's text for `RedisError.detail` (never a secret). */
  readonly describe: (error: unknown) => string
  /** The longest any request may wait for an answer, in milliseconds (a backend's own timeout). */
  readonly timeout?: number | undefined
  /** What is wrong with the connection right now (the last connection error), if anything. */
  readonly fault?: (() => string | undefined) | undefined
  /** Cuts the backend's secrets (password, token) out of a text; applied to every detail. */
  readonly redact?: ((text: string) => string) | undefined
  /** Whether the backend's requests take an `AbortSignal` (otherwise `start` is given none). */
  readonly abortable?: boolean | undefined
}

/** A detail as it goes in a `RedisError`: without the backend's secrets. */
export const redacted = (bounds: Bounds, detail: string): string =>
  bounds.redact === undefined ? detail : bounds.redact(detail)

/** `detail`, followed by the connection's fault when there is one. */
const withFault = (bounds: Bounds, detail: string): string => {
  const fault = bounds.fault?.()
  return fault === undefined || detail.includes(fault) ? detail : `${detail}: ${fault}`
}

const succeed = <A>(reply: unknown): Effect.Effect<A, RedisError> => Effect.succeed(reply as A)

/**
 * Runs `start` and waits for its promise, at most until `deadline` (in timer milliseconds) or the
 * backend's own timeout, whichever comes first. `onReply` turns the reply into the result (a decoder),
 * in the same step.
 */
export const request = <A, R = A>(
  bounds: Bounds,
  operation: string,
  start: (signal: AbortSignal | undefined) => Promise<R>,
  deadline?: number,
  onReply: (reply: R) => Effect.Effect<A, RedisError> = succeed
): Effect.Effect<A, RedisError> =>
  Effect.async<A, RedisError>((resume) => {
    let settled = false
    let cancel: (() => void) | undefined
    const controller = bounds.abortable === true ? new AbortController() : undefined
    const settle = (effect: Effect.Effect<A, RedisError>) => {
      if (settled) return
      settled = true
      cancel?.()
      resume(effect)
    }
    const own = bounds.timeout === undefined ? Infinity : bounds.timer.now() + bounds.timeout
    const limit = Math.min(deadline ?? Infinity, own)
    if (limit !== Infinity) {
      const reason = limit === own
        ? `no answer within ${Duration.format(Duration.millis(bounds.timeout!))}`
        : "no answer before the deadline"
      cancel = bounds.timer.schedule(limit, () => {
        settle(Effect.fail(new RedisError({ operation, detail: redacted(bounds, withFault(bounds, reason)) })))
        controller?.abort()
      })
    }
    start(controller?.signal).then(
      (reply) => settle(onReply(reply)),
      (error: unknown) =>
        settle(Effect.fail(new RedisError({ operation, detail: redacted(bounds, bounds.describe(error)) })))
    )
    return Effect.sync(() => {
      settled = true
      cancel?.()
      controller?.abort()
    })
  })
