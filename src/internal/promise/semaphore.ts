/**
 * The Promise `Semaphore`: the handle of `Semaphore.make`; a holding is its `take` in a scope of its own.
 */
import type * as Public from "../../promise.js"
import * as EffectSemaphore from "../../Semaphore.js"
import { Handle } from "./handle.js"
import * as lease from "./lease.js"

export class Semaphore extends Handle<EffectSemaphore.Semaphore> implements Public.Semaphore {
  readonly id: string
  readonly permits: number

  constructor(options: Public.SemaphoreOptions) {
    // a JavaScript caller may pass nothing: the first call then rejects with InvalidOptions
    const checked = options ?? ({} as Public.SemaphoreOptions)
    super(checked.redis, EffectSemaphore.make(checked))
    this.id = checked.id
    this.permits = checked.permits
  }

  acquireOrThrow(options: Public.TakeOptions = {}): Promise<Public.Lease> {
    const { permits = 1, ...take } = options
    return this.hold("semaphore.acquireOrThrow", (semaphore) => semaphore.take(permits, take))
  }

  using<A>(f: (signal: AbortSignal) => A | PromiseLike<A>, options?: Public.TakeOptions): Promise<A> {
    return lease.using(() => this.acquireOrThrow(options), f)
  }

  available(): Promise<number> {
    return this.run("semaphore.available", (semaphore) => semaphore.available)
  }
}
