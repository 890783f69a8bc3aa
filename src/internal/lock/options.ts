/**
 * The lock's options, checked once per call: every bad value is an `InvalidOptions` before anything is
 * sent, and the rest is resolved into the plain values the hot path reads.
 */
import { Effect, Schedule } from "effect"
import { InvalidOptions, type LockNotAcquired } from "../../LockError.js"
import { DEFAULT_PREFIX, type LockKeys, lockKeys } from "../keys.js"
import * as validate from "../validate.js"

export const DEFAULT_LEASE = 10_000
export const DEFAULT_ATTEMPTS = 3
export const DEFAULT_DELAY = 100
/** How long an acquisition with `replicas` waits for them to confirm it, by default. */
export const DEFAULT_REPLICA_TIMEOUT = 100

export interface Retry {
  readonly attempts: number
  readonly delay: number
}

export interface Base {
  readonly id: string
  readonly lease: number
  readonly prefix: string
}

const { check } = validate

/** The value of an optional option: its default when undefined. */
const or = <A>(u: unknown, fallback: A, f: (u: unknown) => A | InvalidOptions): A | InvalidOptions =>
  u === undefined ? fallback : f(u)

const checkLease = (u: unknown, fallback: number) => or(u, fallback, (u) => check.millis("lease", u, 1))

export const parseLease = (u: unknown, fallback: number) => validate.lift(checkLease(u, fallback))

export const checkRetry = (u: unknown, fallback: Retry): Retry | InvalidOptions => {
  if (u === undefined) return fallback
  if (typeof u !== "object" || u === null) {
    return new InvalidOptions({
      option: "retry",
      expected: "{ attempts, delay } or a Schedule",
      received: validate.render(u)
    })
  }
  const retry = u as { readonly attempts?: unknown; readonly delay?: unknown }
  const attempts = or(retry.attempts, fallback.attempts, (u) => check.integer("retry.attempts", u, 1))
  if (attempts instanceof InvalidOptions) return attempts
  const delay = or(retry.delay, fallback.delay, (u) => check.millis("retry.delay", u, 0))
  if (delay instanceof InvalidOptions) return delay
  return { attempts, delay }
}

export const parseRetry = (u: unknown, fallback: Retry): Effect.Effect<Retry, InvalidOptions> =>
  validate.lift(checkRetry(u, fallback))

interface BaseInput {
  readonly id?: unknown
  readonly lease?: unknown
  readonly prefix?: unknown
}

const checkBase = (options: BaseInput): Base | InvalidOptions => {
  const id = check.text("id", options?.id)
  if (id instanceof InvalidOptions) return id
  const lease = checkLease(options?.lease, DEFAULT_LEASE)
  if (lease instanceof InvalidOptions) return lease
  const prefix = or(options?.prefix, DEFAULT_PREFIX, (u) => check.prefix("prefix", u))
  if (prefix instanceof InvalidOptions) return prefix
  return { id, lease, prefix }
}

export const parseBase = (options: BaseInput): Effect.Effect<Base, InvalidOptions> => validate.lift(checkBase(options))

/** `attempts` tries `delay` apart, as a schedule fed each failed try. */
export const retrySchedule = ({ attempts, delay }: Retry): Schedule.Schedule<unknown, unknown> =>
  Schedule.spaced(delay).pipe(Schedule.intersect(Schedule.recurs(attempts - 1)))

export type KeepAlive =
  | false
  | { readonly every: number; readonly schedule?: undefined }
  | { readonly every?: undefined; readonly schedule: Schedule.Schedule<unknown, void> }

/** Everything one acquisition needs, resolved. */
export interface Acquisition extends Base {
  readonly keys: LockKeys
  /** Milliseconds the whole acquisition may take, if bounded. */
  readonly timeout: number | undefined
  readonly fair: boolean
  /**
   * When to try again after a failed try (each failed try steps it once); `"untilTimeout"`: no schedule
   * of its own, the wait ends with a wake-up, a look at the holder's lease end, or the timeout.
   */
  readonly retry: Schedule.Schedule<unknown, LockNotAcquired> | "untilTimeout"
  /** When to extend: every `every` ms (the default), on a schedule of the user's, or never (`false`). */
  readonly keepAlive: KeepAlive
  /** TTL of the fence counter in ms; 0: none (fences never go back). Internal callers only. */
  readonly fenceTtl: number
  /** Whether metrics carry the lock id as a label. */
  readonly labelMetrics: boolean
  /** How many replicas must confirm the winning write (`WAIT`) before the lock counts as held; 0: none. */
  readonly replicas: number
  /** How long to wait for them, in ms (less than the lease). */
  readonly replicaTimeout: number
}

