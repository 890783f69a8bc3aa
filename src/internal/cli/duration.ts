/**
 * Durations as a command line spells them: `1500ms`, `30s`, `5m`, `2h`, or plain milliseconds.
 */
import { Either } from "effect"
import { MAX_MILLIS } from "../validate.js"

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PATTERN = /^(\d+)(ms|s|m|h)?$/

/** Whole milliseconds from `min` to about 24.8 days, or a message saying what was expected. */
export const parse = (text: string, min: 0 | 1): Either.Either<number, string> => {
  const match = PATTERN.exec(text.trim())
  const ms = match === null ? NaN : Number(match[1]) * UNITS[match[2] ?? "ms"]!
  return Number.isSafeInteger(ms) && ms >= min && ms <= MAX_MILLIS
    ? Either.right(ms)
    : Either.left(
      `expected a duration such as 1500ms, 30s, 5m, 2h or plain milliseconds, ${
        min === 0 ? "from 0" : "above 0"
      } and at most ${MAX_MILLIS} ms; got ${JSON.stringify(text)}`
    )
}

/** Renders milliseconds the way they are best read back: `30s`, `1500ms`, `5m`. */
export const format = (ms: number): string =>
  ms % 3_600_000 === 0 && ms > 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0 && ms > 0
    ? `${ms / 60_000}m`
    : ms % 1000 === 0 && ms > 0
    ? `${ms / 1000}s`
    : `${ms}ms`
