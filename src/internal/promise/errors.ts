/**
 * The Promise API's rejections: one Error class per error of `LockError`, made from it (its `cause`),
 * with its `_tag`, fields and message; and the one function that turns an Effect's failure into what
 * the Promise rejects with.
 */
import { Cause, Option, Predicate } from "effect"
import * as LockError from "../../LockError.js"
import type * as Public from "../../promise.js"

/** An Error made from an Effect error of `LockError`: its message and `_tag` as `name`; it is the `cause`. */
abstract class FromEffect<E extends LockError.LockError> extends Error {
  declare readonly cause: E
  constructor(cause: E) {
    super(cause.message, { cause })
    this.name = cause._tag
  }
}

export class LockNotAcquired extends FromEffect<LockError.LockNotAcquired> implements Public.LockNotAcquired {
  readonly _tag = "LockNotAcquired"
  readonly id = this.cause.id
  readonly remaining = this.cause.remaining
  readonly reason = this.cause.reason
}

export class LockLost extends FromEffect<LockError.LockLost> implements Public.LockLost {
  readonly _tag = "LockLost"
  readonly id = this.cause.id
  readonly fence = this.cause.fence
  readonly reason = this.cause.reason
}

export class RedisError extends FromEffect<LockError.RedisError> implements Public.RedisError {
  readonly _tag = "RedisError"
  readonly operation = this.cause.operation
  readonly detail = this.cause.detail
}

export class InvalidOptions extends FromEffect<LockError.InvalidOptions> implements Public.InvalidOptions {
  readonly _tag = "InvalidOptions"
  readonly option = this.cause.option
  readonly expected = this.cause.expected
  readonly received = this.cause.received
}

/** A failure of the user's own code (a callback, the body of `using`): rejected with as it is. */
export class UserError {
  readonly _tag = "UserError"
  constructor(readonly error: unknown) {}
}

/** What a call rejects with when effect-lock's runtime for its client was disposed while it ran. */
export const disposed = (operation: string): RedisError =>
  new RedisError(
    new LockError.RedisError({ operation, detail: "the client was closed (disposed or quit) while the call ran" })
  )

/** The Promise API's counterpart of an Effect error; anything else (a layer's own error) as it is. */
export const fromFailure = (error: unknown): unknown => {
  if (error instanceof UserError) return error.error
  if (Predicate.isTagged(error, "LockNotAcquired")) return new LockNotAcquired(error as LockError.LockNotAcquired)
  if (Predicate.isTagged(error, "LockLost")) return new LockLost(error as LockError.LockLost)
  if (Predicate.isTagged(error, "RedisError")) return new RedisError(error as LockError.RedisError)
  if (Predicate.isTagged(error, "InvalidOptions")) return new InvalidOptions(error as LockError.InvalidOptions)
  return error
}

/**
 * What a failed call rejects with: its first failure, mapped by {@link fromFailure}; else a defect as it
 * is (an Error, or an Error made of it); else (interrupted only) {@link disposed}. Never a FiberFailure.
 */
export const fromCause = (cause: Cause.Cause<unknown>, operation: string): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return fromFailure(failure.value)
  return Option.isSome(Cause.dieOption(cause)) ? Cause.squash(cause) : disposed(operation)
}
