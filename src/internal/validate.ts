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

/**
 * Whether `s` has a control character (C0, DEL, C1) or a line or paragraph separator. Ids and prefixes
 * name Redis keys and appear in spans and logs: a raw newline there is a line break a tool prints as
 * two records (or not at all), so none is accepted.
 */
export const hasControl = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true
  }
  return false
}

/** Whether `s` can name a key, a span attribute and a log field: well-formed, no control character. */
export const isPrintable = (s: string): boolean => isWellFormed(s) && !hasControl(s)

/** What {@link isPrintable} asks, as `InvalidOptions.expected` says it. */
export const PRINTABLE = "without lone surrogates or control characters (newlines, tabs)"

/**
 * The checks, synchronous: each returns the clean value or an `InvalidOptions` (hot paths check without
 * building an Effect per option). {@link lift} turns one into an Effect.
 */
export const check = {
  /** A non-empty, printable ({@link isPrintable}) string of at most `max` characters. */
  text: (option: string, u: unknown, max = MAX_ID_LENGTH): string | InvalidOptions =>
    typeof u === "string" && u.length > 0 && u.length <= max && isPrintable(u)
      ? u
      : invalid(option, `a non-empty string of at most ${max} characters, ${PRINTABLE}`, u),
  /** A printable string (may be empty) of at most `max` characters. */
  prefix: (option: string, u: unknown, max = 256): string | InvalidOptions =>
    typeof u === "string" && u.length <= max && isPrintable(u)
      ? u
      : invalid(option, `a string of at most ${max} characters, ${PRINTABLE}`, u),
  /** An integer in `[min, max]`. */
  integer: (option: string, u: unknown, min: number, max = MAX_MILLIS): number | InvalidOptions =>
    typeof u === "number" && Number.isInteger(u) && u >= min && u <= max
      ? u
      : invalid(option, `an integer from ${min} to ${max}`, u),
  /**
   * A duration, as a number of milliseconds or any `Duration.DurationInput` ("2 seconds",
   * Duration.millis(5)), that is a whole number of milliseconds in `[min, MAX_MILLIS]`.
   */
  millis: (option: string, u: unknown, min: 0 | 1): number | InvalidOptions => {
    const ms = typeof u === "number"
      ? u
      : Option.match(Duration.decodeUnknown(u), { onNone: () => NaN, onSome: Duration.toMillis })
    return Number.isInteger(ms) && ms >= min && ms <= MAX_MILLIS
      ? ms
      : invalid(option, `a duration of ${min === 0 ? "0" : "1"} to ${MAX_MILLIS} whole milliseconds`, u)
  }
} as const

/** A synchronous check's result as an Effect. */
export const lift = <A>(result: A | InvalidOptions): Effect.Effect<A, InvalidOptions> =>
  result instanceof InvalidOptions ? Effect.fail(result) : Effect.succeed(result)

export const text = (option: string, u: unknown, max = MAX_ID_LENGTH) => lift(check.text(option, u, max))
export const prefix = (option: string, u: unknown, max = 256) => lift(check.prefix(option, u, max))
export const integer = (option: string, u: unknown, min: number, max = MAX_MILLIS) =>
  lift(check.integer(option, u, min, max))
export const millis = (option: string, u: unknown, min: 0 | 1) => lift(check.millis(option, u, min))

/** `value` when defined, else the default. */
export const orDefault = <A>(
  value: unknown,
  fallback: A,
  check: (u: unknown) => Effect.Effect<A, InvalidOptions>
): Effect.Effect<A, InvalidOptions> => (value === undefined ? Effect.succeed(fallback) : check(value))
