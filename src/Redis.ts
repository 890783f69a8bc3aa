/**
 * The Redis seam: the one service through which every Redis operation of effect-lock goes.
 *
 * An operation is a {@link Script}: a named value holding its Lua source, its key count, a decoder for
 * its reply and the same operation written in TypeScript over a {@link Keyspace} (used by the embedded
 * store). A backend only has to know how to run a script:
 *
 * - `effect-lock/Redis/Memory` — in process, time from Effect's `Clock` (no Redis needed).
 * - `effect-lock/Redis/IoRedis` — TCP through `ioredis`.
 * - `effect-lock/Redis/Upstash` — HTTP through `@upstash/redis` (serverless and edge runtimes).
 *
 * @example
 * import { Effect } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * const program = Lock.withLock({ id: "job" })(Effect.log("only one of me at a time"))
 * program.pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import { Context, Effect, Either } from "effect"
import { RedisError } from "./LockError.js"

/**
 * A reply as Redis gives it to a script's caller: integers, bulk strings, nil and arrays of those.
 *
 * @since 0.1.0
 * @category models
 */
export type Reply = number | string | null | ReadonlyArray<Reply>

/**
 * The keyspace operations a script's TypeScript twin may use. Each one means exactly what the Redis
 * command of the same name means (expiry in milliseconds of the store's clock).
 *
 * @since 0.1.0
 * @category models
 */
export interface Keyspace {
  /** The store's current time in milliseconds. */
  readonly now: number
  readonly get: (key: string) => string | null
  /** `SET key value [PX px]` (no expiry when `px` is omitted). */
  readonly set: (key: string, value: string, px?: number) => void
  readonly del: (key: string) => number
  /** `INCR`: throws on a value that is not an integer, like Redis does. */
  readonly incr: (key: string) => number
  /** `PTTL`: -2 when missing, -1 when the key has no expiry. */
  readonly pttl: (key: string) => number
  /** `PEXPIRE`: 1 if the key exists, else 0. */
  readonly pexpire: (key: string, ms: number) => number
  /** `ZADD key score member` (one member); 1 when it was added, 0 when only its score changed. */
  readonly zadd: (key: string, score: number, member: string) => number
  /** `ZREM` one member; how many were removed. */
  readonly zrem: (key: string, member: string) => number
  /** `ZSCORE`: the member's score, or null. */
  readonly zscore: (key: string, member: string) => number | null
  /** `ZRANGE key start stop` by rank (negative ranks count from the end), lowest score first. */
  readonly zrange: (key: string, start: number, stop: number) => ReadonlyArray<string>
  /** The members whose score is below `max` (`ZRANGEBYSCORE key -inf (max`), lowest first. */
  readonly zbelow: (key: string, max: number) => ReadonlyArray<string>
  /** `PUBLISH`: delivered to subscribers once the script has finished. */
  readonly publish: (channel: string, message: string) => void
}

/**
 * One atomic operation: Lua for Redis, and its TypeScript twin for the embedded store. Both must give
 * the same reply; the conformance suite checks that they do.
 *
 * @since 0.1.0
 * @category models
 */
export interface Script<A> {
  /** A stable name, used in spans, logs and errors. */
  readonly name: string
  readonly lua: string
  readonly numberOfKeys: number
  /** The embedded store's implementation: runs synchronously, so it is atomic. */
  readonly local: (keyspace: Keyspace, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => Reply
  /** Turns the backend's raw reply into a value, or says why it cannot. */
  readonly decode: (reply: unknown) => Either.Either<A, string>
}

/**
 * Builds a {@link Script}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const script = <A>(options: Script<A>): Script<A> => options

/**
 * One timer per service, on Effect's `Clock`: the deadlines of every request, waiter and lease of a
 * client are entries of it, so none of them forks a fiber. Time is monotonic milliseconds
 * (`Clock.currentTimeNanos`), immune to wall-clock steps.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timer {
  /** Now, in the timer's monotonic milliseconds. */
  readonly now: () => number
  /** Runs `task` once `now()` reaches `at` (soon after, never before); the result cancels it. */
  readonly schedule: (at: number, task: () => void) => () => void
  /**
   * Runs background work (a lease's keep-alive step, the report of its loss) in a fiber owned by the
   * service's layer: closing the layer interrupts it. It runs with the services the layer was built
   * with (Clock, logger, tracer). Called from timer tasks and other callbacks; returns at once.
   */
  readonly fork: (effect: Effect.Effect<void>) => void
}

