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
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Lock } from "effect-lock"
 * import * as Memory from "effect-lock/Redis/Memory"
 *
 * Lock.withLock({ id: "job" })(Effect.log("working")).pipe(Effect.provide(Memory.layer), NodeRuntime.runMain)
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer, Schedule, type Scope } from "effect"
import { RedisError } from "../LockError.js"
import * as Redis from "../Redis.js"
import * as MemoryInspect from "./internal/memoryInspect.js"
import * as Subscriber from "./internal/subscriber.js"
import * as Timer from "./internal/timer.js"

/** A sorted set: member → score. Ordered by score, then member, like Redis. */
type SortedSet = Map<string, number>
type Value = string | SortedSet

interface Entry {
  value: Value
  /** Milliseconds of the store's clock; `undefined` means no expiry. Like Redis, a key expires once
   * the clock is past this instant (at it, PTTL is 0 and the key still exists). */
  expiresAt: number | undefined
}

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

class Store {
  readonly entries = new Map<string, Entry>()

  /** The keyspace as one script sees it; messages it publishes are collected in `outbox`. */
  keyspace(now: number, outbox: Array<readonly [string, string]>): Redis.Keyspace {
    const live = (key: string): Entry | undefined => {
      const entry = this.entries.get(key)
      if (entry !== undefined && entry.expiresAt !== undefined && entry.expiresAt < now) {
        this.entries.delete(key)
        return undefined
      }
      return entry
    }
    const typed = <V extends Value>(key: string, is: (v: Value) => v is V): V | undefined => {
      const entry = live(key)
      if (entry === undefined) return undefined
      if (!is(entry.value)) throw new Error(WRONGTYPE)
      return entry.value
    }
    const isString = (v: Value): v is string => typeof v === "string"
    const isSortedSet = (v: Value): v is SortedSet => v instanceof Map
    const sorted = (set: SortedSet): Array<string> =>
      [...set].sort(([a, x], [b, y]) => (x - y) || (a < b ? -1 : a > b ? 1 : 0)).map(([member]) => member)
    return {
      now,
      get: (key) => typed(key, isString) ?? null,
      set: (key, value, px) => {
        this.entries.set(key, { value, expiresAt: px === undefined ? undefined : now + px })
      },
      del: (key) => (live(key) !== undefined && this.entries.delete(key) ? 1 : 0),
      incr: (key) => {
        const value = typed(key, isString)
        const current = value === undefined ? 0 : Number(value)
        if ((value !== undefined && !/^-?\d+$/.test(value)) || !Number.isSafeInteger(current + 1)) {
          throw new Error("ERR value is not an integer or out of range")
        }
        this.entries.set(key, { value: String(current + 1), expiresAt: live(key)?.expiresAt })
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
      },
      zadd: (key, score, member) => {
        const set = typed(key, isSortedSet)
        if (set === undefined) {
          this.entries.set(key, { value: new Map([[member, score]]), expiresAt: undefined })
          return 1
        }
        const added = set.has(member) ? 0 : 1
        set.set(member, score)
        return added
      },
      zrem: (key, member) => {
        const set = typed(key, isSortedSet)
        if (set === undefined || !set.delete(member)) return 0
        if (set.size === 0) this.entries.delete(key)
        return 1
      },
      zscore: (key, member) => typed(key, isSortedSet)?.get(member) ?? null,
      zrange: (key, start, stop) => {
        const set = typed(key, isSortedSet)
        if (set === undefined) return []
        const members = sorted(set)
        const from = start < 0 ? Math.max(0, members.length + start) : start
        const to = stop < 0 ? members.length + stop : Math.min(stop, members.length - 1)
        return from > to ? [] : members.slice(from, to + 1)
      },
      zbelow: (key, max) => {
        const set = typed(key, isSortedSet)
        return set === undefined ? [] : sorted(set).filter((member) => set.get(member)! < max)
      },
      publish: (channel, message) => void outbox.push([channel, message])
    }
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt < now) this.entries.delete(key)
    }
  }
}

/**
 * Builds a fresh, empty store, with in-process pub/sub. Expired keys are dropped when touched and swept
 * once a minute.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Redis.Service, never, Scope.Scope> = Effect.gen(function*() {
  const store = new Store()
  yield* Clock.currentTimeMillis.pipe(
    Effect.map((now) => store.sweep(now)),
    Effect.repeat(Schedule.spaced("1 minute")),
    Effect.interruptible,
    Effect.forkScoped
  )
  const subscribed = new Set<string>()
  const { dispatch, subscriber } = yield* Subscriber.make({
    subscribe: (channel) => Effect.sync(() => void subscribed.add(channel)),
    unsubscribe: (channel) => Effect.sync(() => void subscribed.delete(channel))
  })
  const timer = yield* Timer.make
  // the test kit's way in (effect-lock/Redis/MemoryTest)
  const inspectable: MemoryInspect.Inspectable = {
    atomically: (now, f) => {
      const outbox: Array<readonly [string, string]> = []
      const result = f(store.keyspace(now, outbox))
      for (const [channel, message] of outbox) if (subscribed.has(channel)) dispatch(channel, message)
      return result
    },
    entries: (now) => {
      store.sweep(now)
      return Array.from(store.entries, ([key, { expiresAt, value }]) => ({
        key,
        value: typeof value === "string"
          ? value
          : Array.isArray(value)
          ? [...value]
          : [...value].sort(([, x], [, y]) => x - y).map(([member]) => member),
        pttl: expiresAt === undefined ? -1 : expiresAt - now
      }))
    }
  }
  return MemoryInspect.register(
    inspectable,
    Redis.Redis.of({
      backend: "memory",
      subscriber,
      timer,
      run: (script, keys, args) =>
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) =>
            Effect.try({
              try: () => {
                const outbox: Array<readonly [string, string]> = []
                const reply = script.local(store.keyspace(now, outbox), keys, args)
                // Delivered after the script, as Redis does; only to subscribed channels.
                for (const [channel, message] of outbox) if (subscribed.has(channel)) dispatch(channel, message)
                return reply
              },
              catch: (e) =>
                new RedisError({ operation: `eval ${script.name}`, detail: e instanceof Error ? e.message : String(e) })
            })
          ),
          Effect.flatMap((reply) => Redis.decodeReply(script, reply))
        )
    })
  )
})

/**
 * A layer with one fresh store. Everything provided by the same layer instance shares it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Redis.Redis> = Layer.scoped(Redis.Redis, make)
