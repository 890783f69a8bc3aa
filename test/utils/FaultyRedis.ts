/**
 * A Redis service wrapper for tests: it records which scripts a client runs and injects faults into them.
 *
 * `MemoryTest` (src/Redis/MemoryTest.ts) is the fault kit, and tests use it wherever it fits: the next
 * operations fail or never answer, a lock is stolen or expires, the keyspace is read. This wrapper exists
 * beside it for what a kit for users' tests does not do and the library's own tests need:
 *
 * - it wraps any `Redis`, the Memory store or a real backend (the Debounce conformance suite waits on a
 *   recorded run on IoRedis, Upstash and the Cluster);
 * - each wrapper is one client: several over one store are several processes sharing one Redis, each with
 *   its own faults and its own clock (`Effect.withClock` around a client's program changes that client's
 *   clock, not the store's: the store keeps the time of the fiber that built the wrapper);
 * - a fault is for one script, or the `nth` run of it, and may strike after the script was applied (an
 *   answer late, lost or sent twice), or run something between the script and its answer;
 * - it records the scripts a client ran, so a test can say that nothing was sent.
 *
 * `on(script, fault, { nth })`: what the `nth` run of `script` from now on does (every run when `nth` is
 * omitted). `script` is a name, or a prefix ending in `*` (`"lock.acquire*"`, `"*"`). The first matching
 * rule wins. `cut`: from now on every run fails without reaching the store (a client whose process died).
 */
import { Clock, Effect, Layer } from "effect"
import { RedisError } from "../../src/LockError.js"
import * as Redis from "../../src/Redis.js"

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
  /** Applied; `effect` runs before the answer comes back (another client acts in between, say). */
  | { readonly _tag: "Then"; readonly effect: Effect.Effect<unknown, unknown> }

export const DelayReply = (millis: number): Fault => ({ _tag: "DelayReply", millis })
export const FailAfterApply: Fault = { _tag: "FailAfterApply" }
export const HangAfterApply: Fault = { _tag: "HangAfterApply" }
export const Hang: Fault = { _tag: "Hang" }
export const Fail: Fault = { _tag: "Fail" }
export const Duplicate: Fault = { _tag: "Duplicate" }
export const Then = (effect: Effect.Effect<unknown, unknown>): Fault => ({ _tag: "Then", effect })

interface Rule {
  readonly matches: (script: string) => boolean
  readonly nth: number | undefined
  readonly fault: Fault
  /** Runs it matched so far. */
  seen: number
}

const pattern = (script: string) => (name: string) =>
  script.endsWith("*") ? name.startsWith(script.slice(0, -1)) : name === script

export interface FaultyRedis {
  /** The wrapped service; needs the store (any `Redis`) below it. */
  readonly layer: Layer.Layer<Redis.Redis, never, Redis.Redis>
  readonly on: (script: string, fault: Fault, options?: { readonly nth?: number }) => void
  /** Drops every rule (not `cut`). */
  readonly clear: () => void
  readonly cut: () => void
  /** How many runs of `script` (`"*"`: of any script) this client has started. */
  readonly runs: (script: string) => number
  /** The names of the scripts this client has run, in order. */
  readonly calls: ReadonlyArray<string>
}

const lost = (name: string, detail: string) => new RedisError({ operation: `eval ${name}`, detail })

/**
 * A request that never gets an answer, as a real backend reports it: a `RedisError` at the run's
 * deadline (never, without one).
 */
const noAnswer = <A>(name: string, timer: Redis.Timer, deadline: number | undefined): Effect.Effect<A, RedisError> =>
  deadline === undefined ? Effect.never : Effect.async<A, RedisError>((resume) => {
    const cancel = timer.schedule(
      deadline,
      () => resume(Effect.fail(new RedisError({ operation: `eval ${name}`, detail: "no answer before the deadline" })))
    )
    return Effect.sync(cancel)
  })

export const make = (): FaultyRedis => {
  let rules: Array<Rule> = []
  let isCut = false
  const calls: Array<string> = []
  const counts = new Map<string, number>()
  const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
  /** The rule for this run: every rule that matches counts it, the first due one applies. */
  const ruleFor = (name: string) => {
    let due: Rule | undefined
    for (const rule of rules) {
      if (!rule.matches(name)) continue
      rule.seen++
      if (due === undefined && (rule.nth === undefined || rule.nth === rule.seen)) due = rule
    }
    return due
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
            calls.push(script.name)
            count(script.name)
            count("*")
            if (isCut) return Effect.fail(lost(script.name, "connection lost (client cut)"))
            const rule = ruleFor(script.name)
            const apply = Effect.withClock(inner.run(script, keys, args, deadline), serverClock)
            if (rule === undefined) return apply
            const fault = rule.fault
            switch (fault._tag) {
              case "DelayReply": {
                const millis = fault.millis
                return Effect.flatMap(Effect.exit(apply), (exit): Effect.Effect<A, RedisError> =>
                  deadline !== undefined && inner.timer.now() + millis > deadline
                    ? noAnswer<A>(script.name, inner.timer, deadline)
                    : Effect.zipRight(Effect.sleep(millis), exit))
              }
              case "FailAfterApply":
                return Effect.zipRight(Effect.exit(apply), Effect.fail(lost(script.name, "502 Bad Gateway")))
              case "HangAfterApply":
                return Effect.zipRight(Effect.exit(apply), noAnswer<A>(script.name, inner.timer, deadline))
              case "Hang":
                return noAnswer<A>(script.name, inner.timer, deadline)
              case "Fail":
                return Effect.fail(lost(script.name, "connection refused"))
              case "Duplicate":
                return Effect.zipRight(Effect.exit(apply), apply)
              case "Then":
                return Effect.tap(apply, () =>
                  Effect.orDie(fault.effect))
            }
          })
      })
    })
  )
  return {
    layer,
    on: (script, fault, options = {}) =>
      void rules.push({ matches: pattern(script), nth: options.nth, fault, seen: 0 }),
    clear: () => void (rules = []),
    cut: () => void (isCut = true),
    runs: (script) => counts.get(script) ?? 0,
    calls
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
