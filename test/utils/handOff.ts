/**
 * Hand-offs of one lock, timed from the holder's release to the waiter's win (issue 23 §5): the waiter is
 * in line (checked on the queue) before each release.
 */
import { Effect, Exit, Fiber, Scope } from "effect"
import type { Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../../src/internal/keys.js"
import * as Lock from "../../src/Lock.js"
import type { Redis } from "../../src/Redis.js"
import { eventually } from "./live.js"

/** The milliseconds from each release to its waiter's win, `rounds` times; `admin` reads the line. */
export const handOffDelays = (id: string, rounds: number, admin: IORedis) =>
  Effect.gen(function*() {
    const { queue } = lockKeys(DEFAULT_PREFIX, id)
    const delays: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      const holding = yield* Scope.make()
      yield* Scope.extend(Lock.acquire({ id }), holding)
      const waiter = yield* Effect.fork(
        Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "20 seconds" }), () => Date.now()))
      )
      yield* eventually(Effect.promise(() => admin.zcard(queue)), (n) => n === 1, "10 seconds")
      const releasedAt = Date.now()
      yield* Scope.close(holding, Exit.void)
      delays.push((yield* Fiber.join(waiter)) - releasedAt)
    }
    return delays
  }) satisfies Effect.Effect<ReadonlyArray<number>, unknown, Redis>

/** The median of some numbers. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
