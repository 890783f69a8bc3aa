/**
 * The Promise `Debounce`: the operation of `Debounce.make` (made once per client), its callback run as
 * a Promise whose rejection reaches the caller unchanged.
 */
import { Effect } from "effect"
import * as EffectDebounce from "../../Debounce.js"
import type { InvalidOptions } from "../../LockError.js"
import type * as Public from "../../promise.js"
import type { Redis } from "../../Redis.js"
import * as connection from "./connection.js"
import { UserError } from "./errors.js"

export class Debounce<Args extends ReadonlyArray<unknown>, A> implements Public.Debounce<Args, A> {
  readonly id: string
  private readonly redis: Public.Client
  private readonly make: Effect.Effect<EffectDebounce.Debounce<Args, A, UserError>, InvalidOptions, Redis>

  constructor(options: Public.DebounceOptions<Args, A>) {
    // a JavaScript caller may pass nothing: the first call then rejects with InvalidOptions
    const { callback, redis, ...rest } = options ?? ({} as Public.DebounceOptions<Args, A>)
    this.id = rest.id
    this.redis = redis
    this.make = EffectDebounce.make<Args, Effect.Effect<A, UserError>>({
      ...rest,
      // anything but a function is left for `make` to reject
      callback: typeof callback === "function"
        ? (...args) => Effect.tryPromise({ try: async () => callback(...args), catch: (e) => new UserError(e) })
        : callback
    })
  }

  call(...args: Args): Promise<Public.Outcome<A>> {
    const connected = connection.connect(this.redis)
    return connected.run("debounce.call", Effect.flatMap(connected.once(this, this.make), (d) => d.call(...args)))
  }
}
