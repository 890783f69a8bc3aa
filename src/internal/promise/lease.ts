/**
 * A lease of the Effect API held from Promise code: its scope is closed by `release` (or
 * `Symbol.asyncDispose`), and its loss aborts an `AbortSignal`. `using` is acquire, run, release on it.
 */
import { Effect, ExecutionStrategy, Exit, Scope } from "effect"
import type * as EffectLock from "../../Lock.js"
import type * as Public from "../../promise.js"
import type { Redis } from "../../Redis.js"
import * as Clock from "./clock.js"
import { type Connection, Leases } from "./connection.js"
import * as Errors from "./errors.js"

class Lease implements Public.Lease {
  readonly id: string
  readonly fence: number
  /** Set by `release`: closing the scope then does not abort the signal. */
  released: Promise<void> | undefined

  constructor(
    private readonly connection: Connection,
    private readonly lease: EffectLock.Lease,
    private readonly scope: Scope.CloseableScope,
    private readonly controller: AbortController
  ) {
    this.id = lease.id
    this.fence = lease.fence
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  get lost(): boolean {
    return this.controller.signal.aborted
  }

  extend(amount: Parameters<EffectLock.Lease["extend"]>[0]): Promise<boolean> {
    return this.connection.run("lease.extend", this.lease.extend(amount))
  }

  release(): Promise<void> {
    // the lease's own release never fails (it gives up once the lease would have ended); after a
    // dispose, its scope is closed already
    this.released ??= this.connection.run("lease.release", Scope.close(this.scope, Exit.void)).catch(() => {})
    return this.released
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release()
  }
}

/**
 * Acquires `take` in a scope of its own (forked from the connection's `Leases`, so a dispose releases
 * it) and returns it as a Promise `Lease`: a fiber in that scope waits for the loss and aborts the
 * signal with it; a dispose aborts it with a `RedisError`.
 */
export const hold = <E>(
  connection: Connection,
  operation: string,
  take: Effect.Effect<EffectLock.Lease, E, Scope.Scope | Redis>
): Promise<Public.Lease> =>
  connection.run(
    operation,
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Effect.flatMap(Leases, (leases) => Scope.fork(leases, ExecutionStrategy.sequential))
        const lease = yield* restore(Scope.extend(take, scope)).pipe(
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
        const controller = new AbortController()
        const held = new Lease(connection, lease, scope, controller)
        // finalizers run last first: this one before the lease's release
        yield* Scope.addFinalizer(
          scope,
          Effect.sync(() => {
            if (held.released === undefined) controller.abort(Errors.disposed("lease"))
          })
        )
        yield* lease.lost.pipe(
          Effect.catchAll((lost) => Effect.sync(() => controller.abort(Errors.fromFailure(lost)))),
          Effect.interruptible,
          Effect.forkIn(scope)
        )
        return held
      })
    )
  )

/**
 * Acquire, run `f` with the lease's signal, release. A lease lost before `f` settled rejects with the
 * signal's reason (its `LockLost`), whatever `f` did; otherwise `f`'s outcome stands.
 */
export const using = <A>(
  acquire: () => Promise<Public.Lease>,
  f: (signal: AbortSignal) => A | PromiseLike<A>
): Promise<A> =>
  // pending as long as `f` runs: the process stays alive for it, even when `f` only waits for the signal
  Clock.busy(async () => {
    const lease = await acquire()
    let result: A
    try {
      result = await f(lease.signal)
    } catch (error) {
      throw lease.signal.aborted ? lease.signal.reason : error
    } finally {
      await lease.release()
    }
    if (lease.signal.aborted) throw lease.signal.reason
    return result
  })
