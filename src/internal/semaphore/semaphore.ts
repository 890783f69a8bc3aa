/**
 * `Semaphore.make`: the options checked once per handle (and each take's once per options object), then
 * every take is the acquisition core's, over the semaphore's scripts.
 */
import { Effect } from "effect"
import { InvalidOptions } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import type { Options, Permits, Semaphore, TakeOptions } from "../../Semaphore.js"
import * as Core from "../core/acquire.js"
import { memo } from "../core/options.js"
import type { Resource } from "../core/resource.js"
import { semaphoreKeys } from "../keys.js"
import { checkBase, checkPolicy } from "../lock/options.js"
import * as validate from "../validate.js"
import * as Operations from "./operations.js"

/** The largest `permits` accepted (the count is kept in Redis sorted-set scores). */
export const MAX_PERMITS = 1_000_000

const ONE_TRY: TakeOptions = { retry: { attempts: 1 }, fair: false }

const FIELDS = ["timeout", "retry", "fair", "keepAlive"] as const

const isInvalid = (u: unknown): u is InvalidOptions => u instanceof InvalidOptions

export const make: (options: Options) => Effect.Effect<Semaphore, InvalidOptions, Redis> = Effect.fnUntraced(
  function*(options: Options) {
    const base = yield* validate.lift(checkBase(options))
    const permits = yield* validate.integer("permits", options?.permits, 1, MAX_PERMITS)
    const redis = yield* Redis
    const keys = semaphoreKeys(base.prefix, base.id)
    const ops = Operations.make(redis, keys, permits, base.fenceTtl)
    const policyOf = memo<TakeOptions, Core.Policy>(
      FIELDS,
      (take) => checkPolicy(base.id, base.lease, take, false),
      isInvalid
    )
    /** One resource per count of permits, made when first needed. */
    const resources = new Map<number, Resource<InvalidOptions>>()
    const resourceOf = (n: number): Resource<InvalidOptions> => {
      const known = resources.get(n)
      if (known !== undefined) return known
      const resource: Resource<InvalidOptions> = {
        primitive: "Semaphore",
        span: "Semaphore.take",
        id: base.id,
        channel: keys.channel,
        ops: ops.holding(n)
      }
      resources.set(n, resource)
      return resource
    }
    const specOf = (n: unknown, take: TakeOptions | undefined): Core.Spec<InvalidOptions> | InvalidOptions => {
      const count = validate.check.integer("permits taken", n, 1, permits)
      if (isInvalid(count)) return count
      const policy = policyOf(take)
      return isInvalid(policy) ? policy : { resource: resourceOf(count), policy }
    }
    return {
      id: base.id,
      permits,
      take: (n, take) => Core.acquireOn(redis, () => specOf(n, take)) as Effect.Effect<Permits, any, any>,
      withPermits: (n, take) => (self) => Core.withHeldOn(redis, () => specOf(n, take), () => self),
      withPermitsIfAvailable: (n) => (self) => Core.withHeldIfAvailableOn(redis, () => specOf(n, ONE_TRY), self),
      available: ops.available
    } satisfies Semaphore
  }
)
