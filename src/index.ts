/**
 * effect-lock: distributed locks for Effect, on Redis.
 *
 * Backends are deep imports so that you load only the client you use:
 * `effect-lock/Redis/Memory` (in process, driven by `Clock`; no Redis needed),
 * `effect-lock/Redis/IoRedis` (TCP, through `ioredis`) and `effect-lock/Redis/Upstash` (HTTP, through
 * `@upstash/redis`; runs on edge runtimes). For tests of your own code, `effect-lock/Redis/MemoryTest` is
 * the embedded store with a kit to steal or expire locks, inject faults and read the keyspace.
 *
 * @since 0.1.0
 */

/**
 * Distributed locks: the `@upstash/lock` handle and the scoped, self-extending lease.
 *
 * @since 0.1.0
 */
export * as Lock from "./Lock.js"

/**
 * The typed errors.
 *
 * @since 0.1.0
 */
export * as LockError from "./LockError.js"

/**
 * The Redis seam that every backend provides.
 *
 * @since 0.1.0
 */
export * as Redis from "./Redis.js"

/**
 * Distributed debounce as a service: calls within `wait` collapse into one run with the last arguments.
 *
 * @since 0.1.0
 */
export * as Debounce from "./Debounce.js"

/**
 * A distributed counting semaphore: at most `permits` at a time across every process, fair and fenced.
 *
 * @since 0.1.0
 */
export * as Semaphore from "./Semaphore.js"

/**
 * A distributed read-write lock: readers together or one writer alone, fair and fenced.
 *
 * @since 0.1.0
 */
export * as ReadWriteLock from "./ReadWriteLock.js"

/**
 * Leader election: one leader at a time per id, fenced by a strictly increasing term, observable.
 *
 * @since 0.1.0
 */
export * as Election from "./Election.js"
