/**
 * An embedded, in-process store: the Redis seam without a Redis. Time is Effect's `Clock`, so under
 * `TestClock` leases expire exactly when the test says so. Each script runs its TypeScript twin in one
 * synchronous step, which makes it atomic exactly as a Lua script is on Redis.
 *
 * Use it for demos, single-process apps that want the Lock API, and fast tests. It coordinates fibers
 * of one process only.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * Lock.withLock({ id: "job" })(Effect.log("working")).pipe(Effect.provide(Memory.layer), Effect.runPromise)
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer, Schedule, type Scope } from "effect"
import { RedisError } from "../LockError.js"
import * as Redis from "../Redis.js"

interface Entry {
  value: string
  /** Milliseconds of the store's clock; `undefined` means no expiry. Like Redis, a key expires once
   * the clock is past this instant (at it, PTTL is 0 and the key still exists). */
  expiresAt: number | undefined
}

class Store {
  readonly entries = new Map<string, Entry>()

  keyspace(now: number): Redis.Keyspace {
    const live = (key: string): Entry | undefined => {
      const entry = this.entries.get(key)
      if (entry !== undefined && entry.expiresAt !== undefined && entry.expiresAt < now) {
        this.entries.delete(key)
        return undefined
      }
      return entry
    }
    return {
      now,
      get: (key) => live(key)?.value ?? null,
      set: (key, value, px) => {
        this.entries.set(key, { value, expiresAt: px === undefined ? undefined : now + px })
      },
      del: (key) => (live(key) !== undefined && this.entries.delete(key) ? 1 : 0),
      incr: (key) => {
        const entry = live(key)
        const current = entry === undefined ? 0 : Number(entry.value)
        if ((entry !== undefined && !/^-?\d+$/.test(entry.value)) || !Number.isSafeInteger(current + 1)) {
          throw new Error("ERR value is not an integer or out of range")
        }
        this.entries.set(key, { value: String(current + 1), expiresAt: entry?.expiresAt })
        return current + 1
      },
      pttl: (key) => {
        const entry = live(key)
        return entry === undefined ? -2 : entry.expiresAt === undefined ? -1 : entry.expiresAt - now
      },
      pexpire: (key, ms) => {
        const entry = live(key)
        if (entry === undefined) return 0
        if (ms <= 0) this.entries.delete(key)
        else entry.expiresAt = now + ms
        return 1
      }
    }
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt < now) this.entries.delete(key)
    }
  }
}

/**
 * Builds a fresh, empty store. Expired keys are dropped when touched and swept once a minute.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Redis.Service, never, Scope.Scope> = Effect.gen(function*() {
  const store = new Store()
  yield* Clock.currentTimeMillis.pipe(
    Effect.map((now) => store.sweep(now)),
    Effect.repeat(Schedule.spaced("1 minute")),
    Effect.interruptible,
    Effect.forkScoped
  )
  return Redis.Redis.of({
    backend: "memory",
    run: (script, keys, args) =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) =>
          Effect.try({
            try: () => script.local(store.keyspace(now), keys, args),
            catch: (e) =>
              new RedisError({ operation: `eval ${script.name}`, detail: e instanceof Error ? e.message : String(e) })
          })
        ),
        Effect.flatMap((reply) => Redis.decodeReply(script, reply))
      )
  })
})

/**
 * A layer with one fresh store. Everything provided by the same layer instance shares it.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Redis.Redis> = Layer.scoped(Redis.Redis, make)
