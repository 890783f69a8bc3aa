/**
 * The Promise `Lock`: the parity methods run the handle of `Lock.make`, the holding methods
 * `Lock.acquire` in a scope of their own.
 */
import { Duration, Effect, Option } from "effect"
import * as EffectLock from "../../Lock.js"
import type * as Public from "../../promise.js"
import { Handle } from "./handle.js"
import * as lease from "./lease.js"

const toState = (state: EffectLock.State): Public.State =>
  state._tag === "Free" ? { _tag: "Free" } : { _tag: state._tag, remaining: Duration.toMillis(state.remaining) }

export class Lock extends Handle<EffectLock.Lock> implements Public.Lock {
  readonly id: string
  private readonly options: Public.LockOptions

  constructor(options: Public.LockOptions) {
    // a JavaScript caller may pass nothing: the first call then rejects with InvalidOptions
    const checked = options ?? ({} as Public.LockOptions)
    super(checked.redis, EffectLock.make(checked))
    this.options = checked
    this.id = checked.id
  }

  acquire(config?: Public.AcquireConfig): Promise<boolean> {
    return this.run("lock.acquire", (handle) => handle.acquire(config))
  }

  release(): Promise<boolean> {
    return this.run("lock.release", (handle) => handle.release)
  }

  extend(amount: Duration.DurationInput): Promise<boolean> {
    return this.run("lock.extend", (handle) => handle.extend(amount))
  }

  getStatus(): Promise<Public.LockStatus> {
    return this.run("lock.status", (handle) => handle.status)
  }

  getState(): Promise<Public.State> {
    return this.run("lock.state", (handle) => Effect.map(handle.state, toState))
  }

  getFence(): Promise<number | undefined> {
    return this.run("lock.fence", (handle) => Effect.map(handle.fence, Option.getOrUndefined))
  }

  acquireOrThrow(options: Public.HoldOptions = {}): Promise<Public.Lease> {
    const { id, lease: ownLease, prefix, retry: ownRetry } = this.options
    return this.hold("lock.acquireOrThrow", () =>
      EffectLock.acquire({
        id,
        prefix,
        lease: options.lease ?? ownLease,
        // with a timeout of its own, it waits in line until then, rather than by the lock's tries
        retry: options.retry ?? (options.timeout === undefined ? ownRetry : undefined),
        timeout: options.timeout,
        fair: options.fair
      }))
  }

  using<A>(f: (signal: AbortSignal) => A | PromiseLike<A>, options?: Public.HoldOptions): Promise<A> {
    return lease.using(() => this.acquireOrThrow(options), f)
  }
}
