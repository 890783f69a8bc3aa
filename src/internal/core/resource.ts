/**
 * What a primitive hands the acquisition core: its name, its id and wake-up channel, and its scripts in
 * the shape the line and the lease send them. Lock, Semaphore and the parity handle differ here and in
 * their options; how they wait, hold, keep, release, trace and measure is the core's.
 */
import type { Effect } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

/**
 * Extends many holdings of one kind (e.g. every lock) in one script, owner-checked and never shortening,
 * each by itself: `keys[i]` held by `tokens[i]` to `ms[i]`. Replies each one's PTTL now, or 0 when its
 * token does not hold it, so a lost one is lost alone.
 */
export interface ExtendBatch {
  readonly run: (
    redis: Redis.Service,
    keys: ReadonlyArray<string>,
    tokens: ReadonlyArray<string>,
    ms: ReadonlyArray<number>,
    deadline: number
  ) => Effect.Effect<ReadonlyArray<number>, RedisError>
}

/**
 * `acquired` with the fence when the caller holds the resource now; otherwise how long the holder's
 * lease (or a reservation) has left, and whether the caller is first in line.
 */
export type TryReply = { readonly acquired: true; readonly fence: number } | {
  readonly acquired: false
  readonly remaining: number
  readonly first?: boolean | undefined
}

/**
 * The operations of one resource for one acquisition. A try may fail with an error of the resource's
 * own (`E`, e.g. a semaphore's `permits` mismatch).
 */
export interface Operations<E = never> {
  /** A plain try outside the line of waiters (that never overtakes it). */
  readonly tryAcquire: (token: string, lease: number, deadline?: number) => Effect.Effect<TryReply, RedisError | E>
  /** In line: takes the resource if it is this waiter's turn, else joins (or keeps its place in) the line. */
  readonly tryAcquireFair: (token: string, lease: number, deadline?: number) => Effect.Effect<TryReply, RedisError | E>
  /** Leaves the line, and hands the resource on if it is held by or reserved for this token. */
  readonly leave: (token: string, deadline?: number) => Effect.Effect<boolean, RedisError>
  /** Owner-checked release, handing on to the next living waiter; `false` when not held by `token`. */
  readonly release: (token: string, deadline?: number) => Effect.Effect<boolean, RedisError>
  /**
   * Owner-checked extension that never shortens: to `ms` (`"set"`) or by `ms` (`"add"`). The PTTL now, or
   * 0 when `token` does not hold the resource.
   */
  readonly extend: (
    token: string,
    ms: number,
    mode: "add" | "set",
    deadline?: number
  ) => Effect.Effect<number, RedisError>
  /**
   * Where the keep-alive of many holdings goes in one script: the batch's kind and this holding's key
   * in it (`extend(token, ms, "set")` of every due holding at once). Without it, each extends alone.
   */
  readonly batch?: { readonly script: ExtendBatch; readonly key: string } | undefined
}

/** The primitives, as spans, metrics and logs name them. */
export type Primitive = "Lock" | "Semaphore" | "ReadWriteLock"

export interface Resource<E = never> {
  readonly primitive: Primitive
  /** The span's name, `<Module>.<op>` (e.g. `Lock.acquire`, `Semaphore.take`). */
  readonly span: string
  readonly id: string
  /** The pub/sub channel on which a release wakes the waiter it was handed to. */
  readonly channel: string
  readonly ops: Operations<E>
  /**
   * Makes the owner token of one acquisition (default: 128 random bits as hex). An election's token
   * carries its candidate's identity after the random part, so the holder's identity needs no key.
   */
  readonly token?: (() => string) | undefined
  /**
   * Confirms a won acquisition before it counts as held (the lock's `replicas`); on failure the core
   * has nothing more to undo: `confirm` gives the resource back itself.
   */
  readonly confirm?: ((token: string, deadline: number | undefined) => Effect.Effect<void, RedisError>) | undefined
}
