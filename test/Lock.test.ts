/**
 * Lock policy on the Memory backend under TestClock: retry timing, timeouts, keep-alive, lease loss,
 * Redis faults and bad input. Time only moves when a test says so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Metric, Option, Ref, Schedule, TestClock } from "effect"
import { lockKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import type { LockLost, LockNotAcquired, RedisError } from "../src/LockError.js"
import { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { readKey, uniqueId, writeKey } from "./utils/probe.js"

const keyOf = (id: string) => lockKeys("effect-lock:", id).lock

/** A client of a Memory store that records its runs (and takes faults: see FaultyRedis). */
const setup = () => {
  const client = FaultyRedis.make()
  return { client, layer: client.layer.pipe(Layer.provide(Memory.layer)), count: client.runs }
}

describe("Lock.make (the @upstash/lock contract)", () => {
  it.effect("defaults: 10 s lease, 3 tries 100 ms apart, false after the last try without a trailing sleep", () => {
    const { count, layer } = setup()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "d" })
      const waiter = yield* Lock.make({ id: "d" })
      expect(yield* holder.acquire()).toBe(true)
      expect((yield* readKey(keyOf("d"))).pttl).toBe(10_000)
      const fiber = yield* Effect.fork(waiter.acquire())
      yield* TestClock.adjust(199)
      expect(count("lock.acquire")).toBe(1 + 2)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1)
      expect(count("lock.acquire")).toBe(1 + 3)
      expect(yield* Fiber.join(fiber)).toBe(false)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a waiting acquire succeeds once the holder releases between tries", () =>
    Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "w" })
      const waiter = yield* Lock.make({ id: "w", retry: { attempts: 5, delay: "1 second" } })
      yield* holder.acquire()
      const fiber = yield* Effect.fork(waiter.acquire())
      yield* TestClock.adjust(1500)
      yield* holder.release
      yield* TestClock.adjust(500)
      expect(yield* Fiber.join(fiber)).toBe(true)
      expect(yield* waiter.status).toBe("ACQUIRED")
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("overrides set the lease, the tries and a caller-chosen token for one call", () => {
    const { count, layer } = setup()
    return Effect.gen(function*() {
      const a = yield* Lock.make({ id: "o" })
      const b = yield* Lock.make({ id: "o" })
      expect(yield* a.acquire({ lease: "2 seconds", uuid: "my-token" })).toBe(true)
      expect(yield* readKey(keyOf("o"))).toEqual({ value: "my-token", pttl: 2000 })
      expect(yield* b.acquire({ retry: { attempts: 1 } })).toBe(false)
      expect(count("lock.acquire")).toBe(2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a failed acquire never loses the token the handle holds", () =>
    Effect.gen(function*() {
      const a = yield* Lock.make({ id: "t", lease: 1000, retry: { attempts: 1 } })
      const b = yield* Lock.make({ id: "t", lease: 1000, retry: { attempts: 1 } })
      yield* a.acquire()
      const token = (yield* readKey(keyOf("t"))).value
      yield* TestClock.adjust(1001) // a's lease runs out; b takes the lock
      expect(yield* b.acquire()).toBe(true)
      expect(yield* a.acquire()).toBe(false)
      yield* b.release
      expect(yield* a.acquire()).toBe(true) // same handle, same token: nothing was forgotten
      expect((yield* readKey(keyOf("t"))).value).toBe(token)
      expect(yield* a.release).toBe(true)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("release and extend on a handle that holds nothing answer false without a round trip", () => {
    const { client, layer } = setup()
    return Effect.gen(function*() {
      const a = yield* Lock.make({ id: "n" })
      expect(yield* a.release).toBe(false)
      expect(yield* a.extend(100)).toBe(false)
      expect(client.calls).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a Redis fault is a typed RedisError from every method, and the lock is never reported held", () =>
    Effect.gen(function*() {
      const a = yield* Lock.make({ id: "f" })
      yield* MemoryTest.failNext(100)
      const errors = yield* Effect.all([Effect.flip(a.acquire()), Effect.flip(a.status), Effect.flip(a.state)])
      for (const e of errors) {
        expect(e._tag).toBe("RedisError")
        expect(e.message).toContain("fault injected by MemoryTest")
      }
      expect(yield* a.fence).toEqual(Option.none())
      expect(yield* a.release).toBe(false)
    }).pipe(Effect.provide(MemoryTest.layer)))
})

describe("Lock.acquire (the scoped lease)", () => {
  it.effect("waits on the retry schedule and fails with LockNotAcquired when the tries run out", () =>
    Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "r" })
      yield* holder.acquire()
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "r", retry: { attempts: 4, delay: 250 } })))
      yield* TestClock.adjust(749)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("LockNotAcquired")
      expect((error as LockNotAcquired).reason).toBe("held")
      expect((error as LockNotAcquired).remaining).toBe(10_000 - 750)
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("with a timeout and no retry, a woken-by-push waiter only looks every 400 ms to keep its place: it fails at the timeout", () => {
    const { count, layer } = setup()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "to" })
      yield* holder.acquire()
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "to", timeout: "5 seconds" })))
      yield* TestClock.adjust(4999)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1)
      const error = (yield* Effect.flip(Fiber.join(fiber))) as LockNotAcquired
      expect(error.reason).toBe("timeout")
      expect(error.message).toContain("timeout")
      // a first try, one more after subscribing, then one every 400 ms (the heartbeat that keeps its place
      // in line, and catches a wake-up a lost connection ate): not the 100 ms polling of a backend without push
      expect(count("lock.acquireFair")).toBe(2 + Math.floor(5000 / 400))
    }).pipe(Effect.provide(layer))
  })

  it.effect("where nothing pushes, the first in line looks every 5–10 ms: a lock released to it is never idle for a polling interval", () => {
    const { count, layer } = setup()
    const noPush = Layer.effect(Redis, Effect.map(Redis, ({ subscriber: _, ...rest }) => Redis.of(rest))).pipe(
      Layer.provide(layer)
    )
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "np" })
      yield* holder.acquire()
      const got = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        Lock.withLock({ id: "np", timeout: "5 seconds" })(
          Effect.zipRight(Deferred.succeed(got, undefined), Effect.never)
        )
      )
      yield* TestClock.adjust(1)
      const second = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "np", timeout: "5 seconds" })))
      yield* TestClock.adjust(999)
      // In one second the second in line looked 10 times; the first, every 5–10 ms.
      expect(count("lock.acquireFair")).toBeGreaterThan(100)
      yield* holder.release // reserved for the first in line, which nobody wakes
      for (let ms = 0; ms < 10; ms++) yield* TestClock.adjust(1)
      expect(yield* Deferred.isDone(got)).toBe(true)
      yield* Fiber.interrupt(second)
      yield* Fiber.interrupt(first)
    }).pipe(Effect.provide(noPush))
  })

  it.effect("with a timeout and no retry, where nothing pushes, a waiter looks every 100 ms until the timeout", () => {
    const { count, layer } = setup()
    const noPush = Layer.effect(Redis, Effect.map(Redis, ({ subscriber: _, ...rest }) => Redis.of(rest))).pipe(
      Layer.provide(layer)
    )
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "to" })
      yield* holder.acquire()
      const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire({ id: "to", timeout: "2 seconds" })))
      yield* TestClock.adjust(2000)
      expect(((yield* Effect.flip(Fiber.join(fiber))) as LockNotAcquired).reason).toBe("timeout")
      expect(count("lock.acquireFair")).toBeGreaterThanOrEqual(20)
    }).pipe(Effect.provide(noPush))
  })

  it.effect("accepts any Schedule for waiting", () =>
    Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "s", lease: 3000 })
      yield* holder.acquire()
      const retry = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(10)))
      const fiber = yield* Effect.fork(Effect.scoped(Effect.map(Lock.acquire({ id: "s", retry }), (l) => l.fence)))
      yield* TestClock.adjust(10_000)
      expect(yield* Fiber.join(fiber)).toBe(2) // got it once the holder's 3 s lease ran out
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("keeps the lease alive every third of the lease for as long as the scope is open", () => {
    const { count, layer } = setup()
    return Effect.gen(function*() {
      const probe = yield* Lock.make({ id: "k" })
      const fiber = yield* Effect.fork(
        Lock.withLock({ id: "k", lease: 3000 })(Effect.sleep("30 seconds").pipe(Effect.as("done")))
      )
      for (let t = 0; t < 29; t++) {
        yield* TestClock.adjust(1000)
        const state = yield* probe.state
        expect(state._tag).toBe("HeldByOther") // 29 s in, far past the 3 s lease
      }
      yield* TestClock.adjust(1000)
      expect(yield* Fiber.join(fiber)).toBe("done")
      // one extension a second; the one due at 30 s, the instant the work ends, may or may not run
      const extensions = count("lock.extendMany")
      expect(extensions).toBeGreaterThanOrEqual(29)
      expect(extensions).toBeLessThanOrEqual(30)
      expect((yield* probe.state)._tag).toBe("Free")
      yield* TestClock.adjust(60_000)
      expect(count("lock.extendMany")).toBe(extensions) // the keep-alive fiber ended with the scope
    }).pipe(Effect.provide(layer))
  })

  it.effect("when another owner takes the key, the next extension finds out and the work is interrupted with LockLost", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const work = Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))
      const fiber = yield* Effect.fork(Lock.withLock({ id: "st", lease: 3000 })(work))
      yield* TestClock.adjust(500)
      yield* writeKey(keyOf("st"), "someone-else", 60_000)
      yield* TestClock.adjust(499)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1) // the keep-alive tick at 1000 ms
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = (yield* Effect.flip(exit)) as LockLost
      expect(error._tag).toBe("LockLost")
      expect(error.reason).toBe("expired")
      expect(error.fence).toBe(1)
      expect(yield* Ref.get(interrupted)).toBe(true)
      expect((yield* readKey(keyOf("st"))).value).toBe("someone-else") // our release did not touch it
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("when extensions hang, the lease is declared lost at its local deadline, before it expires in Redis", () => {
    const { client, layer } = setup()
    client.on("lock.extendMany", FaultyRedis.Hang)
    return Effect.gen(function*() {
      const lease = 3000
      const deadline = lease - (Math.floor(lease * 0.01) + 2) // 2968: lease minus drift
      const fiber = yield* Effect.fork(Lock.withLock({ id: "h", lease })(Effect.never))
      yield* TestClock.adjust(deadline - 1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1)
      const error = (yield* Effect.flip(Fiber.join(fiber))) as LockLost
      expect(error.reason).toBe("unconfirmed")
      expect(error.message).toContain("could not be confirmed")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a failed extension is retried on the next tick and a later success keeps the lease", () => {
    const { client, count, layer } = setup()
    client.on("lock.extendMany", FaultyRedis.Fail, { nth: 1 })
    return Effect.gen(function*() {
      const result = yield* Effect.fork(Lock.withLock({ id: "tr", lease: 3000 })(Effect.sleep("10 seconds")))
      yield* TestClock.adjust(10_000)
      expect(Exit.isSuccess(yield* Fiber.await(result))).toBe(true)
      expect(count("lock.extendMany")).toBeGreaterThan(1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("with keepAlive false, work longer than the lease is interrupted with LockLost (expired)", () => {
    const { count, layer } = setup()
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Lock.withLock({ id: "nk", lease: 1000, keepAlive: false })(Effect.never))
      yield* TestClock.adjust(1000)
      const error = (yield* Effect.flip(Fiber.join(fiber))) as LockLost
      expect(error.reason).toBe("expired")
      expect(count("lock.extendMany")).toBe(0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("interrupting the work releases the lock at once", () =>
    Effect.gen(function*() {
      const probe = yield* Lock.make({ id: "i" })
      const fiber = yield* Effect.fork(Lock.withLock({ id: "i" })(Effect.never))
      yield* TestClock.adjust(1)
      expect((yield* probe.state)._tag).toBe("HeldByOther")
      yield* Fiber.interrupt(fiber)
      expect((yield* probe.state)._tag).toBe("Free")
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("a release that never answers cannot hang the scope: it gives up when the lease would have ended", () => {
    const { client, layer } = setup()
    client.on("lock.release", FaultyRedis.Hang)
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Lock.withLock({ id: "hang", lease: 5000 })(Effect.sleep(1000)))
      yield* TestClock.adjust(1000) // the work ends; the release hangs
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(5000 - 52 - 1000 - 1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(1) // the local deadline of the last extension (at 0 + lease − drift)
      expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  it.effect("Lease.extend adds time and moves the local deadline", () =>
    Effect.scoped(Effect.gen(function*() {
      const lease = yield* Lock.acquire({ id: "le", lease: 1000, keepAlive: false })
      expect(yield* lease.validUntil).toBe(1000 - 12)
      expect(yield* lease.extend("5 seconds")).toBe(true)
      expect((yield* readKey(keyOf("le"))).pttl).toBe(6000)
      expect(yield* lease.validUntil).toBe(6000 - 62)
      yield* TestClock.adjust(5000)
      expect(yield* lease.isLost).toBe(false)
      yield* TestClock.adjust(1000)
      expect(yield* lease.isLost).toBe(true)
      expect(yield* lease.extend(100)).toBe(false)
    })).pipe(Effect.provide(Memory.layer)))

  it.effect("a Redis fault while acquiring is a RedisError, not a retry and not a crash", () => {
    const { client, count, layer } = setup()
    client.on("lock.acquire*", FaultyRedis.Fail)
    return Effect.gen(function*() {
      const error = (yield* Effect.flip(Effect.scoped(Lock.acquire({ id: "rf", timeout: "5 seconds" })))) as RedisError
      expect(error._tag).toBe("RedisError")
      expect(count("lock.acquireFair")).toBe(1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("counts attempts, acquisitions, extensions and lost leases in metrics", () =>
    Effect.gen(function*() {
      const before = yield* Effect.all([
        Metric.value(Lock.metrics.attempts),
        Metric.value(Lock.metrics.acquired),
        Metric.value(Lock.metrics.extensions),
        Metric.value(Lock.metrics.lost)
      ])
      const fiber = yield* Effect.fork(Lock.withLock({ id: "m", lease: 300, keepAlive: false })(Effect.never))
      yield* TestClock.adjust(300)
      yield* Fiber.await(fiber)
      yield* Lock.withLock({ id: "m2", lease: 300 })(Effect.sleep(250))
      const after = yield* Effect.all([
        Metric.value(Lock.metrics.attempts),
        Metric.value(Lock.metrics.acquired),
        Metric.value(Lock.metrics.extensions),
        Metric.value(Lock.metrics.lost)
      ])
      expect(after[0].count - before[0].count).toBe(2)
      expect(after[1].count - before[1].count).toBe(2)
      expect(after[2].count - before[2].count).toBe(2) // ticks at 100 and 200 ms
      expect(after[3].count - before[3].count).toBe(1)
    }).pipe(
      Effect.provide(Memory.layer),
      // the second withLock sleeps on the TestClock: drive it from a separate fiber
      (self) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(self)
          yield* TestClock.adjust(1000)
          return yield* Fiber.join(fiber)
        })
    ))
})

describe("bad input is rejected with InvalidOptions before anything reaches Redis", () => {
  const invalidMake: ReadonlyArray<readonly [string, unknown, string]> = [
    ["empty id", { id: "" }, "id"],
    ["over-long id", { id: "x".repeat(1025) }, "id"],
    ["non-string id", { id: 42 }, "id"],
    ["missing id", {}, "id"],
    ["lease 0", { id: "a", lease: 0 }, "lease"],
    ["lease -1", { id: "a", lease: -1 }, "lease"],
    ["lease NaN", { id: "a", lease: NaN }, "lease"],
    ["lease Infinity", { id: "a", lease: Infinity }, "lease"],
    ["lease 1.5 ms", { id: "a", lease: 1.5 }, "lease"],
    ["lease 2^53 ms", { id: "a", lease: 2 ** 53 }, "lease"],
    ["lease as unparsable text", { id: "a", lease: "soon" }, "lease"],
    ["lease of 1.5 millis", { id: "a", lease: "1.5 millis" }, "lease"],
    ["retry.attempts -1", { id: "a", retry: { attempts: -1 } }, "retry.attempts"],
    ["retry.attempts 0", { id: "a", retry: { attempts: 0 } }, "retry.attempts"],
    ["retry.attempts NaN", { id: "a", retry: { attempts: NaN } }, "retry.attempts"],
    ["retry.attempts 2.5", { id: "a", retry: { attempts: 2.5 } }, "retry.attempts"],
    ["retry.delay -1", { id: "a", retry: { delay: -1 } }, "retry.delay"],
    ["retry.delay NaN", { id: "a", retry: { delay: NaN } }, "retry.delay"],
    ["non-string prefix", { id: "a", prefix: 7 }, "prefix"]
  ]

  for (const [name, options, option] of invalidMake) {
    it.effect(`Lock.make: ${name}`, () => {
      const { client, layer } = setup()
      return Effect.gen(function*() {
        const error = yield* Effect.flip(Lock.make(options as Lock.Options))
        expect(error._tag).toBe("InvalidOptions")
        expect(error.option).toBe(option)
        expect(error.message).toContain(`"${option}"`)
        const scoped = yield* Effect.flip(Effect.scoped(Lock.acquire(options as Lock.AcquireOptions)))
        expect(scoped._tag).toBe("InvalidOptions")
        expect(client.calls).toEqual([])
      }).pipe(Effect.provide(layer))
    })
  }

  const invalidCalls: ReadonlyArray<readonly [string, (lock: Lock.Lock) => Effect.Effect<unknown, unknown>]> = [
    ["extend(0)", (l) => l.extend(0)],
    ["extend(-5)", (l) => l.extend(-5)],
    ["extend(NaN)", (l) => l.extend(NaN)],
    ["extend(1.5)", (l) => l.extend(1.5)],
    ["acquire({ lease: 0 })", (l) => l.acquire({ lease: 0 })],
    ["acquire({ retry: { attempts: -1 } })", (l) => l.acquire({ retry: { attempts: -1 } })],
    ["acquire({ uuid: \"\" })", (l) => l.acquire({ uuid: "" })],
    ["acquire({ uuid: \"~reserved\" })", (l) => l.acquire({ uuid: "~reserved" })]
  ]
  for (const [name, call] of invalidCalls) {
    it.effect(`handle.${name}`, () => {
      const { client, layer } = setup()
      return Effect.gen(function*() {
        const lock = yield* Lock.make({ id: "bad" })
        const error = (yield* Effect.flip(call(lock))) as { _tag: string }
        expect(error._tag).toBe("InvalidOptions")
        expect(client.calls).toEqual([])
      }).pipe(Effect.provide(layer))
    })
  }

  it.effect("Lock.acquire: negative timeout and Lease.extend(0)", () => {
    const { client, layer } = setup()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Lock.acquire({ id: "a", timeout: -1 })))
      expect(error._tag).toBe("InvalidOptions")
      expect(client.calls).toEqual([])
      const lease = yield* Lock.acquire({ id: "a" })
      const calls = client.calls.length
      expect((yield* Effect.flip(lease.extend(0)))._tag).toBe("InvalidOptions")
      expect(client.calls.length).toBe(calls)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.effect("ids may hold any printable text, and each gets its own lock (a control character is InvalidOptions)", () =>
    Effect.gen(function*() {
      const id = yield* uniqueId("ünï cødé {} 🔒 ")
      const a = yield* Lock.make({ id })
      const b = yield* Lock.make({ id: `${id} ` })
      expect(yield* a.acquire()).toBe(true)
      expect(yield* b.acquire()).toBe(true)
      const error = yield* Effect.flip(Lock.make({ id: `${id}\n` }))
      expect([error._tag, error.option]).toEqual(["InvalidOptions", "id"])
    }).pipe(Effect.provide(Memory.layer)))
})
