/**
 * The lock's options, checked once per options object (see `core/options.ts`): every bad value is an
 * `InvalidOptions` before anything is sent, and the rest is resolved into the plain values the hot path
 * reads — the core's `Policy`, the lock's keys, and its `replicas`.
 */
import { Schedule } from "effect"
import { InvalidOptions, type LockNotAcquired } from "../../LockError.js"
import type { Policy } from "../core/acquire.js"
import type { KeepAlive } from "../core/lease.js"
import { DEFAULT_FENCE_TTL } from "../core/lua.js"
import { memo } from "../core/options.js"
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
  /** How long the fence counter lives after the last acquisition, in ms. */
  readonly fenceTtl: number
}

const { check } = validate
const isInvalid = (u: unknown): u is InvalidOptions => u instanceof InvalidOptions

/** The value of an optional option: its default when undefined. */
const or = <A>(u: unknown, fallback: A, f: (u: unknown) => A | InvalidOptions): A | InvalidOptions =>
  u === undefined ? fallback : f(u)

export const checkLease = (u: unknown, fallback: number) => or(u, fallback, (u) => check.millis("lease", u, 1))

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
  if (isInvalid(attempts)) return attempts
  const delay = or(retry.delay, fallback.delay, (u) => check.millis("retry.delay", u, 0))
  if (isInvalid(delay)) return delay
  return { attempts, delay }
}

export interface BaseInput {
  readonly id?: unknown
  readonly lease?: unknown
  readonly prefix?: unknown
  readonly fenceTtl?: unknown
}

export const checkBase = (options: BaseInput | undefined, maxId = validate.MAX_ID_LENGTH): Base | InvalidOptions => {
  const id = check.text("id", options?.id, maxId)
  if (isInvalid(id)) return id
  const lease = checkLease(options?.lease, DEFAULT_LEASE)
  if (isInvalid(lease)) return lease
  const prefix = or(options?.prefix, DEFAULT_PREFIX, (u) => check.prefix("prefix", u))
  if (isInvalid(prefix)) return prefix
  const fenceTtl = or(options?.fenceTtl, DEFAULT_FENCE_TTL, (u) => check.millis("fenceTtl", u, 1))
  if (isInvalid(fenceTtl)) return fenceTtl
  return { id, lease, prefix, fenceTtl }
}

/** `attempts` tries `delay` apart, as a schedule fed each failed try. */
export const retrySchedule = ({ attempts, delay }: Retry): Schedule.Schedule<unknown, unknown> =>
  Schedule.spaced(delay).pipe(Schedule.intersect(Schedule.recurs(attempts - 1)))

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

/** How one acquisition waits and keeps its lease: the options every primitive's acquisitions share. */
export interface WaitInput {
  readonly retry?: unknown
  readonly timeout?: unknown
  readonly fair?: unknown
  readonly keepAlive?: unknown
}

/** Checks the waiting options of an acquisition of a lease of `lease` ms. */
export const checkPolicy = (
  id: string,
  lease: number,
  options: WaitInput | undefined,
  labelMetrics: boolean
): Policy | InvalidOptions => {
  const timeout = or(options?.timeout, undefined, (u) => check.millis("timeout", u, 0))
  if (isInvalid(timeout)) return timeout
  const fair = flag("fair", options?.fair, true)
  if (isInvalid(fair)) return fair
  let retry: Policy["retry"]
  if (Schedule.isSchedule(options?.retry)) retry = options.retry as Schedule.Schedule<unknown, LockNotAcquired>
  else if (options?.retry === undefined && timeout !== undefined) retry = "untilTimeout"
  else if (options?.retry === undefined) retry = DEFAULT_SCHEDULE
  else {
    const tries = checkRetry(options.retry, { attempts: DEFAULT_ATTEMPTS, delay: DEFAULT_DELAY })
    if (isInvalid(tries)) return tries
    retry = retrySchedule(tries)
  }
  const keepAlive = checkKeepAlive(options?.keepAlive, lease)
  if (isInvalid(keepAlive)) return keepAlive
  return { id, lease, timeout, fair, retry, keepAlive, labelMetrics, exactTries: false, undo: true }
}

/** Everything one lock acquisition needs, resolved. */
export interface Acquisition extends Base {
  readonly policy: Policy
  readonly keys: LockKeys
  /** How many replicas must confirm the winning write (`WAIT`) before the lock counts as held; 0: none. */
  readonly replicas: number
  /** How long to wait for them, in ms (less than the lease). */
  readonly replicaTimeout: number
}

export interface AcquireInput extends BaseInput, WaitInput {
  readonly metricsLabel?: unknown
  readonly replicas?: unknown
  readonly replicaTimeout?: unknown
}

/** Checks an acquisition's options; `maxId` is for internal callers whose ids carry more than the user's. */
export const checkAcquisition = (
  options: AcquireInput | undefined,
  maxId = validate.MAX_ID_LENGTH
): Acquisition | InvalidOptions => {
  const base = checkBase(options, maxId)
  if (isInvalid(base)) return base
  const labelMetrics = flag("metricsLabel", options?.metricsLabel, false)
  if (isInvalid(labelMetrics)) return labelMetrics
  const policy = checkPolicy(base.id, base.lease, options, labelMetrics)
  if (isInvalid(policy)) return policy
  const replicas = or(options?.replicas, 0, (u) => check.integer("replicas", u, 0))
  if (isInvalid(replicas)) return replicas
  const replicaTimeout = or(
    options?.replicaTimeout,
    DEFAULT_REPLICA_TIMEOUT,
    (u) => check.millis("replicaTimeout", u, 1)
  )
  if (isInvalid(replicaTimeout)) return replicaTimeout
  if (replicas > 0 && replicaTimeout >= base.lease) {
    return new InvalidOptions({
      option: "replicaTimeout",
      expected: `less than the lease (${base.lease} ms)`,
      received: validate.render(options?.replicaTimeout ?? replicaTimeout)
    })
  }
  return { ...base, policy, keys: lockKeys(base.prefix, base.id), replicas, replicaTimeout }
}

/** The fields of an acquisition's options, as `memo` compares them (every primitive with the lock's options). */
export const FIELDS = [
  "id",
  "lease",
  "prefix",
  "fenceTtl",
  "retry",
  "timeout",
  "fair",
  "keepAlive",
  "metricsLabel",
  "replicas",
  "replicaTimeout"
] as const

/** Checks and resolves an acquisition's options, synchronously (kept per options object). */
export const resolve: (options: AcquireInput | undefined) => Acquisition | InvalidOptions = memo<
  AcquireInput,
  Acquisition
>(FIELDS, (options) => checkAcquisition(options), isInvalid)
