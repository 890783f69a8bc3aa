/**
 * `ReadWriteLock.readLock`, `writeLock`, `withReadLock`, `withWriteLock`: the lock's options (checked once
 * per options object, as `Lock.acquire`'s) and the read-write scripts handed to the acquisition core. A
 * read and a write are two resources of one id; a write lease can become a read lease (`downgrade`),
 * the same hold under the same token, kept and released by the same lease keeper.
 */
import { Effect, type Scope } from "effect"
import { InvalidOptions, LockLost, type LockNotAcquired, type RedisError } from "../../LockError.js"
import type { ReadLease, WriteLease } from "../../ReadWriteLock.js"
import type { Redis } from "../../Redis.js"
import * as Core from "../core/acquire.js"
import { capture } from "../core/capture.js"
import { Delegated, type Held } from "../core/lease.js"
import { memo } from "../core/options.js"
import type { Operations, Resource } from "../core/resource.js"
import { type ReadWriteKeys, readWriteKeys } from "../keys.js"
import { type AcquireInput, type Acquisition, checkAcquisition, FIELDS } from "../lock/options.js"
import * as Replicas from "../lock/replicas.js"
import * as RwOperations from "./operations.js"

const isInvalid = (u: unknown): u is InvalidOptions => u instanceof InvalidOptions

interface Resolved {
  readonly acq: Acquisition
  readonly keys: ReadWriteKeys
}

const resolve = memo<AcquireInput, Resolved>(FIELDS, (options) => {
  const acq = checkAcquisition(options)
  return isInvalid(acq) ? acq : { acq, keys: readWriteKeys(acq.prefix, acq.id) }
}, isInvalid)

/** What one resolved options object needs on one Redis service, made once. */
interface OnRedis {
  readonly redis: Redis["Type"]
  readonly ops: RwOperations.ReadWriteOperations
  readonly resource: (span: string, ops: Operations) => Resource
  readonly read: Core.Spec
  readonly write: Core.Spec
  readonly lease: number
}

const made = new WeakMap<Resolved, OnRedis | InvalidOptions>()

const onRedis = (resolved: Resolved, redis: Redis["Type"]): OnRedis | InvalidOptions => {
  const known = made.get(resolved)
  if (known !== undefined && (isInvalid(known) || known.redis === redis)) return known
  const { acq, keys } = resolved
  const unsupported = Replicas.unsupported(acq, redis)
  if (unsupported !== undefined) return unsupported
  const ops = RwOperations.make(redis, keys)
  const target = acq.replicas === 0 ? undefined : Replicas.targetOf(acq, "read-write lock", keys.writer)
  const resource = (span: string, operations: Operations): Resource => ({
    primitive: "ReadWriteLock",
    span,
    id: acq.id,
    channel: keys.channel,
    ops: operations,
    confirm: target === undefined
      ? undefined
      : (token, deadline) => Replicas.confirm(target, redis, operations, token, deadline)
  })
  const result: OnRedis = {
    redis,
    ops,
    resource,
    read: { resource: resource("ReadWriteLock.readLock", ops.read), policy: acq.policy },
    write: { resource: resource("ReadWriteLock.writeLock", ops.write), policy: acq.policy },
    lease: acq.lease
  }
  made.set(resolved, result)
  return result
}

const specOf =
  (options: AcquireInput, mode: "read" | "write") => (redis: Redis["Type"]): Core.Spec | InvalidOptions => {
    const resolved = resolve(options)
    if (isInvalid(resolved)) return resolved
    const on = onRedis(resolved, redis)
    return isInvalid(on) ? on : on[mode]
  }

/** The write lease handed out: the core's lease, plus the downgrade its token allows. */
class Write extends Delegated implements WriteLease {
  private downgraded = false
  constructor(held: Held, private readonly token: string, private readonly on: OnRedis) {
    super(held)
  }
  get downgrade(): Effect.Effect<ReadLease, LockLost | RedisError> {
    return Effect.suspend(() => {
      if (this.downgraded) return Effect.succeed(this.held)
      const lost = new LockLost({ id: this.held.id, fence: this.held.fence, reason: "expired" })
      return Effect.flatMap(this.held.isLost, (isLost) =>
        isLost
          ? Effect.fail(lost)
          : Effect.flatMap(this.on.ops.downgrade(this.token, this.on.lease), (reply) => {
            if (reply === undefined) return Effect.fail(lost)
            this.downgraded = true
            return Effect.succeed(this.held)
          }))
    })
  }
}

export const readLock = (
  options: AcquireInput
): Effect.Effect<ReadLease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Core.acquire(specOf(options, "read"))

/** A write: the core's acquisition, with operations that remember the winning token (for `downgrade`). */
export const writeLock = (
  options: AcquireInput
): Effect.Effect<WriteLease, LockNotAcquired | RedisError | InvalidOptions, Scope.Scope | Redis> =>
  Effect.suspend(() => {
    let one: { readonly on: OnRedis; readonly won: () => { readonly token: string } | undefined } | undefined
    const spec = (redis: Redis["Type"]): Core.Spec | InvalidOptions => {
      const resolved = resolve(options)
      if (isInvalid(resolved)) return resolved
      const on = onRedis(resolved, redis)
      if (isInvalid(on)) return on
      const captured = capture(on.ops.write)
      one = { on, won: captured.won }
      return { resource: on.resource("ReadWriteLock.writeLock", captured.ops), policy: resolved.acq.policy }
    }
    return Effect.map(Core.acquire(spec), (held): WriteLease => new Write(held, one!.won()!.token, one!.on))
  })

export const withReadLock = <A, E, R>(
  options: AcquireInput,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Core.withHeld(specOf(options, "read"), () => self)

export const withWriteLock = <A, E, R>(
  options: AcquireInput,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | LockNotAcquired | LockLost | RedisError | InvalidOptions, R | Redis> =>
  Core.withHeld(specOf(options, "write"), () => self)

/** A read-only look at an id, for tests and tools: the writer, the readers, the fence counter, the line. */
export const inspect = (redis: Redis["Type"], prefix: string, id: string) =>
  RwOperations.make(redis, readWriteKeys(prefix, id)).inspect
