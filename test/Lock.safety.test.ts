/**
 * Safety under faults: never two owners, and never a caller told one thing while Redis holds another. Memory store under TestClock,
 * with interleavings forced by test/utils/FaultyRedis.ts. Public API only: `Lock.acquire`,
 * `Lock.withLock`, `Lock.make`, the lease's `extend` / `validUntil` / `isLost`, and the lock's key
 * (`<prefix>lock:{<id>}`, documented) read through the seam.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Schedule, TestClock } from "effect"
import * as Lock from "../src/Lock.js"
import type { LockLost } from "../src/LockError.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { readKey } from "./utils/probe.js"

const keyOf = (id: string) => `effect-lock:lock:{${id}}`

/** When the store drops the lock's key, in store milliseconds (TestClock time), or undefined if free. */
const expiryOf = (id: string) =>
  Effect.gen(function*() {
    const { pttl, value } = yield* readKey(keyOf(id))
    return value === null || pttl < 0 ? undefined : (yield* Clock.currentTimeMillis) + pttl
  })

/** Another process's one-shot look: who holds the lock right now. */
const stateOf = (id: string) => Effect.flatMap(Lock.make({ id, retry: { attempts: 1 } }), (l) => l.state)

describe("the lease's deadline only moves to what a reply proves", () => {
  it.scoped(
    "a user's extension answered late, after the keeper's, cannot push validUntil past Redis's expiry",
    () =>
      Effect.gen(function*() {
        const id = "late-answer"
        const holderClient = FaultyRedis.make()
        const lease = yield* Lock.acquire({ id, lease: 6000 }).pipe(Effect.provide(holderClient.layer))
        yield* TestClock.adjust(1900)
        // The user's extend(10 s) is applied at 1900 (Redis: 4100 + 10 000 ms) but its answer takes 300 ms…
        holderClient.on("lock.extend", FaultyRedis.DelayReply(300), { nth: 1 })
        const extended = yield* Effect.fork(lease.extend("10 seconds"))
        // …meanwhile the keeper's tick (at 2000) sets the lease back to 6 s, and is answered at once.
        yield* TestClock.adjust(100)
        yield* TestClock.adjust(200) // the user's late answer lands now
        expect(yield* Fiber.join(extended)).toBe(true)
        // Redis now drops the key at 8000 (8200 had the two extensions been serialized): the deadline may
        // not say later than Redis.
        const expiry = (yield* expiryOf(id))!
        expect(yield* lease.validUntil).toBeLessThanOrEqual(expiry)

        // The holder's network stalls; once Redis drops the key another process takes the lock…
        holderClient.on("lock.extendMany", FaultyRedis.Hang)
        yield* TestClock.adjust(expiry - 2200 + 1)
        const other = yield* Lock.make({ id, retry: { attempts: 1 } })
        expect(yield* other.acquire()).toBe(true)
        // …and by then the holder must know its lease is gone (it said so until ~15.9 s: two owners).
        expect(yield* lease.isLost).toBe(true)
      }).pipe(Effect.provide(Memory.layer)),
    20_000
  )

  it.scoped(
    "the keeper's extension answered late, after the user's, does not cut or stretch the deadline wrongly",
    () =>
      Effect.gen(function*() {
        const id = "late-keeper"
        const holderClient = FaultyRedis.make()
        const lease = yield* Lock.acquire({ id, lease: 6000 }).pipe(Effect.provide(holderClient.layer))
        // The keeper's tick at 2000 (extend #1) is applied at once but answered 300 ms late…
        holderClient.on("lock.extendMany", FaultyRedis.DelayReply(300), { nth: 1 })
        yield* TestClock.adjust(2000)
        // …while the user's extend(10 s), sent at 2100, is applied after it and answered first.
        yield* TestClock.adjust(100)
        expect(yield* lease.extend("10 seconds")).toBe(true)
        yield* TestClock.adjust(200) // the keeper's older answer lands now
        const expiry = (yield* expiryOf(id))!
        expect(expiry).toBe(18_000) // 6 s from 2000, plus 10 s (the same had the two been serialized)
        const validUntil = yield* lease.validUntil
        expect(validUntil).toBeLessThanOrEqual(expiry)
        // The older answer must not override the newer one: the deadline still reflects the user's extension.
        expect(validUntil).toBeGreaterThan(2000 + 6000)
      }).pipe(Effect.provide(Memory.layer)),
    20_000
  )
})

