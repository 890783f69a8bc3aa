/**
 * What the Promise classes share: the client they were given, and the Effect handle made from their
 * options, once per connection (`Lock.make`, `Semaphore.make`, `Debounce.make`). Every method runs
 * against that handle, on the client's connection.
 */
import { Effect, type Scope } from "effect"
import type * as EffectLock from "../../Lock.js"
import type { InvalidOptions } from "../../LockError.js"
import type * as Public from "../../promise.js"
import type { Redis } from "../../Redis.js"
import * as connection from "./connection.js"
import * as lease from "./lease.js"

export abstract class Handle<H> {
  constructor(private readonly redis: unknown, private readonly make: Effect.Effect<H, InvalidOptions, Redis>) {}

  /** Runs `f` on the handle. */
  protected run<A, E>(operation: string, f: (handle: H) => Effect.Effect<A, E, Redis>): Promise<A> {
    const connected = connection.connect(this.redis)
    return connected.run(operation, Effect.flatMap(connected.once(this, this.make), f))
  }

  /** Holds the lease that `f` takes, as a Promise `Lease`. */
  protected hold<E>(
    operation: string,
    f: (handle: H) => Effect.Effect<EffectLock.Lease, E, Scope.Scope | Redis>
  ): Promise<Public.Lease> {
    const connected = connection.connect(this.redis)
    return lease.hold(connected, operation, Effect.flatMap(connected.once(this, this.make), f))
  }
}
