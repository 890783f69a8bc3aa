/**
 * `effect-lock status`: a read-only look at a lock, for people (one line) or scripts (`--json`).
 */
import { Console, Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { lockKeys } from "../keys.js"
import * as scripts from "../lock/scripts.js"
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

export const report = (options: Omit<StatusOptions, "json">): Effect.Effect<StatusReport, RedisError, Redis> =>
  Effect.gen(function*() {
    const redis = yield* Redis
    const keys = lockKeys(options.prefix, options.id)
    const reply = yield* scripts.inspect.run(redis, [keys.lock, keys.fence], {})
    const state = reply.holder === "none" ? "free" : reply.holder === "owner" ? "held" : "reserved"
    return { id: options.id, state, remainingMs: reply.remaining, fence: reply.fence } as const
  })

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const describe = (r: StatusReport): string =>
  r.state === "free"
    ? `free (latest fence ${r.fence})`
    : r.state === "held"
    ? `held, ${seconds(r.remainingMs)} left, fence ${r.fence}`
    : `reserved for the next waiter, ${seconds(r.remainingMs)} left (latest fence ${r.fence})`

/** Prints the status on stdout. */
export const status = (options: StatusOptions): Effect.Effect<void, RedisError, Redis> =>
  Effect.flatMap(report(options), (r) => Console.log(options.json ? json(r) : describe(r)))