export interface AcquireInput {
  readonly id?: unknown
  readonly lease?: unknown
  readonly prefix?: unknown
  readonly retry?: unknown
  readonly timeout?: unknown
  readonly fair?: unknown
  readonly keepAlive?: unknown
  readonly metricsLabel?: unknown
  readonly replicas?: unknown
  readonly replicaTimeout?: unknown
}

const DEFAULT_SCHEDULE = retrySchedule({ attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY })

const flag = (option: string, u: unknown, fallback: boolean): boolean | InvalidOptions =>
  u === undefined
    ? fallback
    : typeof u === "boolean"
    ? u
    : new InvalidOptions({ option, expected: "a boolean", received: validate.render(u) })

const checkKeepAlive = (u: unknown, lease: number): KeepAlive | InvalidOptions =>
  u === undefined
    ? { every: Math.max(1, Math.floor(lease / 3)) }
    : u === false
    ? false
    : Schedule.isSchedule(u)
    ? { schedule: u as Schedule.Schedule<unknown, void> }
    : new InvalidOptions({ option: "keepAlive", expected: "a Schedule, or false", received: validate.render(u) })

const checkAcquisition = (options: AcquireInput, fenceTtl: number): Acquisition | InvalidOptions => {
  const base = checkBase(options)
  if (base instanceof InvalidOptions) return base
  const timeout = or(options?.timeout, undefined, (u) => check.millis("timeout", u, 0))
  if (timeout instanceof InvalidOptions) return timeout
  const fair = flag("fair", options?.fair, true)
  if (fair instanceof InvalidOptions) return fair
  const labelMetrics = flag("metricsLabel", options?.metricsLabel, false)
  if (labelMetrics instanceof InvalidOptions) return labelMetrics
  let retry: Acquisition["retry"]
  if (Schedule.isSchedule(options?.retry)) retry = options.retry as Schedule.Schedule<unknown, LockNotAcquired>
  else if (options?.retry === undefined && timeout !== undefined) retry = "untilTimeout"
  else if (options?.retry === undefined) retry = DEFAULT_SCHEDULE
  else {
    const tries = checkRetry(options?.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY })
    if (tries instanceof InvalidOptions) return tries
    retry = retrySchedule(tries)
  }
  const keepAlive = checkKeepAlive(options?.keepAlive, base.lease)
  if (keepAlive instanceof InvalidOptions) return keepAlive
  const replicas = or(options?.replicas, 0, (u) => check.integer("replicas", u, 0))
  if (replicas instanceof InvalidOptions) return replicas
  const replicaTimeout = or(
    options?.replicaTimeout,
    DEFAULT_REPLICA_TIMEOUT,
    (u) => check.millis("replicaTimeout", u, 1)
  )
  if (replicaTimeout instanceof InvalidOptions) return replicaTimeout
  if (replicas > 0 && replicaTimeout >= base.lease) {
    return new InvalidOptions({
      option: "replicaTimeout",
      expected: `less than the lease (${base.lease} ms)`,
      received: validate.render(options?.replicaTimeout ?? replicaTimeout)
    })
  }
  return {
    ...base,
    keys: lockKeys(base.prefix, base.id),
    timeout,
    fair,
    retry,
    keepAlive,
    fenceTtl,
    labelMetrics,
    replicas,
    replicaTimeout
  }
}

const FIELDS = [
  "id",
  "lease",
  "prefix",
  "retry",
  "timeout",
  "fair",
  "keepAlive",
  "metricsLabel",
  "replicas",
  "replicaTimeout"
] as const

/**
 * The last resolution of each options object, with the values it was made from: a loop that acquires
 * with the same options object checks them once, and a changed field is checked again.
 */
const resolved = new WeakMap<object, { readonly seen: ReadonlyArray<unknown>; readonly acq: Acquisition }>()

/** Checks and resolves an acquisition's options, synchronously (the result is kept per options object). */
export const resolve = (options: AcquireInput, fenceTtl: number): Acquisition | InvalidOptions => {
  if (typeof options !== "object" || options === null) return checkAcquisition(options, fenceTtl)
  const known = resolved.get(options)
  if (known !== undefined && known.acq.fenceTtl === fenceTtl && FIELDS.every((f, i) => options[f] === known.seen[i])) {
    return known.acq
  }
  const acq = checkAcquisition(options, fenceTtl)
  if (!(acq instanceof InvalidOptions)) resolved.set(options, { seen: FIELDS.map((f) => options[f]), acq })
  return acq
}

/** Checks and resolves an acquisition's options. */
export const parseAcquisition = (options: AcquireInput, fenceTtl = 0): Effect.Effect<Acquisition, InvalidOptions> =>
  Effect.suspend(() => validate.lift(resolve(options, fenceTtl)))
