/**
 * An election's options, checked once per options object: the lock's checks (`lock/options.ts`) for
 * what an election shares with a lock, and the candidate's identity. Every bad value is an
 * `InvalidOptions` before anything is sent.
 */
import { InvalidOptions } from "../../LockError.js"
import { memo } from "../core/options.js"
import { type Acquisition, checkAcquisition, checkLease } from "../lock/options.js"
import { randomToken } from "../token.js"
import * as validate from "../validate.js"
import { type ElectionKeys, electionKeys } from "./keys.js"

export const DEFAULT_LEASE = 15_000
/** The longest identity accepted. */
export const MAX_IDENTITY = 256

export interface Input {
  readonly id?: unknown
  readonly identity?: unknown
  readonly lease?: unknown
  readonly keepAlive?: unknown
  readonly timeout?: unknown
  readonly replicas?: unknown
  readonly replicaTimeout?: unknown
  readonly prefix?: unknown
}

/** One election's options, resolved: a fair lock acquisition that waits until it wins (or its timeout). */
export interface Election extends Acquisition {
  readonly keys: ElectionKeys
  readonly identity: string
}

const isInvalid = (u: unknown): u is InvalidOptions => u instanceof InvalidOptions

/** `hostname:pid:<8 random hex digits>` where the runtime tells them (Node), else `host:0:<random>`. */
export const defaultIdentity = (): string => {
  const proc = (globalThis as {
    readonly process?: { readonly pid?: number; readonly getBuiltinModule?: (id: string) => unknown }
  }).process
  let host = "host"
  try {
    const os = proc?.getBuiltinModule?.("node:os") as { readonly hostname?: () => string } | undefined
    host = os?.hostname?.() || host
  } catch {
    // not Node: keep the placeholder
  }
  return `${host}:${proc?.pid ?? 0}:${randomToken().slice(0, 8)}`
}

/** An identity: printed on one line by `leader`, so printable like an id (`validate.check.text`). */
export const checkIdentity = (u: unknown): string | InvalidOptions =>
  u === undefined ? defaultIdentity() : validate.check.text("identity", u, MAX_IDENTITY)

export const check = (options: Input | undefined): Election | InvalidOptions => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({
      option: "options",
      expected: "an object with an id",
      received: validate.render(options)
    })
  }
  const lease = checkLease(options.lease, DEFAULT_LEASE)
  if (isInvalid(lease)) return lease
  const acq = checkAcquisition({
    id: options.id,
    lease,
    prefix: options.prefix,
    timeout: options.timeout,
    keepAlive: options.keepAlive,
    replicas: options.replicas,
    replicaTimeout: options.replicaTimeout
  })
  if (isInvalid(acq)) return acq
  const identity = checkIdentity(options.identity)
  if (isInvalid(identity)) return identity
  // A candidate waits in line until it leads, or until its timeout.
  const policy = { ...acq.policy, fair: true, retry: "untilTimeout" as const }
  return { ...acq, policy, keys: electionKeys(acq.prefix, acq.id), identity }
}

const FIELDS = ["id", "identity", "lease", "keepAlive", "timeout", "replicas", "replicaTimeout", "prefix"] as const

/** Checks and resolves an election's options, synchronously (kept per options object). */
export const resolve: (options: Input | undefined) => Election | InvalidOptions = memo<Input, Election>(
  FIELDS,
  check,
  isInvalid
)
