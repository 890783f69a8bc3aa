/**
 * `Lock.acquire`, `withLock`, `withLease`, `withLockIfAvailable`: the lock's options and scripts handed
 * to the acquisition core. The resource of an options object is made once per Redis service.
 */
import type { Effect, Option, Scope } from "effect"
import { InvalidOptions, type LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import type { Redis } from "../../Redis.js"
import * as Core from "../core/acquire.js"
import type { Held } from "../core/lease.js"
import type { Resource } from "../core/resource.js"
import * as Operations from "./operations.js"
import { type AcquireInput, type Acquisition, resolve } from "./options.js"
import * as Replicas from "./replicas.js"

/**
 * The lock of one resolved acquisition on one Redis service, as the core sees it; with `announce`, its
 * changes of holder are published there (an election's).
 */
export const resourceOf = (
  acq: Acquisition,
  redis: Redis["Type"],
  announce?: string
): Resource<never> | InvalidOptions => {
  const unsupported = Replicas.unsupported(acq, redis)
  if (unsupported !== undefined) return unsupported
  const ops = Operations.make(redis, acq.keys, acq.fenceTtl, announce)
  const target = acq.replicas === 0 ? undefined : Replicas.targetOf(acq)
  return {
    primitive: "Lock",
    span: "Lock.acquire",
    id: acq.id,
    channel: acq.keys.channel,
    ops,
    confirm: target === undefined
      ? undefined
      : (token, deadline) => Replicas.confirm(target, redis, ops, token, deadline)
  }
}

/** The spec of each resolved acquisition, per Redis service: made once, like the options. */
const specs = new WeakMap<Acquisition, { readonly redis: Redis["Type"]; readonly spec: Core.Spec | InvalidOptions }>()

const specOf = (options: AcquireInput, redis: Redis["Type"]): Core.Spec | InvalidOptions => {
  const acq = resolve(options)
  if (acq instanceof InvalidOptions) return acq
  const known = specs.get(acq)
  if (known !== undefined && known.redis === redis) return known.spec
  const resource = resourceOf(acq, redis)
  const spec = resource instanceof InvalidOptions ? resource : { resource, policy: acq.policy }
  specs.set(acq, { redis, spec })
  return spec
}

export const acquire = (
  options: AcquireInput
): Effect.Effect<Held, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Core.acquire((redis) => specOf(options, redis))

export const withHeld = <A, E, R>(
  options: AcquireInput,
  f: (lease: Held) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Core.withHeld((redis) => specOf(options, redis), f)

/** One plain try, outside the line: the same options object gives the same one-try options object. */
const oneTry = new WeakMap<AcquireInput, AcquireInput>()
const ONE_TRY = { attempts: 1 } as const

export const withHeldIfAvailable = <A, E, R>(
  options: AcquireInput,
  self: Effect.Effect<A, E, R>
): Effect.Effect<Option.Option<A>, E | LockLost | RedisError | InvalidOptions, R | Redis> => {
  let once = typeof options === "object" && options !== null ? oneTry.get(options) : undefined
  if (once === undefined) {
    once = { ...options, retry: ONE_TRY, fair: false }
    if (typeof options === "object" && options !== null) oneTry.set(options, once)
  }
  const input = once
  return Core.withHeldIfAvailable((redis) => specOf(input, redis), self)
}
