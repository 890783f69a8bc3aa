/** redlock 4 ships no types: the little of it the benchmark uses. */
import type { Redis } from "ioredis"
import { createRequire } from "node:module"

interface RedlockLock {
  readonly unlock: () => Promise<unknown>
}

interface Redlock {
  lock(resource: string, ttl: number): Promise<RedlockLock>
  on(event: "clientError", listener: (error: unknown) => void): void
}

type RedlockConstructor = new(
  clients: ReadonlyArray<Redis>,
  options?: { driftFactor?: number; retryCount?: number; retryDelay?: number; retryJitter?: number }
) => Redlock

const Redlock = createRequire(import.meta.url)("redlock") as RedlockConstructor
export default Redlock
