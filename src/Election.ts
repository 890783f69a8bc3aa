/**
 * Leader election: one leader at a time per election id, across every process, fenced by a term.
 *
 * - A candidate waits in line (first come, first served) until it leads; it leads until it resigns
 *   (its scope closes: the next candidate is woken at once, over pub/sub where the backend pushes) or
 *   its lease is lost. A leader's lease is kept alive while it leads, like a lock's.
 * - Every leadership has a `term`, strictly increasing per election: pass it along with every write
 *   the leader makes (a fence) and let the store refuse a write from an older term.
 * - Work run as leader ({@link whileLeader}, {@link runAsLeader}, {@link singleton}) is interrupted
 *   with `LeadershipLost` when leadership is lost, before the lease can lapse in Redis.
 * - Anyone can see who leads ({@link leader}) or follow every change ({@link observe}).
 *
 * It is a lock underneath (the same line of waiters, lease keeper, `replicas` and errors), whose
 * keys live apart from every lock's: `<prefix>election:{<id>}`.
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Election } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const scheduler = (leadership: Election.Leadership) =>
 *   Effect.log(`leading term ${leadership.term}: running the scheduler`).pipe(
 *     Effect.zipRight(Effect.sleep("1 minute")),
 *     Effect.forever
 *   )
 *
 * // One copy of the scheduler runs, whichever process leads; another takes over when it dies.
 * Election.runAsLeader({ id: "scheduler" })(scheduler).pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Layer, Option, Schedule, Scope, Stream } from "effect"
import * as internal from "./internal/election/election.js"
import * as observer from "./internal/election/observe.js"
import type { InvalidOptions, LeadershipLost, LockNotAcquired, RedisError } from "./LockError.js"
import type { Redis } from "./Redis.js"

/**
 * The options of every entry point. Only `id` and `prefix` matter to {@link leader} and {@link observe}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The election's name. 1 to 1024 characters; any text is fine (it is never spliced into Lua). */
  readonly id: string
  /**
   * Who this candidate is, as others see it ({@link leader}, {@link observe}). 1 to 256 characters,
   * without control characters. Default `<hostname>:<pid>:<8 random hex digits>`, made once per options
   * object.
   */
  readonly identity?: string | undefined
  /** How long leadership lasts without extension. A number is milliseconds. Default 15 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  /**
   * When to extend the lease while leading. Default: every third of the lease. `false`: leadership
   * simply ends with its lease.
   */
  readonly keepAlive?: Schedule.Schedule<unknown, void> | false | undefined
  /**
   * How long {@link campaign} (and each campaign of the others) may wait in line: `LockNotAcquired`
   * (reason `"timeout"`) after it. Default: no limit.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * How many replicas must have the winning write before leadership counts (Redis `WAIT`), so that a
   * failover cannot lose it or repeat its term. Default 0. Only on backends with replicas (ioredis).
   */
  readonly replicas?: number | undefined
  /** How long to wait for `replicas` (less than the lease). Default 100 ms. */
  readonly replicaTimeout?: Duration.DurationInput | undefined
  /** Namespace for every key. Default `"effect-lock:"`; the election's key is `<prefix>election:{<id>}`. */
  readonly prefix?: string | undefined
}

/**
 * A leadership held by this candidate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Leadership {
  /** The election's id. */
  readonly id: string
  /** The term: strictly increasing per election, the fence to pass with every write made as leader. */
  readonly term: number
  /** This candidate's identity, as others see it. */
  readonly identity: string
  /** Fails with `LeadershipLost` once leadership is lost; never succeeds. */
  readonly lost: Effect.Effect<never, LeadershipLost>
  readonly isLost: Effect.Effect<boolean>
  /**
   * Until when (Clock milliseconds, monotonic) this candidate is sure to lead: measured from before the
   * request that proved it, minus a drift margin.
   */
  readonly validUntil: Effect.Effect<number>
}

/**
 * The leader, as anyone sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Leader {
  readonly identity: string
  readonly term: number
  /** How long its lease has left, as Redis said. */
  readonly remaining: Duration.Duration
}

/**
 * Waits in line until this candidate leads, and leads until the scope closes (it resigns: the next
 * candidate is woken at once) or the lease is lost (see {@link Leadership.lost}).
 *
 * @example
 * import { Effect } from "effect"
 * import { Election } from "effect-lock"
 *
 * const leading = Effect.scoped(Effect.gen(function*() {
 *   const leadership = yield* Election.campaign({ id: "outbox-relay", identity: "worker-1" })
 *   yield* Effect.log(`leading, term ${leadership.term}`)
 * }))
 *
 * @since 0.1.0
 * @category campaigning
 */
export const campaign: (
  options: Options
) => Effect.Effect<Leadership, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> = internal.campaign

