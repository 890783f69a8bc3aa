/**
 * Waiting in line (the default): first come, first served, push-based hand-off, no missed wake-up,
 * dead and departing waiters. On the Memory backend (in-process pub/sub) under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Ref, TestClock } from "effect"
import { lockKeys } from "../src/internal/keys.js"
import * as scripts from "../src/internal/lock/scripts.js"
import * as Lock from "../src/Lock.js"
import { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { eventually } from "./utils/live.js"
import { deadWaiter, readKey, readList } from "./utils/probe.js"

const keys = lockKeys("effect-lock:", "line")

/** Forks a waiter that records when it got the lock, and returns once it stands in line. */
const waiter = (name: string, order: Ref.Ref<Array<string>>, options: Partial<Lock.AcquireOptions> = {}) =>
  Effect.gen(function*() {
    const before = (yield* readList(keys.queue)).length
    const fiber = yield* Effect.fork(
      Lock.withLock({ id: "line", timeout: "1 minute", retry: { attempts: 1000, delay: "10 seconds" }, ...options })(
        Ref.update(order, (o) => [...o, name])
      )
    )
    // wait (on the in-process store: no time passes) until it has joined the line
    yield* eventually(readList(keys.queue), (line) => line.length > before)
    return fiber
  })

describe("Lock.acquire waits in line", () => {
  it.effect("waiters get the lock first come, first served, each as soon as it is handed over", () =>
    Effect.gen(function*() {
      const order = yield* Ref.make<Array<string>>([])
      const holder = yield* Lock.make({ id: "line" })
      yield* holder.acquire()
      const fibers = yield* Effect.forEach(["a", "b", "c", "d"], (name) => waiter(name, order))
      expect((yield* readList(keys.queue)).length).toBe(4)
      yield* holder.release
      // Push-based: no clock time passes, yet every waiter runs (retry delays are 10 s).
      yield* Effect.forEach(fibers, Fiber.join)
      expect(yield* Ref.get(order)).toEqual(["a", "b", "c", "d"])
      expect(yield* readList(keys.queue)).toEqual([])
      expect((yield* readKey(keys.lock)).value).toBeNull()
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("the releaser going straight back waits behind those already in line", () =>
    Effect.gen(function*() {
      const order = yield* Ref.make<Array<string>>([])
      const first = yield* Deferred.make<void>()
      const again = yield* Deferred.make<void>()
      // "x" holds, then immediately asks again while "y" waits: "y" must come before x's second turn.
      const x = yield* Effect.fork(Effect.gen(function*() {
        yield* Lock.withLock({ id: "line" })(
          Effect.zipRight(Ref.update(order, (o) => [...o, "x1"]), Deferred.await(first))
        )
        yield* Lock.withLock({ id: "line", timeout: "1 minute" })(Ref.update(order, (o) => [...o, "x2"]))
        yield* Deferred.succeed(again, undefined)
      }))
      yield* eventually(Ref.get(order), (o) => o.length === 1)
      const y = yield* waiter("y", order)
      yield* Deferred.succeed(first, undefined)
      yield* Fiber.join(y)
      yield* Deferred.await(again)
      yield* Fiber.join(x)
      expect(yield* Ref.get(order)).toEqual(["x1", "y", "x2"])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("a release between a waiter's first try and its subscription is not missed", () => {
    // The holder releases right after the waiter's first (failed) try returns, before the waiter has
    // subscribed: the wake-up is published to nobody. The waiter must look again after subscribing.
    const client = FaultyRedis.make()
    return Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "line" })
      yield* holder.acquire()
      client.on("lock.acquireFair", FaultyRedis.Then(holder.release), { nth: 1 })
      const fence = yield* Effect.scoped(Effect.map(
        Lock.acquire({ id: "line", retry: { attempts: 5, delay: "10 seconds" } }),
        (lease) => lease.fence
      ))
      expect(fence).toBe(2) // won without any clock time passing
      expect(client.runs("lock.acquireFair")).toBe(2)
    }).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
  })

  it.effect("a dead waiter at the head blocks the lock only until its reservation lapses (1 s)", () =>
    Effect.gen(function*() {
      const order = yield* Ref.make<Array<string>>([])
      const holder = yield* Lock.make({ id: "line" })
      yield* holder.acquire()
      // A waiter that joined the line and then died: its token is in line, nobody listens for it.
      yield* deadWaiter(keys)
      const live = yield* waiter("live", order)
      yield* holder.release // reserved for the dead waiter
      expect((yield* readKey(keys.lock)).value).toBe("~dead-waiter")
      yield* TestClock.adjust(1000)
      expect(yield* Ref.get(order)).toEqual([])
      yield* TestClock.adjust(1) // the reservation has lapsed; the live waiter's bounded wait ends now
      yield* Fiber.join(live)
      expect(yield* Ref.get(order)).toEqual(["live"])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("a waiter that gives up leaves the line, and a reservation made for it passes to the next", () =>
    Effect.gen(function*() {
      const order = yield* Ref.make<Array<string>>([])
      const holder = yield* Lock.make({ id: "line" })
      yield* holder.acquire()
      const quitter = yield* waiter("quitter", order)
      const patient = yield* waiter("patient", order)
      expect((yield* readList(keys.queue)).length).toBe(2)
      yield* Fiber.interrupt(quitter)
      expect((yield* readList(keys.queue)).length).toBe(1)
      yield* holder.release
      yield* Fiber.join(patient)
      expect(yield* Ref.get(order)).toEqual(["patient"])

      // Now the lock is reserved for a waiter that is interrupted before it claims it.
      yield* holder.acquire()
      const late = yield* waiter("late", order)
      const next = yield* waiter("next", order)
      const redis = yield* Redis
      yield* redis.run(scripts.release.script, [keys.lock, keys.queue], [
        (yield* readKey(keys.lock)).value!,
        "1000",
        "nobody-listens-here"
      ])
      expect((yield* readKey(keys.lock)).value?.startsWith("~")).toBe(true)
      yield* Fiber.interrupt(late)
      yield* Fiber.join(next)
      expect(yield* Ref.get(order)).toEqual(["patient", "next"])
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("fair: false is a plain SET NX: no line is kept", () =>
    Effect.gen(function*() {
      const holder = yield* Lock.make({ id: "line" })
      yield* holder.acquire()
      const fiber = yield* Effect.fork(
        Effect.scoped(Lock.acquire({ id: "line", fair: false, retry: { attempts: 3, delay: 100 } }))
      )
      yield* TestClock.adjust(200)
      expect((yield* Effect.flip(Fiber.join(fiber)))._tag).toBe("LockNotAcquired")
      expect(yield* readList(keys.queue)).toEqual([])
      expect(Option.isSome(yield* holder.fence)).toBe(true)
    }).pipe(Effect.provide(Memory.layer)))
})
