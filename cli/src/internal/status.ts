/**
 * `effect-lock status`: a read-only look at a lock, for people (one line) or scripts (`--json`).
 */
import { Console, Effect } from "effect"
import * as Lock from "effect-lock/Lock"
import type { InvalidOptions, RedisError } from "effect-lock/LockError"
import type { Redis } from "effect-lock/Redis"
import { json } from "./escape.js"

export interface StatusOptions {
  readonly id: string
  readonly prefix: string
  readonly json: boolean
}

/** What `status --json` prints. */
export interface StatusReport {
  readonly id: string
  /** `reserved`: just released and handed to the next waiter, who has a moment to claim it. */
  readonly state: "free" | "held" | "reserved"
  /** Milliseconds left on the holder's lease (or the reservation); 0 when free. */
  readonly remainingMs: number
  /** The fence of the latest acquisition (the holder's, when held); 0 if the lock was never taken. */
  readonly fence: number
}

export const report = (
  options: Omit<StatusOptions, "json">
): Effect.Effect<StatusReport, RedisError | InvalidOptions, Redis> =>
  Effect.map(Lock.inspect(options), ({ fence, id, remaining, state }) => ({ id, state, remainingMs: remaining, fence }))

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const describe = (r: StatusReport): string =>
  r.state === "free"
    ? `free (latest fence ${r.fence})`
    : r.state === "held"
    ? `held, ${seconds(r.remainingMs)} left, fence ${r.fence}`
    : `reserved for the next waiter, ${seconds(r.remainingMs)} left (latest fence ${r.fence})`

/** Prints the status on stdout. */
export const status = (options: StatusOptions): Effect.Effect<void, RedisError | InvalidOptions, Redis> =>
  Effect.flatMap(report(options), (r) => Console.log(options.json ? json(r) : describe(r)))
