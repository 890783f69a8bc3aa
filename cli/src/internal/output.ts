/**
 * What the command line prints goes through one `Console`: no ANSI escapes on a stream that is not a
 * terminal, nor anywhere when `NO_COLOR` is set (https://no-color.org) or `TERM=dumb`; and the usage line
 * of a subcommand's help reads `$ effect-lock run …`, as it is typed, not `$ run …`.
 */
import type { Console } from "effect"
import { Effect } from "effect"

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g

/** Whether escapes may go to a stream. */
const colours = (stream: { readonly isTTY?: boolean }): boolean =>
  stream.isTTY === true && (process.env.NO_COLOR ?? "") === "" && process.env.TERM !== "dumb"

const usageLine = /^(\s*)\$ (run|status)\b/gm

const fix = (coloured: boolean) => (arg: unknown): unknown => {
  if (typeof arg !== "string") return arg
  const text = arg.replace(usageLine, "$1$ effect-lock $2")
  return coloured ? text : text.replace(ANSI, "")
}

/** The console with these rules, over `base`. */
export const make = (base: Console.Console): Console.Console => {
  const out = fix(colours(process.stdout))
  const err = fix(colours(process.stderr))
  const unsafe = base.unsafe
  return {
    ...base,
    log: (...args) => base.log(...args.map(out)),
    error: (...args) => base.error(...args.map(err)),
    unsafe: {
      ...unsafe,
      log: (...args) => unsafe.log(...args.map(out)),
      error: (...args) => unsafe.error(...args.map(err))
    }
  }
}

/** Runs `self` with the command line's console. */
export const provide = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (base) => Effect.withConsole(self, make(base)))
