/**
 * The Promise `Semaphore`: the handle of `Semaphore.make` (made once per client); a holding is its
 * `take` in a scope of its own.
 */
import { Effect } from "effect"
import type { InvalidOptions } from "../../LockError.js"
import type * as Public from "../../promise.js"
import type { Redis } from "../../Redis.js"
import * as EffectSemaphore from "../../Semaphore.js"
import * as connection from "./connection.js"
import * as lease from "./lease.js"

export class Semaphore implements Public.Semaphore {
  readonly id: string
  readonly permits: number
  private readonly options: Public.SemaphoreOptions
  private readonly make: Effect.Effect<EffectSemaphore.Semaphore, InvalidOptions, Redis>

  constructor(options: Public.SemaphoreOptions) {
    // a JavaScript caller may pass nothing: the first call then rejects with InvalidOptions
    this.options = options ?? ({} as Public.SemaphoreOptions)
    this.id = this.options.id
    this.permits = this.options.permits
    this.make = EffectSemaphore.make(this.options)
  }

  private handle(connected: connection.Connection) {
    return connected.once(this, this.make)
  }

  acquireOrThrow(options: Public.TakeOptions = {}): Promise<Public.Lease> {
    const { permits = 1, ...take } = options
    const connected = connection.connect(this.options.redis)
    return lease.hold(
      connected,
      "semaphore.acquireOrThrow",
      Effect.flatMap(this.handle(connected), (semaphore) => semaphore.take(permits, take))
    )
  }

  using<A>(f: (signal: AbortSignal) => A | PromiseLike<A>, options?: Public.TakeOptions): Promise<A> {
    return lease.using(() => this.acquireOrThrow(options), f)
  }

  available(): Promise<number> {
    const connected = connection.connect(this.options.redis)
    return connected.run("semaphore.available", Effect.flatMap(this.handle(connected), (s) => s.available))
  }
}
