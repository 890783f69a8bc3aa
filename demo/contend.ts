/** One worker's part of the demo: `rounds` critical sections under the lock `id`, printing each fence. */
import { Clock, Console, Effect } from "effect"
import { Lock } from "../src/index.js"

export const contend = (options: {
  readonly worker: string
  readonly id: string
  readonly rounds: number
  /** The work done while holding the lock. */
  readonly critical?: Effect.Effect<void>
}) =>
  Effect.gen(function*() {
    const fences: Array<number> = []
    for (let round = 1; round <= options.rounds; round++) {
      const asked = yield* Clock.currentTimeMillis
      yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lock.acquire({
          id: options.id,
          timeout: "20 seconds",
          retry: { attempts: 10_000, delay: 10 }
        })
        const waited = (yield* Clock.currentTimeMillis) - asked
        yield* Console.log(`  ${options.worker}: round ${round}, fence ${lease.fence} (waited ${waited} ms)`)
        fences.push(lease.fence)
        yield* options.critical ?? Effect.sleep(50)
      }))
    }
    return fences
  })
