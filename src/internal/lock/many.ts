/**
 * `Lock.acquireAll` / `Lock.withLocks`: several ids, all or none, without deadlock.
 *
 * The ids are split into groups that one script may take together: every id on one server (or on a
 * Redis Cluster, the ids whose keys share a hash slot). Groups are taken one after the other, in one
 * global order (by slot, a number every caller computes alike), each in line through the acquisition
 * core, within what is left of the one `timeout`; so two callers asking for overlapping sets in any order
 * never wait on each other in a cycle. A group of one id is the lock's own acquisition; a group of several
 * is one resource whose scripts (`./manyScripts.ts`) take, keep, release and leave all its ids at once,
 * woken on any of its ids' channels. Everything is taken into a scope of its own, closed (releasing what
 * was taken) if the rest cannot be had.
 */
import { Effect, ExecutionStrategy, Exit, Scope } from "effect"
import type { Lease } from "../../Lock.js"
import { InvalidOptions, type LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import * as Core from "../core/acquire.js"
import { capture } from "../core/capture.js"
import { Delegated, type Held } from "../core/lease.js"
import { memo } from "../core/options.js"
import type { Operations, Resource } from "../core/resource.js"
import { ALIVE, lineTtl, RESERVATION } from "../core/wake.js"
import { lockKeys } from "../keys.js"
import { slotOf } from "../slot.js"
import * as validate from "../validate.js"
import { resourceOf } from "./lock.js"
import * as scripts from "./manyScripts.js"
import { type AcquireInput, type Acquisition, checkAcquisition, FIELDS as LOCK_FIELDS } from "./options.js"
import * as Replicas from "./replicas.js"

/** The most ids one call may take. */
export const MAX_IDS = 1000

export interface AcquireAllInput extends Omit<AcquireInput, "id"> {
  readonly ids?: unknown
}

/** The checked options: the ids as given, and each one's resolved acquisition. */
interface Plan {
  readonly ids: ReadonlyArray<string>
  readonly acquisitions: ReadonlyArray<Acquisition>
}

const isInvalid = (u: unknown): u is InvalidOptions => u instanceof InvalidOptions

const checkIds = (u: unknown): ReadonlyArray<string> | InvalidOptions => {
  const expected = `an array of 1 to ${MAX_IDS} distinct ids`
  if (!Array.isArray(u) || u.length === 0 || u.length > MAX_IDS) {
    return new InvalidOptions({
      option: "ids",
      expected,
      received: Array.isArray(u) ? `an array of ${u.length} ids` : validate.render(u)
    })
  }
  const seen = new Set<string>()
  for (const [i, id] of u.entries()) {
    const checked = validate.check.text(`ids[${i}]`, id)
    if (isInvalid(checked)) return checked
    if (seen.has(checked)) {
      return new InvalidOptions({ option: "ids", expected, received: `${JSON.stringify(id)} twice` })
    }
    seen.add(checked)
  }
  return u as ReadonlyArray<string>
}

const FIELDS = ["ids", ...LOCK_FIELDS.filter((field) => field !== "id")] as const

const resolve = memo<AcquireAllInput, Plan>(FIELDS, (options) => {
  const ids = checkIds(options?.ids)
  if (isInvalid(ids)) return ids
  const acquisitions: Array<Acquisition> = []
  for (const id of ids) {
    const acq = checkAcquisition({ ...options, id })
    if (isInvalid(acq)) return acq
    acquisitions.push(acq)
  }
  return { ids, acquisitions }
}, isInvalid)

/** Ids taken by one script: their acquisitions (sorted by id), and where they come in the global order. */
interface Group {
  readonly slot: number
  readonly members: ReadonlyArray<Acquisition>
  /** The resource of a one-id group (the lock's own), made once; several ids make one per acquisition. */
  readonly single: Resource | undefined
  readonly label: string
}

/** A Redis service whose subscriber hears every channel of `channels` under the one name `name`. */
const hearingAll = (redis: Redis["Type"], name: string, channels: ReadonlyArray<string>): Redis["Type"] => {
  const subscriber = redis.subscriber
  if (subscriber === undefined) return redis
  return {
    ...redis,
    subscriber: {
      isActive: (channel) => channel === name ? channels.every(subscriber.isActive) : subscriber.isActive(channel),
      listen: (channel, listener) =>
        channel !== name
          ? subscriber.listen(channel, listener)
          : Effect.map(Effect.forEach(channels, (c) => subscriber.listen(c, listener)), (all) => ({
            active: all.every((l) => l.active),
            remove: Effect.forEach(all, (l) => l.remove, { discard: true })
          })),
      subscribe: (channel) =>
        channel !== name
          ? subscriber.subscribe(channel)
          : Effect.forEach(channels, subscriber.subscribe, { concurrency: "unbounded", discard: true })
    }
  }
}

interface OnRedis {
  readonly redis: Redis["Type"]
  /** In the global order. */
  readonly groups: ReadonlyArray<Group>
  /** The service each group of several ids acquires on (hearing all its channels). */
  readonly views: ReadonlyArray<Redis["Type"]>
}

const made = new WeakMap<Plan, { readonly redis: Redis["Type"]; readonly on: OnRedis | InvalidOptions }>()

/** The groups of a plan on one Redis service, made once; an `InvalidOptions` if the service cannot take them. */
const onRedis = (plan: Plan, redis: Redis["Type"]): OnRedis | InvalidOptions => {
  const known = made.get(plan)
  if (known !== undefined && known.redis === redis) return known.on
  const on = split(plan, redis)
  made.set(plan, { redis, on })
  return on
}

const split = (plan: Plan, redis: Redis["Type"]): OnRedis | InvalidOptions => {
  const unsupported = Replicas.unsupported(plan.acquisitions[0]!, redis)
  if (unsupported !== undefined) return unsupported
  const bySlot = new Map<number, Array<Acquisition>>()
  for (const acq of plan.acquisitions) {
    const slot = redis.cluster === true ? slotOf(acq.keys.lock) : 0
    const members = bySlot.get(slot)
    if (members === undefined) bySlot.set(slot, [acq])
    else members.push(acq)
  }
  const groups: Array<Group> = []
  for (const [slot, members] of bySlot) {
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const single = members.length === 1 ? resourceOf(members[0]!, redis) : undefined
    if (single !== undefined && isInvalid(single)) return single
    groups.push({ slot, members, single, label: members.map((m) => m.id).join(", ") })
  }
  groups.sort((a, b) => a.slot - b.slot)
  const views = groups.map((group) =>
    group.single !== undefined
      ? redis
      : hearingAll(redis, `many:${group.label}`, group.members.map((m) => m.keys.channel))
  )
  return { redis, groups, views }
}

/** The operations of a group of several ids, over `./manyScripts.ts`. */
const groupOps = (redis: Redis["Type"], group: Group): Operations => {
  const keys = scripts.acquireAll.keysOf(
    group.members.map((m) => {
      const k = lockKeys(m.prefix, m.id)
      return { lock: k.lock, fence: k.fence, queue: k.queue, alive: k.alive, channel: k.channel }
    })
  )
  const sharded = redis.sharded === true ? "1" : "0"
  const reservation = String(RESERVATION)
  const aliveMs = String(ALIVE)
  // Each counter lives as its id's options say (the ids of one call share their options).
  const fenceTtl = String(group.members[0]!.fenceTtl)
  const take = (fair: "0" | "1") => (token: string, lease: number, deadline?: number) =>
    scripts.acquireAll.run(redis, keys, {
      token,
      lease: String(lease),
      reservation,
      lineTtl: String(lineTtl(lease)),
      aliveMs,
      fenceTtl,
      fair,
      sharded
    }, deadline)
  return {
    tryAcquire: take("0"),
    tryAcquireFair: take("1"),
    release: (token, deadline) => scripts.releaseAll.run(redis, keys, { token, reservation, sharded }, deadline),
    leave: (token, deadline) => scripts.leaveAll.run(redis, keys, { token, reservation, sharded }, deadline),
    extend: (token, ms, mode, deadline) => scripts.extendAll.run(redis, keys, { token, ms: String(ms), mode }, deadline)
  }
}

interface Taken {
  readonly helds: ReadonlyArray<Held>
  /** One per id, in the order the caller gave them. */
  readonly leases: ReadonlyArray<Lease>
}

/** Takes every group, in order, into `scope`, within one deadline. */
const takeAll = (
  plan: Plan,
  on: OnRedis,
  scope: Scope.Scope
): Effect.Effect<Taken, LockNotAcquired | RedisError | InvalidOptions> =>
  Effect.gen(function*() {
    const { groups, redis, views } = on
    const timeout = plan.acquisitions[0]!.policy.timeout
    const deadline = timeout === undefined ? undefined : redis.timer.now() + timeout
    const byId = new Map<string, Lease>()
    const helds: Array<Held> = []
    for (const [i, group] of groups.entries()) {
      const base = group.members[0]!.policy
      const policy = {
        ...base,
        id: group.label,
        timeout: deadline === undefined ? undefined : Math.max(0, deadline - redis.timer.now())
      }
      if (group.single !== undefined) {
        const held = yield* Core.acquireIn({ resource: group.single, policy }, scope, redis)
        helds.push(held)
        byId.set(held.id, held)
        continue
      }
      const captured = capture(groupOps(redis, group))
      const first = group.members[0]!
      const target = first.replicas === 0 ? undefined : Replicas.targetOf(first, "locks", first.keys.lock)
      const resource: Resource = {
        primitive: "Lock",
        span: "Lock.acquireAll",
        id: group.label,
        channel: `many:${group.label}`,
        ops: captured.ops,
        confirm: target === undefined
          ? undefined
          : (token, at) => Replicas.confirm({ ...target, id: group.label }, redis, captured.ops, token, at)
      }
      const held = yield* Core.acquireIn({ resource, policy }, scope, views[i]!)
      helds.push(held)
      const reply = captured.won()!.reply as unknown as scripts.AllReply
      group.members.forEach((m, j) => byId.set(m.id, new Delegated(held, m.id, reply.fences[j]!)))
    }
    return { helds, leases: plan.ids.map((id) => byId.get(id)!) }
  })

/** Takes everything into a scope of its own (a child of `scope`), closed at once if not everything is had. */
const takeInto = (
  plan: Plan,
  on: OnRedis,
  scope: Scope.Scope
): Effect.Effect<Taken, LockNotAcquired | RedisError | InvalidOptions> =>
  Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (inner) =>
    Effect.onExit(
      takeAll(plan, on, inner),
      (exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(inner, exit)
    ))

const planned = <A, E, R>(
  options: AcquireAllInput,
  f: (plan: Plan, on: OnRedis) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | InvalidOptions, R | Redis> =>
  Effect.flatMap(Redis, (redis): Effect.Effect<A, E | InvalidOptions, R> => {
    const plan = resolve(options)
    if (isInvalid(plan)) return Effect.fail(plan)
    const on = onRedis(plan, redis)
    return isInvalid(on) ? Effect.fail(on) : f(plan, on)
  })

export const acquireAll = (
  options: AcquireAllInput
): Effect.Effect<ReadonlyArray<Lease>, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  planned(
    options,
    (plan, on) => Effect.flatMap(Scope.Scope, (scope) => Effect.map(takeInto(plan, on, scope), (taken) => taken.leases))
  )

export const withLocks = <A, E, R>(
  options: AcquireAllInput,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  planned(options, (plan, on) =>
    Effect.acquireUseRelease(
      Scope.make(),
      (scope) =>
        Effect.flatMap(
          takeInto(plan, on, scope),
          ({ helds }): Effect.Effect<A, E | LockLost, R> =>
            helds.reduce<Effect.Effect<A, E | LockLost, R>>((body, held) => held.guard(body), self)
        ),
      (scope, exit) => Scope.close(scope, exit)
    ))