describe("lease arithmetic is monotonic", () => {
  it.scoped("the holder's wall clock stepping back 3 s does not stretch its lease", () =>
    Effect.gen(function*() {
      const id = "ntp-step"
      const holderClient = FaultyRedis.make()
      const stepped = FaultyRedis.steppedClock(yield* Effect.clock)
      // The holder runs on its own clock; Redis (the store) keeps the real one.
      const lease = yield* Lock.acquire({ id, lease: 3000 }).pipe(
        Effect.withClock(stepped.clock),
        Effect.provide(holderClient.layer)
      )
      // The network comes back before the scope closes, so the release does not wait on a frozen client.
      yield* Effect.addFinalizer(() => Effect.sync(holderClient.clear))
      yield* TestClock.adjust(500)
      stepped.step(-3000) // NTP steps the holder's clock back 3 s…
      holderClient.on("*", FaultyRedis.Hang) // …and its network freezes
      yield* TestClock.adjust(2501) // Redis drops the key just after 3000
      expect(yield* expiryOf(id)).toBeUndefined()
      const other = yield* Lock.make({ id, retry: { attempts: 1 } })
      expect(yield* other.acquire()).toBe(true)
      // The holder's lease ran out at 3000 on a monotonic clock whatever its wall clock says.
      expect(yield* lease.isLost).toBe(true)
    }).pipe(Effect.provide(Memory.layer)), 20_000)

  it.scoped(
    "guarded work is interrupted with LockLost at the real deadline, not 3 s later",
    () =>
      Effect.gen(function*() {
        const id = "ntp-work"
        const holderClient = FaultyRedis.make()
        const stepped = FaultyRedis.steppedClock(yield* Effect.clock)
        yield* Effect.addFinalizer(() => Effect.sync(holderClient.clear))
        let interruptedAt: number | undefined
        const work = Effect.never.pipe(
          Effect.onInterrupt(() => Effect.map(TestClock.currentTimeMillis, (now) => void (interruptedAt = now)))
        )
        // A daemon: should it never end, the test still can.
        const fiber = yield* Effect.forkDaemon(
          Lock.withLock({ id, lease: 3000 })(work).pipe(
            Effect.withClock(stepped.clock),
            Effect.provide(holderClient.layer)
          )
        )
        yield* TestClock.adjust(500)
        stepped.step(-3000)
        holderClient.on("*", FaultyRedis.Hang)
        yield* TestClock.adjust(2501) // Redis drops the key just after 3000
        // The work was stopped before Redis let the lease go (its release, on a frozen network, may still wait).
        expect(interruptedAt).toBeDefined()
        expect(interruptedAt!).toBeLessThanOrEqual(3000)
        holderClient.clear()
        yield* TestClock.adjust(5000)
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error._tag).toBe("LockLost")
      }).pipe(Effect.provide(Memory.layer)),
    20_000
  )
})

