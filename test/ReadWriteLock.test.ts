/**
 * ReadWriteLock on the Memory backend under TestClock, against a model: random reads, writes,
 * downgrades, releases, expiries and interrupted waiters by four owners. After every step the holders,
 * the fences and the line are what the model says; nobody is ever held beside a writer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FastCheck as fc, Fiber, Scope, TestClock } from "effect"
import { inspect } from "../src/internal/rwlock/rwlock.js"
import * as ReadWriteLock from "../src/ReadWriteLock.js"
import { Redis } from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"

const LEASE = 1000
/** The local deadline is the lease less its drift margin (1% + 2 ms): between the two, either is right. */
const DRIFT = Math.floor(LEASE * 0.01) + 2

type Op =
  | { readonly kind: "read" | "write" | "release" | "downgrade" | "waitAndInterrupt"; readonly owner: number }
  | { readonly kind: "elapse"; readonly ms: number }
  | { readonly kind: "waitForTurn"; readonly owner: number; readonly write: boolean }

const owner = fc.integer({ min: 0, max: 3 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("read" as const), owner }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("write" as const), owner }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("release" as const), owner }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("downgrade" as const), owner }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("waitAndInterrupt" as const), owner }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("waitForTurn" as const), owner, write: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("elapse" as const), ms: fc.integer({ min: 50, max: 1200 }) }), weight: 2 }
)

interface Hold {
  readonly mode: "r" | "w"
  readonly fence: number
  /** When Redis drops it (store ms): held while the clock is at or below it. */
  readonly expiresAt: number
  readonly scope: Scope.CloseableScope
  readonly lease: ReadWriteLock.ReadLease | ReadWriteLock.WriteLease
}

const run = (ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    const id = "model"
    const redis = yield* Redis
    const holds = new Map<number, Hold>()
    /** The write fence counter: 0 while there is none (a read then carries 0). */
    let counter = 0
    /**
     * The next write fence at store time `at`: a counter that is gone starts at the store's clock in µs
     * + 1 (core/lua.ts `nextFenceLocal`); it lives a week after the last write, far beyond a run.
     */
    const nextWrite = (at: number) => counter === 0 ? at * 1000 + 1 : counter + 1
    const options = { id, lease: LEASE, keepAlive: false, retry: { attempts: 1 } } as const
    const now = () => TestClock.currentTimeMillis
    const live = (at: number) => {
      for (const [o, h] of holds) if (h.expiresAt < at) holds.delete(o)
    }
    const writing = () => [...holds.values()].some((h) => h.mode === "w")
    const take = (write: boolean) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const at = yield* now()
        const exit = yield* Scope.extend(
          write ? ReadWriteLock.writeLock(options) : ReadWriteLock.readLock(options),
          scope
        ).pipe(Effect.exit)
        if (Exit.isFailure(exit)) yield* Scope.close(scope, Exit.void)
        return { exit, scope, at }
      })
    for (const step of ops) {
      live(yield* now())
      switch (step.kind) {
        case "read":
        case "write": {
          if (holds.has(step.owner)) break
          const write = step.kind === "write"
          const allowed = write ? holds.size === 0 : !writing()
          const { at, exit, scope } = yield* take(write)
          expect(Exit.isSuccess(exit)).toBe(allowed)
          if (Exit.isSuccess(exit)) {
            if (write) counter = nextWrite(at)
            expect(exit.value.fence).toBe(counter)
            holds.set(step.owner, {
              mode: write ? "w" : "r",
              fence: counter,
              expiresAt: at + LEASE,
              scope,
              lease: exit.value
            })
          } else expect(Cause.squash(exit.cause)).toMatchObject({ _tag: "LockNotAcquired" })
          break
        }
        case "release": {
          const hold = holds.get(step.owner)
          if (hold === undefined) break
          yield* Scope.close(hold.scope, Exit.void)
          holds.delete(step.owner)
          break
        }
        case "downgrade": {
          const hold = holds.get(step.owner)
          if (hold === undefined || hold.mode !== "w") break
          const read = yield* (hold.lease as ReadWriteLock.WriteLease).downgrade
          expect(read.fence).toBe(hold.fence)
          holds.set(step.owner, { ...hold, mode: "r" })
          break
        }
        case "waitAndInterrupt": {
          // A waiter held up by a hold that outlasts its wait: interrupted, it leaves no trace.
          const at = yield* now()
          if (holds.has(step.owner) || ![...holds.values()].some((h) => h.expiresAt > at + 50)) break
          const fiber = yield* Effect.fork(
            Effect.scoped(ReadWriteLock.writeLock({ ...options, retry: undefined, timeout: 10_000 }))
          )
          yield* TestClock.adjust(10)
          const done = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(done)).toBe(true)
          break
        }
        case "waitForTurn": {
          // Waits in line for its turn while the others hold; the holders are released (oldest first).
          if (holds.has(step.owner)) break
          // Nobody holding, it takes at once (at `from`); else when the holders are released, a ms later.
          const [from, free] = [yield* now(), holds.size === 0]
          const fiber = yield* Effect.fork(
            Effect.scoped(
              (step.write ? ReadWriteLock.writeLock : ReadWriteLock.readLock)({
                ...options,
                retry: undefined,
                timeout: 10_000
              })
            )
          )
          yield* TestClock.adjust(1)
          for (const [o, h] of holds) {
            yield* Scope.close(h.scope, Exit.void)
            holds.delete(o)
          }
          const granted = free ? from : yield* now()
          const got = yield* Fiber.join(fiber)
          if (step.write) counter = nextWrite(granted)
          expect(got.fence).toBe(counter)
          break
        }
        case "elapse":
          yield* TestClock.adjust(step.ms)
          break
      }
      const at = yield* now()
      live(at)
      expect(yield* inspect(redis, "effect-lock:", id)).toEqual({
        writing: writing(),
        readers: [...holds.values()].filter((h) => h.mode === "r").length,
        fence: counter,
        waiting: 0
      })
      for (const hold of holds.values()) {
        if (at < hold.expiresAt - DRIFT) expect(yield* hold.lease.isLost).toBe(false)
      }
    }
    for (const hold of holds.values()) yield* Scope.close(hold.scope, Exit.void)
  })

describe("ReadWriteLock against a model (Memory, TestClock)", () => {
  it.effect.prop(
    "random reads, writes, downgrades, releases, expiries and interrupted waiters agree with the model",
    { ops: fc.array(op, { minLength: 1, maxLength: 40 }) },
    ({ ops }) => run(ops).pipe(Effect.provide(Memory.layer)),
    { fastCheck: { numRuns: 150, endOnFailure: true } }
  )

  it.effect("a lost write is not downgraded: LockLost, and nobody is left reading", () =>
    Effect.gen(function*() {
      const write = yield* ReadWriteLock.writeLock({ id: "lost", lease: 500, keepAlive: false })
      yield* TestClock.adjust(501)
      expect((yield* Effect.flip(write.downgrade))._tag).toBe("LockLost")
      expect(yield* Effect.flatMap(Redis, (redis) => inspect(redis, "effect-lock:", "lost"))).toMatchObject({
        writing: false,
        readers: 0
      })
    }).pipe(Effect.scoped, Effect.provide(Memory.layer)))
})
