/**
 * The Promise `Debounce`: the operation of `Debounce.make`, its callback run as a Promise whose
 * rejection reaches the caller unchanged.
 */
import { Effect } from "effect"
import * as EffectDebounce from "../../Debounce.js"
import type * as Public from "../../promise.js"
import { UserError } from "./errors.js"
import { Handle } from "./handle.js"

export class Debounce<Args extends ReadonlyArray<unknown>, A>
  extends Handle<EffectDebounce.Debounce<Args, A, UserError>>
  implements Public.Debounce<Args, A>
{
  readonly id: string

  constructor(options: Public.DebounceOptions<Args, A>) {
    // a JavaScript caller may pass nothing: the first call then rejects with InvalidOptions
    const { callback, redis, ...rest } = options ?? ({} as Public.DebounceOptions<Args, A>)
    super(
      redis,
      EffectDebounce.make<Args, Effect.Effect<A, UserError>>({
        ...rest,
        // anything but a function is left for `make` to reject
        callback: typeof callback === "function"
          ? (...args) => Effect.tryPromise({ try: async () => callback(...args), catch: (e) => new UserError(e) })
          : callback
      })
    )
    this.id = rest.id
  }

  call(...args: Args): Promise<Public.Outcome<A>> {
    return this.run("debounce.call", (debounced) => debounced.call(...args))
  }
}