describe("keepAlive is validated, and a keeper that dies makes the lease lost", () => {
  const bad: ReadonlyArray<readonly [string, unknown]> = [
    ["\"1 second\"", "1 second"],
    ["true", true],
    ["500", 500],
    ["null", null],
    ["an object", { every: 1000 }]
  ]
  for (const [name, keepAlive] of bad) {
    it.effect(`keepAlive ${name} is InvalidOptions and nothing is sent`, () => {
      const client = FaultyRedis.make()
      return Effect.gen(function*() {
        const options = { id: "ka", lease: 1000, keepAlive } as unknown as Lock.AcquireOptions
        const acquired = yield* Effect.flip(Effect.scoped(Lock.acquire(options)))
        expect(acquired._tag).toBe("InvalidOptions")
        const guarded = yield* Effect.flip(Lock.withLock(Effect.void, options))
        expect(guarded._tag).toBe("InvalidOptions")
        const ifAvailable = yield* Effect.flip(Lock.withLockIfAvailable(Effect.void, options))
        expect(ifAvailable._tag).toBe("InvalidOptions")
        expect(client.calls).toEqual([])
      }).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
    }, 20_000)
  }

  it.effect("two withLocks with keepAlive \"1 second\" (a cast) never overlap", () =>
    Effect.gen(function*() {
      const options = { id: "ka-overlap", lease: 1000, keepAlive: "1 second" } as unknown as Lock.AcquireOptions
      let inside = 0
      let overlapped = false
      const work = Effect.acquireUseRelease(
        Effect.sync(() => {
          inside++
          overlapped ||= inside > 1
        }),
        () => Effect.sleep(3000),
        () => Effect.sync(() => void inside--)
      )
      const one = yield* Effect.fork(Effect.either(Lock.withLock({ ...options, timeout: "10 seconds" })(work)))
      const two = yield* Effect.fork(Effect.either(Lock.withLock({ ...options, timeout: "10 seconds" })(work)))
      yield* TestClock.adjust(10_000)
      yield* Fiber.join(one)
      yield* Fiber.join(two)
      expect(overlapped).toBe(false)
    }).pipe(Effect.provide(Memory.layer)), 20_000)

  const dying: ReadonlyArray<readonly [string, Schedule.Schedule<unknown, void>]> = [
    ["at its first step", Schedule.spaced("300 millis").pipe(Schedule.mapEffect(() => Effect.dieMessage("boom")))],
    [
      "at its third step",
      Schedule.spaced("300 millis").pipe(
        Schedule.mapEffect((n) => (n >= 2 ? Effect.dieMessage("boom") : Effect.void))
      )
    ]
  ]
  for (const [name, keepAlive] of dying) {
    it.effect(
      `a keepAlive schedule that dies ${name}: the work fails with LockLost by the lease's end, never silently`,
      () =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Lock.withLock({ id: "ka-dies", lease: 1000, keepAlive })(Effect.sleep(3000)))
          yield* TestClock.adjust(1000)
          const exit = yield* Fiber.poll(fiber)
          expect(Option.isSome(exit)).toBe(true) // lost by the end of the lease at the latest
          const error = yield* Effect.flip(Fiber.join(fiber))
          expect(error._tag).toBe("LockLost")
        }).pipe(Effect.provide(Memory.layer)),
      20_000
    )
  }
})

describe("owner tokens, ids and prefixes must be well-formed Unicode", () => {
  const cases: ReadonlyArray<readonly [string, () => Effect.Effect<unknown, unknown, any>]> = [
    ["Lock.make: id with a lone high surrogate", () => Lock.make({ id: "job-\uD800" })],
    ["Lock.make: id with a lone low surrogate", () => Lock.make({ id: "\uDFFF-job" })],
    ["Lock.make: prefix with a lone surrogate", () => Lock.make({ id: "job", prefix: "app\uD800:" })],
    ["Lock.acquire: id with a lone surrogate", () => Effect.scoped(Lock.acquire({ id: "job-\uDC00" }))],
    ["Lock.withLock: prefix with a lone surrogate", () => Lock.withLock(Effect.void, { id: "job", prefix: "\uDBFF" })],
    [
      "handle.acquire: uuid \"owner-\\uD800\"",
      () => Effect.flatMap(Lock.make({ id: "job" }), (l) => l.acquire({ uuid: "owner-\uD800" }))
    ],
    [
      "handle.acquire: uuid \"owner-\\uDFFF\"",
      () => Effect.flatMap(Lock.make({ id: "job" }), (l) => l.acquire({ uuid: "owner-\uDFFF" }))
    ]
  ]
  for (const [name, run] of cases) {
    it.effect(`${name} is InvalidOptions and nothing is sent`, () => {
      const client = FaultyRedis.make()
      return Effect.gen(function*() {
        const error = (yield* Effect.flip(run())) as { _tag: string }
        expect(error._tag).toBe("InvalidOptions")
        expect(client.calls).toEqual([])
      }).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
    })
  }

  it.effect("well-formed astral ids and uuids still work", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make({ id: "🔒-job" })
      expect(yield* lock.acquire({ uuid: "owner-\uD83D\uDD12" })).toBe(true)
      expect(yield* lock.status).toBe("ACQUIRED")
    }).pipe(Effect.provide(Memory.layer)))
})

