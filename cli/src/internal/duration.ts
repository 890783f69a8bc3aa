/**
 * Durations as the command line spells them: a number and a unit, short (`1500ms`, `30s`, `5m`, `2h`,
 * `1d`) or as Effect's `Duration` spells them (`1500 millis`, `30 seconds`, `5 minutes`, `2 hours`,
 * `1 day`; singular or plural, with or without the space). A bare number is refused (is `10` ten
 * seconds or ten milliseconds?), except `0`, which is the same in every unit.
 */
import { Either } from "effect"
import { MAX_MILLIS } from "./limits.js"

const UNITS: ReadonlyArray<readonly [ReadonlyArray<string>, number]> = [
  [["ms", "milli", "millis", "millisecond", "milliseconds"], 1],
  [["s", "sec", "secs", "second", "seconds"], 1000],
  [["m", "min", "mins", "minute", "minutes"], 60_000],
  [["h", "hour", "hours"], 3_600_000],
  [["d", "day", "days"], 86_400_000]
]
const UNIT = new Map(UNITS.flatMap(([names, ms]) => names.map((name) => [name, ms] as const)))
const PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/

/** The forms `--help` and errors name. */
export const spelling = "a number and a unit: 1500ms, 30s, 5m, 2h (or 30 seconds, 5 minutes)"

/** Whole milliseconds from `min` to about 24.8 days, or a message saying what was expected. */
export const parse = (text: string, min: 0 | 1): Either.Either<number, string> => {
  const match = PATTERN.exec(text.trim().toLowerCase())
  const unit = match === null
    ? undefined
    : match[2] === ""
    ? (Number(match[1]) === 0 ? 1 : undefined)
    : UNIT.get(match[2]!)
  const raw = match === null || unit === undefined ? NaN : Number(match[1]) * unit
  // `0.7s` is 700 ms, though 0.7 * 1000 is not quite; `0.0005s` is no whole millisecond.
  const ms = Math.abs(raw - Math.round(raw)) < 1e-6 ? Math.round(raw) : NaN
  return Number.isSafeInteger(ms) && ms >= min && ms <= MAX_MILLIS
    ? Either.right(ms)
    : Either.left(
      `expected ${spelling}, ${min === 0 ? "from 0" : "above 0"} and at most ${MAX_MILLIS} ms (about 24.8 days); ` +
        `got ${JSON.stringify(text)}`
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
