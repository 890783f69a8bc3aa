/**
 * The Promise API's rejections: one Error class per error of `LockError`, made from it (its `cause`),
 * with its `_tag`, fields and message; and the one function that turns an Effect's failure into what
 * the Promise rejects with.
 */
import { Cause, Option, Predicate } from "effect"
import * as LockError from "../../LockError.js"
import type * as Public from "../../promise.js"

export class LockNotAcquired extends Error implements Public.LockNotAcquired {
  readonly _tag = "LockNotAcquired"
  readonly id: string
  readonly remaining: number
  readonly reason: "held" | "timeout"
  declare readonly cause: LockError.LockNotAcquired
  constructor(cause: LockError.LockNotAcquired) {
    super(cause.message, { cause })
    this.name = this._tag
    this.id = cause.id
    this.remaining = cause.remaining
    this.reason = cause.reason
  }
}

export class LockLost extends Error implements Public.LockLost {
  readonly _tag = "LockLost"
  readonly id: string
  readonly fence: number
  readonly reason: "expired" | "unconfirmed"
  declare readonly cause: LockError.LockLost
  constructor(cause: LockError.LockLost) {
    super(cause.message, { cause })
    this.name = this._tag
    this.id = cause.id
    this.fence = cause.fence
    this.reason = cause.reason
  }
}

export class RedisError extends Error implements Public.RedisError {
  readonly _tag = "RedisError"
  readonly operation: string
  readonly detail: string
  declare readonly cause: LockError.RedisError
  constructor(cause: LockError.RedisError) {
    super(cause.message, { cause })
    this.name = this._tag
    this.operation = cause.operation
    this.detail = cause.detail
  }
}

export class InvalidOptions extends Error implements Public.InvalidOptions {
  readonly _tag = "InvalidOptions"
  readonly option: string
  readonly expected: string
  readonly received: string
  declare readonly cause: LockError.InvalidOptions
  constructor(cause: LockError.InvalidOptions) {
    super(cause.message, { cause })
    this.name = this._tag
    this.option = cause.option
    this.expected = cause.expected
    this.received = cause.received
  }
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
