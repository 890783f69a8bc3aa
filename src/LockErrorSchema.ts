/**
 * A `Schema` for each error of `effect-lock/LockError`, so that the errors cross RPC, workers and
 * queues as values: each decodes to an instance of the very class the library fails with (`instanceof`,
 * `_tag`, fields, `message`) and encodes to `{ _tag, ...fields }`, the form `Schema.TaggedError`
 * encodes to. A module of its own, so that only who serializes loads Schema (the core, and an edge
 * bundle of it, carry none).
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { LockError } from "effect-lock"
 * import * as LockErrorSchema from "effect-lock/LockErrorSchema"
 *
 * const error = new LockError.LockNotAcquired({ id: "report", remaining: 250, reason: "held" })
 * const program = Effect.gen(function*() {
 *   const json = yield* Schema.encode(Schema.parseJson(LockErrorSchema.LockError))(error)
 *   const back = yield* Schema.decode(Schema.parseJson(LockErrorSchema.LockError))(json)
 *   yield* Effect.log(back instanceof LockError.LockNotAcquired, back.message)
 * })
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { schemaOf } from "./internal/error/schema.js"
import * as Errors from "./LockError.js"

/**
 * `LockError.LockNotAcquired`: `{ _tag, id, remaining, reason }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LockNotAcquired = schemaOf(Errors.LockNotAcquired, "LockNotAcquired", {
  id: Schema.String,
  remaining: Schema.Number,
  reason: Schema.Literal("held", "timeout")
})

/**
 * `LockError.LockLost`: `{ _tag, id, fence, reason }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LockLost = schemaOf(Errors.LockLost, "LockLost", {
  id: Schema.String,
  fence: Schema.Number,
  reason: Schema.Literal("expired", "unconfirmed")
})

/**
 * `LockError.LeadershipLost`: `{ _tag, id, term, reason }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LeadershipLost = schemaOf(Errors.LeadershipLost, "LeadershipLost", {
  id: Schema.String,
  term: Schema.Number,
  reason: Schema.Literal("expired", "unconfirmed")
})

/**
 * `LockError.InvalidOptions`: `{ _tag, option, expected, received }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InvalidOptions = schemaOf(Errors.InvalidOptions, "InvalidOptions", {
  option: Schema.String,
  expected: Schema.String,
  received: Schema.String
})

/**
 * `LockError.RedisError`: `{ _tag, operation, detail }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedisError = schemaOf(Errors.RedisError, "RedisError", {
  operation: Schema.String,
  detail: Schema.String
})

/**
 * Any error of the Lock API (`LockError.LockError`), e.g. an RPC's `error` schema.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LockError: Schema.Union<[
  typeof LockNotAcquired,
  typeof LockLost,
  typeof LeadershipLost,
  typeof InvalidOptions,
  typeof RedisError
]> = Schema.Union(LockNotAcquired, LockLost, LeadershipLost, InvalidOptions, RedisError)
