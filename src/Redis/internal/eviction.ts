/**
 * The check, on a layer's first use, that Redis will not evict the keys a lock lives on. Under
 * `maxmemory`, every `maxmemory-policy` but `noeviction` lets Redis delete keys to make room: `allkeys-*`
 * any key (a held lock's, its fence counter, a waiting line), `volatile-*` any key with a TTL (every
 * lease has one). A lock evicted while held has two owners; a fence counter evicted starts again from the
 * server's clock (docs/fences.md), so fences still go up.
 * (docs/guarantees-eviction.md has the table.)
 *
 * The backend reads the policy (`CONFIG GET maxmemory*`, on every master of a cluster) on the service's
 * first script; one read is shared by the callers that come while it is in flight. Then, by the layer's
 * `eviction` option:
 *
 * - `"warn"` (the default): the read goes out beside the first scripts, never delaying them; one
 *   `logWarning` per layer names the policy, when the first script that ends after the answer ends.
 * - `"fail"`: the read comes first (each caller waits for it within its own deadline); on a server that
 *   may evict, every script fails with a `RedisError` naming the policy (read again on each call, so a
 *   server set to `noeviction` meanwhile is accepted).
 * - `"ignore"`: nothing is read.
 *
 * A server that refuses CONFIG (a managed service that renames or disables it, an ACL user without
 * `+config`, a REST API without it) cannot be checked: that is not an error; the layer says so once (at
 * debug level, or as a warning with `"fail"`). A read that gets no answer (the connection is down) is
 * made again on the next call; with `"fail"` that call fails with the read's error.
 */
import { Effect } from "effect"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

/** What the layer does about a server that may evict keys. */
export type Mode = "warn" | "fail" | "ignore"

/** One server's setting. */
export interface Setting {
  /** Which server (`host:port`), for the message. */
  readonly where: string
  readonly policy: string
  /** `maxmemory` in bytes, as the server gave it (`"0"`: no limit). */
  readonly maxmemory: string
}

/** What a backend read: the settings of each server, or the server's refusal to answer CONFIG. */
export type Reading =
  | { readonly _tag: "Settings"; readonly settings: ReadonlyArray<Setting> }
  | { readonly _tag: "Refused"; readonly detail: string }

/** A server's answer to `CONFIG GET maxmemory*` (a flat list of names and values), as a setting. */
export const parse = (where: string, reply: unknown): Setting | undefined => {
  if (!Array.isArray(reply)) return undefined
  const values = new Map<string, string>()
  for (let i = 0; i + 1 < reply.length; i += 2) values.set(String(reply[i]), String(reply[i + 1]))
  const policy = values.get("maxmemory-policy")
  return policy === undefined ? undefined : { where, policy, maxmemory: values.get("maxmemory") ?? "0" }
}

const risk = (policy: string): string =>
  policy.startsWith("allkeys-")
    ? "any key, a held lock's, its fence counter or its waiting line"
    : policy.startsWith("volatile-")
    ? "any key with a TTL, a held lock's among them"
    : "keys"

const describe = (setting: Setting): string =>
  `${setting.where} has maxmemory-policy ${setting.policy} (maxmemory ${
    setting.maxmemory === "0" ? "0: no limit yet" : `${setting.maxmemory} bytes`
  }): Redis may evict ${risk(setting.policy)}`

/** The warning (or error) text for the settings that are not `noeviction`. */
export const message = (risky: ReadonlyArray<Setting>): string =>
  `${risky.map(describe).join("; ")}. A lock evicted while held has two owners: set maxmemory-policy noeviction`

export interface Check {
  readonly mode: Mode
  /** Reads the settings; the promise is shared by the callers that come while it is in flight. */
  readonly read: () => Promise<Reading>
  /** Waits for a promise within a deadline, as the backend waits for its scripts' replies. */
  readonly request: <A>(operation: string, start: () => Promise<A>, deadline?: number) => Effect.Effect<A, RedisError>
}

const OPERATION = "check maxmemory-policy"

/**
 * `run`, with the check until it has passed (then `run` itself: nothing more on the hot path). With
 * `"warn"` the check goes out beside the first scripts (no added round trip) and is settled as soon as a
 * script ends after its answer; with `"fail"` it comes first, and a script runs only once it passed.
 */
export const guard = (check: Check, run: Redis.Service["run"]): Redis.Service["run"] => {
  if (check.mode === "ignore") return run
  let passed = false
  let inflight: Promise<Reading> | undefined
  let answer: Reading | undefined
  const read = () => {
    if (inflight === undefined) {
      const started = check.read()
      inflight = started
      const clear = () => {
        if (inflight === started) inflight = undefined
      }
      started.then((reading) => {
        answer = reading
        clear()
      }, clear)
    }
    return inflight
  }
  /** The verdict on an answer: passed (and what to log, once), or the error of a server that may evict. */
  const settle = (reading: Reading): Effect.Effect<void, RedisError> => {
    if (passed) return Effect.void // another caller settled it first (and logged)
    if (reading._tag === "Refused") {
      passed = true
      const text = `could not read maxmemory-policy (${reading.detail}): whether Redis may evict lock keys is unknown`
      return check.mode === "fail"
        ? Effect.logWarning(`${text}; eviction: "fail" cannot be enforced on this server`)
        : Effect.logDebug(text)
    }
    const risky = reading.settings.filter((setting) => setting.policy !== "noeviction")
    if (risky.length > 0 && check.mode === "fail") {
      answer = undefined // read again next time: the server may have been set right meanwhile
      return Effect.fail(new RedisError({ operation: OPERATION, detail: `${message(risky)} (eviction: "fail")` }))
    }
    passed = true
    return risky.length > 0 ? Effect.logWarning(message(risky)) : Effect.void
  }
  if (check.mode === "warn") {
    const settleIfAnswered = Effect.suspend(() => (answer === undefined ? Effect.void : Effect.orDie(settle(answer))))
    return (script, keys, args, deadline) => {
      if (passed) return run(script, keys, args, deadline)
      if (answer === undefined) read().catch(() => {}) // no answer (connection down): asked again next call
      return Effect.ensuring(run(script, keys, args, deadline), settleIfAnswered)
    }
  }
  return (script, keys, args, deadline) =>
    passed ? run(script, keys, args, deadline) : Effect.zipRight(
      Effect.flatMap(check.request(OPERATION, read, deadline), settle),
      run(script, keys, args, deadline)
    )
}
