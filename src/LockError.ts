/**
 * The typed errors of effect-lock. Every failure the library reports is one of these values, in the
 * error channel; none of them is thrown.
 *
 * To send them over RPC, to a worker or through a queue, use their schemas in
 * `effect-lock/LockErrorSchema`: each decodes to an instance of the class here and encodes to
 * `{ _tag, ...fields }`, as `Schema.TaggedError` does. The classes themselves are `Data.TaggedError`s:
 * made with `Schema.TaggedError`, every bundle of the library would carry Schema (175 KB minified).
 *
 * Adding an error takes three steps (the `LockErrorSchema` test fails until the last is done):
 * 1. here, a class `export class X extends Data.TaggedError("X")<{ readonly field: string }>`, its
 *    fields documented, a `message` getter, `@since` and `@category errors`;
 * 2. here, `X` in the union {@link LockError} and in {@link isLockError}, if the Lock API can fail with it;
 * 3. in `src/LockErrorSchema.ts`, `export const X = schemaOf(Errors.X, "X", { field: Schema.String })`
 *    (it does not compile unless the fields are exactly the class's), and `X` in its `LockError` union
 *    if it is in the union here.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock, LockError } from "effect-lock"
 *
 * const program = Lock.withLock({ id: "report" })(Effect.log("working")).pipe(
 *   Effect.catchTags({
 *     LockNotAcquired: (e) => Effect.log(`busy: ${e.message}`),
 *     LockLost: (e) => Effect.logWarning(e.message)
 *   })
 * )
 *
 * @since 0.1.0
 */
import { Data, Predicate } from "effect"

/**
 * The lock could not be acquired within the attempts, schedule or timeout given: another owner holds it.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockNotAcquired extends Data.TaggedError("LockNotAcquired")<{
  readonly id: string
  /** Milliseconds the current holder's lease still had when we last looked (0 if unknown). */
  readonly remaining: number
  /** Why we stopped trying. */
  readonly reason: "held" | "timeout"
}> {
  override get message(): string {
    return this.reason === "timeout"
      ? `lock "${this.id}" was not acquired before the timeout`
      : `lock "${this.id}" is held by another owner (${this.remaining} ms left on its lease)`
  }
}

/**
 * A lease we held is gone: an extension found another owner (or no owner) on the key, or no extension
 * could be confirmed before the lease would have expired. Work guarded by the lease is interrupted.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockLost extends Data.TaggedError("LockLost")<{
  readonly id: string
  /** The fencing token of the lost lease. */
  readonly fence: number
  readonly reason: "expired" | "unconfirmed"
}> {
  override get message(): string {
    return this.reason === "expired"
      ? `lease on lock "${this.id}" (fence ${this.fence}) expired or was taken by another owner`
      : `lease on lock "${this.id}" (fence ${this.fence}) could not be confirmed before it would expire`
  }
}

/**
 * An election's leadership is gone: its lease expired, was taken over, or could not be confirmed
 * before it would lapse. Work run as leader is interrupted with it, before the lease can lapse.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{
  /** The election. */
  readonly id: string
  /** The term (fence) of the lost leadership. */
  readonly term: number
  readonly reason: "expired" | "unconfirmed"
}> {
  override get message(): string {
    return this.reason === "expired"
      ? `leadership of election "${this.id}" (term ${this.term}) expired or was taken over`
      : `leadership of election "${this.id}" (term ${this.term}) could not be confirmed before it would lapse`
  }
}

/**
 * An option or argument was rejected before anything was sent to Redis.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  /** The option at fault, e.g. `"lease"` or `"retry.attempts"`. */
  readonly option: string
  /** What the option must be. */
  readonly expected: string
  /** A short, printable rendering of the value received (never a secret). */
  readonly received: string
}> {
  override get message(): string {
    return `invalid option "${this.option}": expected ${this.expected}, received ${this.received}`
  }
}

/**
 * Redis (or the transport to it) failed: connection refused, timeout, an error reply, a reply we could
 * not decode. It never carries credentials.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  /** What we were doing, e.g. `"eval lock.acquire"`. */
  readonly operation: string
  /** The backend's own description of the failure. */
  readonly detail: string
}> {
  override get message(): string {
    return `Redis ${this.operation} failed: ${this.detail}`
  }
}

/**
 * Every error the Lock API can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type LockError = LockNotAcquired | LockLost | LeadershipLost | InvalidOptions | RedisError

/**
 * Whether `u` is one of the library's errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLockError = (u: unknown): u is LockError =>
  Predicate.isTagged(u, "LockNotAcquired") ||
  Predicate.isTagged(u, "LockLost") ||
  Predicate.isTagged(u, "LeadershipLost") ||
  Predicate.isTagged(u, "InvalidOptions") ||
  Predicate.isTagged(u, "RedisError")
