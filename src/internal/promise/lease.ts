/**
 * A lease of the Effect API held from Promise code: its scope is closed by `release` (or
 * `Symbol.asyncDispose`), and its loss aborts an `AbortSignal`. `using` is acquire, run, release on it.
 */
import { Effect, Exit, Scope } from "effect"
import type * as EffectLock from "../../Lock.js"
import type * as Public from "../../promise.js"
import type { Redis } from "../../Redis.js"
import * as Clock from "./clock.js"
import type { Connection, Held } from "./connection.js"
import * as Errors from "./errors.js"

class Lease implements Public.Lease, Held {
  readonly id: string
  readonly fence: number
  private released: Promise<void> | undefined

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
    if (this.released === undefined) {
      this.connection.leases.delete(this)
      // the lease's own release never fails (it gives up once the lease would have ended); a call cut
      // short by a dispose leaves the lease to expire
      this.released = this.connection.run("lease.release", Scope.close(this.scope, Exit.void)).catch(() => {})
    }
    return this.released
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release()
  }

  abandon(reason: unknown): Promise<void> {
    if (this.released === undefined) this.controller.abort(reason)
    return this.release()
  }
}

/**
 * Acquires `take` in a scope of its own and returns it as a Promise `Lease`: a fiber in that scope
 * waits for the loss and aborts the signal with it.
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
        const scope = yield* Scope.make()
        const lease = yield* restore(Scope.extend(take, scope)).pipe(
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
        const controller = new AbortController()
        yield* lease.lost.pipe(
          Effect.catchAll((lost) => Effect.sync(() => controller.abort(Errors.fromFailure(lost)))),
          Effect.interruptible,
          Effect.forkIn(scope)
        )
        const held = new Lease(connection, lease, scope, controller)
        connection.leases.add(held)
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