/**
 * Campaigns, runs `self` as leader (it may take the {@link Leadership}), and resigns when `self` ends.
 * `self` is interrupted, and the whole fails with `LeadershipLost`, when leadership is lost.
 *
 * @example
 * import { Effect } from "effect"
 * import { Election } from "effect-lock"
 *
 * const migrate = Election.whileLeader({ id: "migrations" })((leadership) =>
 *   Effect.log(`migrating as term ${leadership.term}`)
 * )
 *
 * @since 0.1.0
 * @category campaigning
 */
export const whileLeader: (
  options: Options
) => <A, E, R>(
  self: Effect.Effect<A, E, R> | ((leadership: Leadership) => Effect.Effect<A, E, R>)
) => Effect.Effect<A, E | LeadershipLost | LockNotAcquired | RedisError | InvalidOptions, R | Redis> =
  internal.whileLeader

/**
 * {@link whileLeader} again and again: campaigns again after every loss of leadership or end of
 * `self` (at once), and after a Redis fault (after a pause: 100 ms, doubling to 2 s). Fails only with
 * `self`'s own errors, or bad options. The shape of a singleton worker.
 *
 * @example
 * import { Effect } from "effect"
 * import { Election } from "effect-lock"
 *
 * const relay = Election.runAsLeader({ id: "outbox-relay" })(
 *   Effect.log("relaying").pipe(Effect.zipRight(Effect.sleep("1 second")), Effect.forever)
 * )
 *
 * @since 0.1.0
 * @category campaigning
 */
export const runAsLeader: (
  options: Options
) => <A, E, R>(
  self: Effect.Effect<A, E, R> | ((leadership: Leadership) => Effect.Effect<A, E, R>)
) => Effect.Effect<never, E | InvalidOptions, R | Redis> = internal.runAsLeader

/**
 * A layer that runs `self` as leader ({@link runAsLeader}) for as long as it lives, in a fiber of its
 * own; `self`'s failures are logged and it campaigns again. Bad options fail the layer.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Election } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const Scheduler = Election.singleton({ id: "scheduler" }, Effect.log("scheduling").pipe(Effect.forever))
 * const App = Scheduler.pipe(Layer.provide(Memory.layer))
 *
 * @since 0.1.0
 * @category campaigning
 */
export const singleton: <A, E, R>(
  options: Options,
  self: Effect.Effect<A, E, R> | ((leadership: Leadership) => Effect.Effect<A, E, R>)
) => Layer.Layer<never, InvalidOptions, R | Redis> = internal.singleton

/**
 * Who leads now: `Option.none()` when nobody does (or leadership is being handed over).
 *
 * @example
 * import { Effect, Option } from "effect"
 * import { Election } from "effect-lock"
 *
 * const who = Effect.map(Election.leader({ id: "scheduler" }), Option.map((l) => `${l.identity} (term ${l.term})`))
 *
 * @since 0.1.0
 * @category observing
 */
export const leader: (options: Options) => Effect.Effect<Option.Option<Leader>, RedisError | InvalidOptions, Redis> =
  internal.leader

/**
 * What {@link inspect} sees of an election: its leader now, if any, and the latest term begun.
 *
 * @since 0.1.0
 * @category models
 */
export interface Inspection {
  readonly id: string
  readonly leader: Option.Option<Leader>
  /** The latest term begun (the leader's, when there is one); 0 if nobody ever led. */
  readonly term: number
}

/**
 * A read-only look at an election for an observer (a dashboard, the command line's `leader`): the leader
 * now, if any, and the latest term begun, even while nobody leads. One script, nothing written.
 *
 * @example
 * import { Effect, Option } from "effect"
 * import { Election } from "effect-lock"
 *
 * const report = Effect.map(Election.inspect({ id: "outbox-relay" }), ({ leader, term }) =>
 *   Option.match(leader, {
 *     onNone: () => `nobody leads (latest term ${term})`,
 *     onSome: (l) => `${l.identity} leads, term ${l.term}`
 *   }))
 *
 * @since 0.1.0
 * @category observing
 */
export const inspect: (options: Options) => Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> =
  internal.inspect

/**
 * The leader now, then every change in order: a new leader (terms only increase), or nobody once the
 * leader resigned or its lease ran out; never the same twice in a row. Pushed where the backend
 * pushes (each win and resignation is announced by the script that made it), else polled every
 * 100 ms; a lapsed lease is seen when it would end, and after the subscriber reconnects the stream
 * comes back to the current leader within a second. Fails with `RedisError` if a look fails.
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import { Election } from "effect-lock"
 *
 * const follow = Election.observe({ id: "scheduler" }).pipe(
 *   Stream.runForEach((leader) => Effect.log(leader))
 * )
 *
 * @since 0.1.0
 * @category observing
 */
export const observe: (options: Options) => Stream.Stream<Option.Option<Leader>, RedisError | InvalidOptions, Redis> =
  observer.observe
