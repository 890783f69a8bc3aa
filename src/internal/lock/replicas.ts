/**
 * The `replicas` option: a won lock counts as held only once that many replicas have confirmed the
 * winning write (`WAIT` on the master of the lock's slot), so a failover right after cannot lose the
 * lock or step its fence back. Not confirmed in time: the won lock is given back (owner-checked, handed
 * to the next waiter) and the acquisition fails with a `RedisError`: a fault of the deployment (a
 * replica down or behind), not contention, since nobody else holds the lock.
 */
import { Effect } from "effect"
import { InvalidOptions, RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import type { Operations } from "./operations.js"
import type { Acquisition } from "./options.js"

/** How long after `WAIT`'s own timeout its answer may take before the connection counts as broken. */
const ANSWER_SLACK = 1000
/** How long giving back an unconfirmed lock may take (its lease ends it anyway). */
const GIVE_BACK_LIMIT = 1000

/** For `replicas` on a backend that has none to ask: the `InvalidOptions` to fail with before anything is sent. */
export const unsupported = (acq: Pick<Acquisition, "replicas">, redis: Redis.Service): InvalidOptions | undefined =>
  acq.replicas === 0 || redis.waitForReplicas !== undefined
    ? undefined
    : new InvalidOptions({
      option: "replicas",
      expected: `0: the ${redis.backend} backend has no replicas to wait for`,
      received: String(acq.replicas)
    })

/** What is confirmed: the won resource's id, a key of its slot, and how many replicas, how long. */
export interface Target {
  /** What the message calls it: `"lock"`, `"read-write lock"`, `"locks"`. */
  readonly kind: string
  readonly id: string
  readonly key: string
  readonly replicas: number
  readonly replicaTimeout: number
}

/** The lock of one acquisition, as a {@link Target}. */
export const targetOf = (acq: Acquisition, kind = "lock", key = acq.keys.lock): Target => ({
  kind,
  id: acq.id,
  key,
  replicas: acq.replicas,
  replicaTimeout: acq.replicaTimeout
})

/**
 * Waits until `acq.replicas` replicas have the winning write, for `replicaTimeout` at most (and never
 * past the acquisition's `deadline`). Fewer, no answer, or an interruption: gives the resource back first
 * (with the primitive's owner-checked `leave`).
 */
export const confirm = (
  acq: Target,
  redis: Redis.Service,
  ops: Pick<Operations, "leave">,
  token: string,
  deadline: number | undefined
): Effect.Effect<void, RedisError> =>
  Effect.suspend(() => {
    const now = redis.timer.now()
    const ms = Math.max(1, Math.min(acq.replicaTimeout, deadline === undefined ? Infinity : deadline - now))
    const unconfirmed = (detail: string) =>
      new RedisError({ operation: "wait", detail: `${acq.kind} "${acq.id}" ${detail}; it was given back` })
    return redis.waitForReplicas!(acq.key, acq.replicas, ms).pipe(
      Effect.timeoutFail({
        duration: ms + ANSWER_SLACK,
        onTimeout: () => unconfirmed(`got no answer to WAIT within ${ms + ANSWER_SLACK} ms`)
      }),
      Effect.filterOrFail(
        (confirmed) => confirmed >= acq.replicas,
        (confirmed) => unconfirmed(`was confirmed by ${confirmed} of ${acq.replicas} replica(s) within ${ms} ms`)
      ),
      Effect.onExit((exit) =>
        exit._tag === "Success" ? Effect.void : Effect.ignore(ops.leave(token, redis.timer.now() + GIVE_BACK_LIMIT))
      ),
      Effect.asVoid
    )
  })
