/**
 * No lock is left to a token nobody has: a `leave` (after a try whose answer was lost) and a release
 * whose answer was lost are retried in the background, owner-checked, until answered or the lease is
 * over. And bad input is `InvalidOptions` with nothing sent.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { Lock, Semaphore } from "../src/index.js"
import { lockKeys } from "../src/internal/keys.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { readKey } from "./utils/probe.js"

const on = (client: FaultyRedis.FaultyRedis) => client.layer.pipe(Layer.provide(Memory.layer))

describe("clean-up that outlives one lost answer", () => {
  it.effect("a try applied but failed, and its leave's answer lost too: the lock is free, not held for its lease", () => {
    const client = FaultyRedis.make()
    const keys = lockKeys("effect-lock:", "gateway")
    return Effect.gen(function*() {
      // a gateway that lets requests through to Redis but loses their answers, twice
      client.on("lock.acquireFair", FaultyRedis.FailAfterApply, { nth: 1 })
      client.on("lock.leave", FaultyRedis.FailAfterApply, { nth: 1 })
      client.on("lock.leave", FaultyRedis.Fail, { nth: 2 })
      const error = yield* Effect.flip(
        Lock.withLock({ id: "gateway", lease: "30 seconds", timeout: "5 seconds" })(Effect.void)
      )
      expect(error._tag).toBe("RedisError")
      // the leave was applied though its answer was lost, and the retry that followed answered: free
      expect((yield* readKey(keys.lock)).value).toBeNull()
    }).pipe(Effect.provide(on(client)))
  })

  it.effect("a won lock whose answer and whose leave were both lost is handed back in the background", () => {
    const client = FaultyRedis.make()
    const keys = lockKeys("effect-lock:", "won")
    return Effect.gen(function*() {
      client.on("lock.acquireFair", FaultyRedis.FailAfterApply, { nth: 1 })
      client.on("lock.leave", FaultyRedis.Fail, { nth: 1 })
      client.on("lock.leave", FaultyRedis.Fail, { nth: 2 })
      const error = yield* Effect.flip(
        Lock.withLock({ id: "won", lease: "30 seconds", timeout: "5 seconds" })(Effect.void)
      )
      expect(error._tag).toBe("RedisError")
      // the try won: the key is held by a token nobody has, until a leave is answered
      expect((yield* readKey(keys.lock)).value).not.toBeNull()
      yield* TestClock.adjust("1 second")
      expect((yield* readKey(keys.lock)).value).toBeNull()
      expect(client.runs("lock.leave")).toBeGreaterThanOrEqual(3)
      // and the same app gets the lock again at once
      expect(yield* Lock.withLock({ id: "won", timeout: 0 })(Effect.succeed("again"))).toBe("again")
    }).pipe(Effect.provide(on(client)))
  })

  it.effect("a release whose answer was lost is retried until answered: the next owner does not wait out the lease", () => {
    const client = FaultyRedis.make()
    const keys = lockKeys("effect-lock:", "release")
    return Effect.gen(function*() {
      client.on("lock.release", FaultyRedis.Fail, { nth: 1 })
      client.on("lock.release", FaultyRedis.Fail, { nth: 2 })
      yield* Lock.withLock({ id: "release", lease: "30 seconds" })(Effect.void)
      expect((yield* readKey(keys.lock)).value).not.toBeNull()
      yield* TestClock.adjust("1 second")
      expect((yield* readKey(keys.lock)).value).toBeNull()
      expect(client.runs("lock.release")).toBeGreaterThanOrEqual(3)
    }).pipe(Effect.provide(on(client)))
  })

  it.effect("background retries are owner-checked: they never free the lock of the owner that came after", () => {
    const client = FaultyRedis.make()
    const keys = lockKeys("effect-lock:", "owner")
    return Effect.gen(function*() {
      client.on("lock.release", FaultyRedis.Fail, { nth: 1 })
      yield* Lock.withLock({ id: "owner", lease: 100, keepAlive: false })(Effect.void)
      // the lease lapses; another owner takes the lock before the retry runs
      yield* TestClock.adjust(150)
      const next = yield* Lock.make({ id: "owner", lease: "1 minute" })
      expect(yield* next.acquire()).toBe(true)
      yield* TestClock.adjust("2 seconds")
      expect(yield* next.status).toBe("ACQUIRED")
      expect((yield* readKey(keys.lock)).value).not.toBeNull()
    }).pipe(Effect.provide(on(client)))
  })
})

describe("bad input sends nothing", () => {
  const bad = [
    ["fair", { fair: "no" }],
    ["timeout", { timeout: -1 }],
    ["keepAlive", { keepAlive: 5 }],
    ["retry", { retry: "often" }]
  ] as const
  for (const [option, extra] of bad) {
    it.effect(`${option}: ${JSON.stringify(extra)} is InvalidOptions before any command, on every entry point`, () => {
      const client = FaultyRedis.make()
      return Effect.gen(function*() {
        const options = { id: "bad", ...extra } as unknown as Lock.AcquireOptions
        const errors = [
          yield* Effect.flip(Effect.scoped(Lock.acquire(options))),
          yield* Effect.flip(Lock.withLock(options)(Effect.void)),
          yield* Effect.flip(Lock.withLease(options, () => Effect.void))
        ]
        const semaphore = yield* Semaphore.make({ id: "bad", permits: 2 })
        errors.push(yield* Effect.flip(semaphore.withPermits(1, extra as never)(Effect.void)))
        for (const error of errors) expect(error).toMatchObject({ _tag: "InvalidOptions", option })
        expect(client.calls).toEqual([])
      }).pipe(Effect.provide(on(client)))
    })
  }
})