describe("a timeout that fires during a winning try never leaves the lock failed-but-held", () => {
  for (const fair of [true, false]) {
    it.scoped(
      `the try wins at once but its answer comes after the timeout (fair: ${fair})`,
      () =>
        Effect.gen(function*() {
          const id = `win-late-${fair}`
          const client = FaultyRedis.make()
          client.on(fair ? "lock.acquireFair" : "lock.acquire", FaultyRedis.DelayReply(300), { nth: 1 })
          const closeScope = yield* Deferred.make<void>()
          const outcome = yield* Deferred.make<Either.Either<Lock.Lease, unknown>>()
          // The caller keeps its scope open after the acquisition returns (as a request handler would).
          yield* Effect.forkDaemon(
            Effect.scoped(Effect.gen(function*() {
              const result = yield* Effect.either(Lock.acquire({ id, lease: 30_000, timeout: 100, fair }))
              yield* Deferred.succeed(outcome, result)
              yield* Deferred.await(closeScope)
            })).pipe(Effect.provide(client.layer))
          )
          yield* TestClock.adjust(100)
          yield* TestClock.adjust(200) // the winning answer lands
          yield* TestClock.adjust(100) // time to act on it
          const result = yield* Deferred.await(outcome).pipe(
            Effect.timeoutFail({
              duration: 0,
              onTimeout: () => new Error("the acquisition has not returned 300 ms after its timeout")
            })
          )
          const state = (yield* stateOf(id))._tag
          if (Either.isLeft(result)) {
            // Told it failed: then nobody may hold the lock for it.
            expect(state).toBe("Free")
          } else {
            // Told it won: then the lease is real.
            expect(state).toBe("HeldByOther")
            expect(yield* result.right.isLost).toBe(false)
          }
          yield* Deferred.succeed(closeScope, undefined)
        }).pipe(Effect.provide(Memory.layer)),
      20_000
    )
  }
})

describe("a try Redis applied but whose answer failed leaves no orphan owner", () => {
  for (const fair of [true, false]) {
    it.scoped(
      `the winning try's answer is lost (HTTP 502 after the script ran): the lock is free soon after (fair: ${fair})`,
      () =>
        Effect.gen(function*() {
          const id = `orphan-${fair}`
          const client = FaultyRedis.make()
          client.on(fair ? "lock.acquireFair" : "lock.acquire", FaultyRedis.FailAfterApply, { nth: 1 })
          const fiber = yield* Effect.fork(
            Effect.scoped(Effect.asVoid(Lock.acquire({ id, lease: 30_000, timeout: "5 seconds", fair }))).pipe(
              Effect.provide(client.layer)
            )
          )
          yield* TestClock.adjust(1000)
          const exit = yield* Fiber.await(fiber)
          // Whatever the caller was told (a RedisError, or a retried win whose scope has now closed)…
          expect(Exit.isFailure(exit) ? (yield* Effect.flip(exit))._tag : "won").toMatch(/^(RedisError|won)$/)
          // …the lock is not left to a token nobody has for the whole 30 s lease.
          expect((yield* stateOf(id))._tag).toBe("Free")
        }).pipe(Effect.provide(Memory.layer)),
      20_000
    )
  }
})

/** Keeps the type import used: LockLost is what a lost lease reports. */
export type _LockLost = LockLost
