/**
 * `Election.campaign`, `whileLeader`, `runAsLeader`, `singleton`, `leader`: a leader is the holder of a
 * FIFO-fair lock whose fence is the term, obtained through the one acquisition core. The lock's line
 * scripts are made announced (every win and every resignation is published on the election's
 * `announce` channel), and the holder's token carries its identity after its random part.
 */
import { Duration, Effect, Layer, Option, Schedule, type Scope } from "effect"
import type { Inspection, Leader, Leadership } from "../../Election.js"
import { InvalidOptions, LeadershipLost, LockLost, LockNotAcquired, RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import * as Core from "../core/acquire.js"
import type { Held } from "../core/lease.js"
import { resourceOf } from "../lock/lock.js"
import { randomToken } from "../token.js"
import { type Election, type Input, resolve } from "./options.js"
import * as scripts from "./scripts.js"

/** The spec of each resolved election, per Redis service: made once, like the options. */
const specs = new WeakMap<Election, { readonly redis: Redis["Type"]; readonly spec: Core.Spec | InvalidOptions }>()

export const specOf = (options: Input, redis: Redis["Type"]): Core.Spec | InvalidOptions => {
  const election = resolve(options)
  if (election instanceof InvalidOptions) return election
  const known = specs.get(election)
  if (known !== undefined && known.redis === redis) return known.spec
  const lock = resourceOf(election, redis, election.keys.announce)
  const identity = election.identity
  const spec = lock instanceof InvalidOptions ? lock : {
    resource: { ...lock, span: "Election.campaign", token: () => randomToken() + identity },
    policy: election.policy
  }
  specs.set(election, { redis, spec })
  return spec
}

const lostOf = (held: Held, error: LockLost) =>
  new LeadershipLost({ id: held.id, term: held.fence, reason: error.reason })

/** The public view of a held lease that is a leadership. */
const leadershipOf = (held: Held, identity: string): Leadership => ({
  id: held.id,
  term: held.fence,
  identity,
  lost: Effect.catchTag(held.lost, "LockLost", (e) => Effect.fail(lostOf(held, e))),
  isLost: held.isLost,
  validUntil: held.validUntil
})

const identityOf = (options: Input): string => (resolve(options) as Election).identity

export const campaign = (
  options: Input
): Effect.Effect<Leadership, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Effect.map(Core.acquire((redis) => specOf(options, redis)), (held) => leadershipOf(held, identityOf(options)))

type Body<A, E, R> = Effect.Effect<A, E, R> | ((leadership: Leadership) => Effect.Effect<A, E, R>)

const bodyOf = <A, E, R>(self: Body<A, E, R>, leadership: Leadership): Effect.Effect<A, E, R> =>
  typeof self === "function" ? self(leadership) : self

export const whileLeader = (options: Input) =>
<A, E, R>(
  self: Body<A, E, R>
): Effect.Effect<A, E | LeadershipLost | LockNotAcquired | RedisError | InvalidOptions, R | Redis> => {
  let mine: Held | undefined
  return Core.withHeld((redis) => specOf(options, redis), (held) => {
    mine = held
    return bodyOf(self, leadershipOf(held, identityOf(options)))
  }).pipe(
    // The guard's own loss (not a LockLost of a lock the body holds) is the leadership's.
    Effect.catchIf(
      (e): e is LockLost => e instanceof LockLost && mine !== undefined && e.id === mine.id && e.fence === mine.fence,
      (e) => Effect.fail(lostOf(mine!, e))
    )
  )
}

/** After a Redis fault, a candidate campaigns again after 100 ms, doubling to at most 2 s, forever. */
const FAULT_BACKOFF = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** A fault a candidate campaigns again after (Redis unreachable, a campaign's timeout), not the body's own. */
const isFault = (e: unknown): boolean => e instanceof RedisError || e instanceof LockNotAcquired

export const runAsLeader =
  (options: Input) => <A, E, R>(self: Body<A, E, R>): Effect.Effect<never, E | InvalidOptions, R | Redis> =>
    Effect.suspend(() => {
      const checked = resolve(options)
      if (checked instanceof InvalidOptions) return Effect.fail(checked)
      const term = whileLeader(options)(self).pipe(
        Effect.asVoid,
        Effect.catchIf(
          (e): e is LeadershipLost => e instanceof LeadershipLost,
          (e) => Effect.logWarning(e.message).pipe(Effect.annotateLogs("election.id", checked.id))
        ),
        Effect.tapError((e) =>
          isFault(e)
            ? Effect.logWarning(`campaign failed (${(e as Error).message}); campaigning again`).pipe(
              Effect.annotateLogs("election.id", checked.id)
            )
            : Effect.void
        )
      )
      // Loss and end: campaign again at once; a fault: after a pause. The schedule never ends, so only
      // the body's own failures (and bad options) come out.
      return Effect.forever(Effect.retry(term, { schedule: FAULT_BACKOFF, while: isFault })) as Effect.Effect<
        never,
        E | InvalidOptions,
        R | Redis
      >
    })

export const singleton = <A, E, R>(
  options: Input,
  self: Body<A, E, R>
): Layer.Layer<never, InvalidOptions, R | Redis> => {
  const body = (leadership: Leadership) =>
    bodyOf(self, leadership).pipe(
      Effect.catchAllCause((cause) => Effect.logError("singleton's work failed; campaigning again", cause))
    )
  return Layer.scopedDiscard(
    Effect.flatMap(
      Effect.suspend(() => {
        const checked = resolve(options)
        return checked instanceof InvalidOptions ? Effect.fail(checked) : Effect.void
      }),
      () => Effect.forkScoped(Effect.catchAll(runAsLeader(options)(body), () => Effect.void))
    )
  )
}

const toLeader = (reply: scripts.LeaderReply): Option.Option<Leader> =>
  reply.leader === undefined
    ? Option.none()
    : Option.some({
      identity: reply.leader.identity,
      term: reply.leader.term,
      remaining: Duration.millis(reply.leader.remaining)
    })

/** One look at the election: the raw reply, for `leader` and the observers. */
export const look = (election: Election, redis: Redis["Type"]): Effect.Effect<scripts.LeaderReply, RedisError> =>
  scripts.leader.run(redis, scripts.leader.keysOf(election.keys), {})

export const leader = (options: Input): Effect.Effect<Option.Option<Leader>, RedisError | InvalidOptions, Redis> =>
  Effect.suspend((): Effect.Effect<Option.Option<Leader>, RedisError | InvalidOptions, Redis> => {
    const election = resolve(options)
    if (election instanceof InvalidOptions) return Effect.fail(election)
    return Effect.flatMap(Redis, (redis) => Effect.map(look(election, redis), toLeader))
  })

/** The leader now, and the latest term begun (the leader's, when there is one; 0 if nobody ever led). */
export const inspect = (options: Input): Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> =>
  Effect.suspend((): Effect.Effect<Inspection, RedisError | InvalidOptions, Redis> => {
    const election = resolve(options)
    if (election instanceof InvalidOptions) return Effect.fail(election)
    return Effect.flatMap(Redis, (redis) =>
      Effect.map(look(election, redis), (reply) => ({
        id: election.id,
        leader: toLeader(reply),
        term: reply.fence
      })))
  })

export { toLeader }