/**
 * What a backend provides: run a script, a timer, and push where it can.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Which backend this is (`"memory"`, `"ioredis"`, `"upstash"`). */
  readonly backend: string
  /**
   * Runs a script atomically with `KEYS` and `ARGV`; faults of any kind are a {@link RedisError}. With
   * a `deadline` (in {@link Timer} milliseconds), no answer by then is a `RedisError` too, even while
   * the request is in flight; the script may still have run.
   */
  readonly run: <A>(
    script: Script<A>,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    deadline?: number
  ) => Effect.Effect<A, RedisError>
  /** The service's timer; see {@link Timer}. */
  readonly timer: Timer
  /**
   * Pub/sub, on backends that can push (ioredis; Upstash over Server-Sent Events when its client has
   * `subscribe`); waiters then wake on a release.
   */
  readonly subscriber?: Subscriber | undefined
  /**
   * Whether wake-ups use sharded pub/sub: scripts publish with `SPUBLISH` and the subscriber listens with
   * `SSUBSCRIBE`, so a message goes only to the shard that owns the channel's slot. Set by the ioredis
   * backend on a Redis Cluster whose servers have `SPUBLISH` (Redis ≥ 7); classic `PUBLISH` otherwise.
   */
  readonly sharded?: boolean | undefined
  /**
   * Whether the keys of one script must share a hash slot (a Redis Cluster). Set by the ioredis backend
   * on a cluster client; elsewhere one server holds every key, and any keys may go together.
   */
  readonly cluster?: boolean | undefined
  /**
   * `WAIT replicas timeout` on the connection that carries the scripts for `key` (on a Cluster, the one
   * to the master of `key`'s slot): how many replicas have acknowledged every write sent there so far,
   * including the last script's; fewer than asked once `timeoutMs` has passed. While it waits, that
   * connection's later commands wait too. Only on backends with replicas to ask (ioredis).
   */
  readonly waitForReplicas?:
    | ((key: string, replicas: number, timeoutMs: number) => Effect.Effect<number, RedisError>)
    | undefined
  /**
   * Registers `listener`, called when the server turns out to have restarted (its `run_id` changed
   * across a reconnection): every lock it held is gone, so every lease on it is lost at once, on the
   * first reply from the restarted server. On backends that can tell (ioredis on one server).
   */
  readonly onRestart?: ((listener: () => void) => void) | undefined
  /**
   * The Cluster hash slot of a key, on a cluster (every key of one script must share one): the
   * keep-alive of many leases goes in one script per slot.
   */
  readonly slotOf?: ((key: string) => number) | undefined
}

/**
 * Push notifications over one shared subscriber connection. A channel stays subscribed while it is in
 * use, and a while after, so busy locks do not churn SUBSCRIBE. Interrupting a `subscribe` only stops
 * that caller's wait: the round trip finishes in the subscriber's own fiber, so the channel never stays
 * half-subscribed. After a lost connection `isActive` is false until the server confirms again (channels
 * with listeners are subscribed again on reconnection); messages published meanwhile are lost.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscriber {
  /** Whether the channel is subscribed now (messages published from now on are delivered). */
  readonly isActive: (channel: string) => boolean
  /**
   * Adds a listener (no round trip). `active` tells whether the channel was already subscribed, i.e.
   * messages published from now on reach the listener. Remove it with `remove`.
   */
  readonly listen: (
    channel: string,
    listener: (message: string) => void
  ) => Effect.Effect<{ readonly active: boolean; readonly remove: Effect.Effect<void> }>
  /**
   * Subscribes the channel if it is not, and waits for the server's confirmation; a `RedisError` if it
   * fails or does not come within the backend's bound (never a wait forever).
   */
  readonly subscribe: (channel: string) => Effect.Effect<void, RedisError>
}

/**
 * The Redis service. Provide it with a backend's layer.
 *
 * @since 0.1.0
 * @category tags
 */
export class Redis extends Context.Tag("effect-lock/Redis")<Redis, Service>() {}

/**
 * Reads an integer out of a reply, whatever shape the client gave it (a number, or a numeric string when a
 * client decodes replies differently).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeInteger = (reply: unknown): Either.Either<number, string> => {
  const n = typeof reply === "string" && reply.trim() !== "" ? Number(reply) : reply
  return typeof n === "number" && Number.isSafeInteger(n)
    ? Either.right(n)
    : Either.left(`expected an integer reply, got ${describeReply(reply)}`)
}

/**
 * Reads a fixed-length array of integers out of a reply.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeIntegers = (length: number) => (reply: unknown): Either.Either<ReadonlyArray<number>, string> => {
  if (!Array.isArray(reply) || reply.length !== length) {
    return Either.left(`expected an array of ${length} integers, got ${describeReply(reply)}`)
  }
  const out: Array<number> = []
  for (const item of reply) {
    const n = decodeInteger(item)
    if (Either.isLeft(n)) return Either.left(n.left)
    out.push(n.right)
  }
  return Either.right(out)
}

const describeReply = (reply: unknown): string => {
  try {
    const text = JSON.stringify(reply)
    return text === undefined ? String(reply) : text.length > 80 ? `${text.slice(0, 80)}…` : text
  } catch {
    return typeof reply
  }
}

/**
 * Decodes a backend's raw reply with the script's decoder; a reply of the wrong shape is a
 * {@link RedisError}. For backend authors.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeReply = <A>(script: Script<A>, reply: unknown): Effect.Effect<A, RedisError> =>
  Either.match(script.decode(reply), {
    onLeft: (detail) => Effect.fail(new RedisError({ operation: `eval ${script.name}`, detail })),
    onRight: Effect.succeed
  })
