/**
 * Input checks shared by every public constructor. Each returns the clean value or fails with
 * `InvalidOptions` — before anything reaches Redis.
 */
import { Duration, Effect, Option } from "effect"
import { InvalidOptions } from "../LockError.js"

/** The largest duration accepted anywhere (2^31 − 1 ms, about 24.8 days). */
export const MAX_MILLIS = 2_147_483_647
/** The longest id accepted (in UTF-16 code units). */
export const MAX_ID_LENGTH = 1024

export const render = (u: unknown): string => {
  if (typeof u === "string") return u.length > 40 ? `a string of length ${u.length}` : JSON.stringify(u)
  if (typeof u === "number" || typeof u === "bigint" || typeof u === "boolean") return String(u)
  if (u === null || u === undefined) return String(u)
  if (Duration.isDuration(u)) return Duration.format(u)
  return typeof u
}

const invalid = (option: string, expected: string, received: unknown) =>
  new InvalidOptions({ option, expected, received: render(received) })

/** A lone UTF-16 surrogate: half of a pair, without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Whether `s` is well-formed Unicode (`String.prototype.isWellFormed`, ES2024): no lone surrogate. A
 * lone surrogate is sent to Redis as U+FFFD, so two different strings would name the same key or owner.
 */
export const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s)

/** A non-empty, well-formed string of at most `max` characters. */
export const text = (option: string, u: unknown, max = MAX_ID_LENGTH): Effect.Effect<string, InvalidOptions> =>
  typeof u === "string" && u.length > 0 && u.length <= max && isWellFormed(u)
    ? Effect.succeed(u)
    : Effect.fail(invalid(option, `a non-empty string of at most ${max} characters, without lone surrogates`, u))

/** A well-formed string (may be empty) of at most `max` characters. */
export const prefix = (option: string, u: unknown, max = 256): Effect.Effect<string, InvalidOptions> =>
  typeof u === "string" && u.length <= max && isWellFormed(u)
    ? Effect.succeed(u)
    : Effect.fail(invalid(option, `a string of at most ${max} characters, without lone surrogates`, u))

/** An integer in `[min, max]`. */
export const integer = (option: string, u: unknown, min: number, max = MAX_MILLIS): Effect.Effect<number, InvalidOptions> =>
  typeof u === "number" && Number.isInteger(u) && u >= min && u <= max
    ? Effect.succeed(u)
    : Effect.fail(invalid(option, `an integer from ${min} to ${max}`, u))

/**
 * A duration, as a number of milliseconds or any `Duration.DurationInput` ("2 seconds", Duration.millis(5)),
 * that is a whole number of milliseconds in `[min, MAX_MILLIS]`.
 */
export const millis = (option: string, u: unknown, min: 0 | 1): Effect.Effect<number, InvalidOptions> => {
  const expected = `a duration of ${min === 0 ? "0" : "1"} to ${MAX_MILLIS} whole milliseconds`
  const ms = typeof u === "number"
    ? u
    : Option.match(Duration.decodeUnknown(u), { onNone: () => NaN, onSome: Duration.toMillis })
  return Number.isInteger(ms) && ms >= min && ms <= MAX_MILLIS
    ? Effect.succeed(ms)
    : Effect.fail(invalid(option, expected, u))
}

/** `value` when defined, else the default. */
export const orDefault = <A>(
  value: unknown,
  fallback: A,
  check: (u: unknown) => Effect.Effect<A, InvalidOptions>
): Effect.Effect<A, InvalidOptions> => (value === undefined ? Effect.succeed(fallback) : check(value))
