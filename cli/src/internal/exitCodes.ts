/**
 * The exit codes of the `effect-lock` command, beside the child's own. Codes 64–78 follow BSD
 * `sysexits.h`, as `flock -E 75` does; 126 and 127 follow the shells.
 */
import { Data } from "effect"

export const ExitCodes = {
  /** Options or arguments rejected (EX_USAGE); nothing was sent to Redis. */
  usage: 64,
  /** Redis could not be reached or failed (EX_UNAVAILABLE). */
  unavailable: 69,
  /** The lease was lost while the command ran; the command was stopped. */
  leaseLost: 70,
  /** The lock was not acquired (EX_TEMPFAIL, like `flock -E 75`); change it with `--conflict-exit-code`. */
  notAcquired: 75,
  /** The command was found but could not be run. */
  cannotExecute: 126,
  /** The command was not found. */
  notFound: 127,
  /** SIGINT (Ctrl-C) ended `run` or the command: 128 + 2. */
  interrupted: 130,
  /** SIGTERM ended `run` or the command: 128 + 15. */
  terminated: 143
} as const

/** A failure of the command itself, with the code it exits with and what it prints (no secrets). */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly code: number; readonly message: string }> {}
