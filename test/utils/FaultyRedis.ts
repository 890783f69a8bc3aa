/**
 * A Redis service wrapper that injects faults into one client's runs, for forcing interleavings on the
 * Memory store under TestClock. Each wrapper is one "client": several wrappers over the same store are
 * several processes sharing one Redis.
 *
 * - The store's time is the time of the fiber that built the wrapper (`Effect.withClock` around a
 *   client's program changes that client's clock, not the server's).
 * - `on(script, fault, { nth })`: what the `nth` run of `script` through this client does (every run
 *   from then on when `nth` is omitted). `script` may be `"*"`. The first matching rule wins.
 * - `cut`: from now on every run fails without reaching the store (a client whose process died).
 */
import { Clock, Effect, Layer } from "effect"
import { RedisError } from "../../src/LockError.js"
import * as Redis from "../../src/Redis.js"
import { noAnswer } from "./probe.js"

export type Fault =
  /** Applied at once; the reply arrives `millis` later (a slow or reordered answer). */
  | { readonly _tag: "DelayReply"; readonly millis: number }
  /** Applied; then the answer is lost (e.g. HTTP 502 after the script ran). */
  | { readonly _tag: "FailAfterApply" }
  /** Applied; the answer never comes. */
  | { readonly _tag: "HangAfterApply" }
  /** Never applied, never answered (a frozen network). */
  | { readonly _tag: "Hang" }
  /** Not applied; fails at once (connection refused). */
  | { readonly _tag: "Fail" }
  /** Applied twice (the transport resent it), answered once, with the second reply. */
  | { readonly _tag: "Duplicate" }

export const DelayReply = (millis: number): Fault => ({ _tag: "DelayReply", millis })
export const FailAfterApply: Fault = { _tag: "FailAfterApply" }
export const HangAfterApply: Fault = { _tag: "HangAfterApply" }
export const Hang: Fault = { _tag: "Hang" }
export const Fail: Fault = { _tag: "Fail" }
export const Duplicate: Fault = { _tag: "Duplicate" }

interface Rule {
  readonly script: string
  readonly nth: number | undefined
  readonly fault: Fault
}

export interface FaultyRedis {
  /** The wrapped service; needs the store (any `Redis`) below it. */
  readonly layer: Layer.Layer<Redis.Redis, never, Redis.Redis>
  readonly on: (script: string, fault: Fault, options?: { readonly nth?: number }) => void
  /** Drops every rule (not `cut`). */
  readonly clear: () => void
  readonly cut: () => void
  /** How many runs of `script` (`"*"`: of any script) this client has started. */
  readonly runs: (script: string) => number
}

const lost = (name: string, detail: string) => new RedisError({ operation: `eval ${name}`, detail })

export const make = (): FaultyRedis => {
  let rules: Array<Rule> = []
  let isCut = false
  const counts = new Map<string, number>()
  const count = (key: string) => {
    const n = (counts.get(key) ?? 0) + 1
    counts.set(key, n)
    return n
  }
  const layer = Layer.effect(
    Redis.Redis,
    Effect.gen(function*() {
      const inner = yield* Redis.Redis
      const serverClock = yield* Effect.clock
      return Redis.Redis.of({
        ...inner,
        run: <A>(
          script: Redis.Script<A>,
          keys: ReadonlyArray<string>,
          args: ReadonlyArray<string>,
          deadline?: number
        ) =>
          Effect.suspend((): Effect.Effect<A, RedisError> => {
            const n = count(script.name)
            const any = count("*")
            if (isCut) return Effect.fail(lost(script.name, "connection lost (client cut)"))
            const rule = rules.find((r) =>
              (r.script === script.name || r.script === "*") &&
              (r.nth === undefined || r.nth === (r.script === "*" ? any : n))
            )
            const apply = Effect.withClock(inner.run(script, keys, args, deadline), serverClock)
            if (rule === undefined) return apply
            // Like a real backend, a run with a deadline gets no later answer than it: a RedisError then.
            const call = { deadline, timer: inner.timer }
            switch (rule.fault._tag) {
              case "DelayReply": {
                const millis = rule.fault.millis
                return Effect.flatMap(Effect.exit(apply), (exit): Effect.Effect<A, RedisError> =>
                  deadline !== undefined && inner.timer.now() + millis > deadline
                    ? noAnswer<A>(script.name, call)
                    : Effect.zipRight(Effect.sleep(millis), exit))
              }
              case "FailAfterApply":
                return Effect.zipRight(Effect.exit(apply), Effect.fail(lost(script.name, "502 Bad Gateway")))
              case "HangAfterApply":
                return Effect.zipRight(Effect.exit(apply), noAnswer<A>(script.name, call))
              case "Hang":
                return noAnswer<A>(script.name, call)
              case "Fail":
                return Effect.fail(lost(script.name, "connection refused"))
              case "Duplicate":
                return Effect.zipRight(Effect.exit(apply), apply)
            }
          })
      })
    })
  )
  return {
    layer,
    on: (script, fault, options = {}) => void rules.push({ script, nth: options.nth, fault }),
    clear: () => void (rules = []),
    cut: () => void (isCut = true),
    runs: (script) => counts.get(script) ?? 0
  }
}

/**
 * A clock whose wall time (`currentTimeMillis`) can be stepped (as NTP does) while its monotonic time
 * (`currentTimeNanos`) and its sleeps follow `base` untouched.
 */
export const steppedClock = (base: Clock.Clock) => {
  let offset = 0
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + offset,
    currentTimeMillis: Effect.map(base.currentTimeMillis, (ms) => ms + offset),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration) => base.sleep(duration)
  }
  return {
    clock,
    /** Moves the wall clock by `millis` (negative: back). */
    step: (millis: number) => void (offset += millis)
  }
}
