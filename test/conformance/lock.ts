/**
 * The Lock conformance suite: the same cases for every backend (./backends.ts), each with a Redis provided.
 */
import { describe, expect } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Fiber, Option, Ref, type Scope } from "effect"
import { lockKeys } from "../../src/internal/keys.js"
import * as scripts from "../../src/internal/lock/scripts.js"
import { randomToken } from "../../src/internal/token.js"
import * as Lock from "../../src/Lock.js"
import { Redis } from "../../src/Redis.js"
import { eventually } from "../utils/live.js"
import { deadWaiter, readKey, readList, uniqueId, writeKey } from "../utils/probe.js"
import type { Backend } from "./backends.js"

const HEX_TOKEN = /^[0-9a-f]{32}$/

export const lockConformance = (backend: Backend) =>
  describe(`Lock conformance: ${backend.name}`, () => {
    /** One test, with one client of the backend provided. */
    const test = (name: string, body: Effect.Effect<void, unknown, Redis | Scope.Scope>) =>
      backend.test(name, (client) => Effect.provide(body, client))
    const handles = (id: string, options: Partial<Lock.Options> = {}) =>
      Effect.all([
        Lock.make({ id, retry: { attempts: 1 }, ...options }),
        Lock.make({ id, retry: { attempts: 1 }, ...options })
      ])

    test(
      "acquire on a free lock succeeds and stores a 128-bit random token with the lease as PX",
      Effect.gen(function*() {
        const id = yield* uniqueId("free")
        const [a] = yield* handles(id, { lease: 5000 })
        expect(yield* a.acquire()).toBe(true)
        expect(yield* a.status).toBe("ACQUIRED")
        const raw = yield* readKey(lockKeys("effect-lock:", id).lock)
        expect(raw.value).toMatch(HEX_TOKEN)
        expect(raw.pttl).toBeGreaterThan(4000)
        expect(raw.pttl).toBeLessThanOrEqual(5000)
        const state = yield* a.state
        expect(state._tag).toBe("HeldByMe")
      })
    )

    test(
      "a second owner cannot acquire a held lock and sees it held by another",
      Effect.gen(function*() {
        const id = yield* uniqueId("held")
        const [a, b] = yield* handles(id, { lease: 5000 })
        expect(yield* a.acquire()).toBe(true)
        expect(yield* b.acquire()).toBe(false)
        expect(yield* b.status).toBe("FREE")
        const state = yield* b.state
        expect(state._tag).toBe("HeldByOther")
        if (state._tag === "HeldByOther") expect(Duration.toMillis(state.remaining)).toBeGreaterThan(4000)
        expect(yield* b.fence).toEqual(Option.none())
      })
    )

    test(
      "release by a non-owner returns false and leaves the lock held",
      Effect.gen(function*() {
        const id = yield* uniqueId("nonowner-release")
        const [a, b] = yield* handles(id)
        yield* a.acquire()
        const before = yield* readKey(lockKeys("effect-lock:", id).lock)
        expect(yield* b.release).toBe(false)
        expect(yield* b.acquire()).toBe(false)
        expect(yield* b.release).toBe(false)
        // A client that sends the release script with a token of its own (not the holder's).
        const redis = yield* Redis
        const keys = lockKeys("effect-lock:", id)
        expect(
          yield* redis.run(scripts.release.script, [keys.lock, keys.queue, keys.alive], [
            randomToken(),
            "1000",
            keys.channel
          ])
        ).toBe(false)
        const after = yield* readKey(lockKeys("effect-lock:", id).lock)
        expect(after.value).toBe(before.value)
        expect(yield* a.status).toBe("ACQUIRED")
      })
    )

    test(
      "extend by a non-owner returns false and leaves the lease unchanged",
      Effect.gen(function*() {
        const id = yield* uniqueId("nonowner-extend")
        const [a, b] = yield* handles(id, { lease: 5000 })
        yield* a.acquire()
        yield* b.acquire()
        expect(yield* b.extend(60_000)).toBe(false)
        const redis = yield* Redis
        const key = lockKeys("effect-lock:", id).lock
        expect(yield* redis.run(scripts.extend.script, [key], [randomToken(), "60000", "add"])).toBe(0)
        expect(yield* redis.run(scripts.extend.script, [key], [randomToken(), "60000", "set"])).toBe(0)
        const raw = yield* readKey(lockKeys("effect-lock:", id).lock)
        expect(raw.pttl).toBeLessThanOrEqual(5000)
        expect(yield* a.status).toBe("ACQUIRED")
      })
    )

    test(
      "release by the owner frees the key; a second release returns false",
      Effect.gen(function*() {
        const id = yield* uniqueId("release")
        const [a, b] = yield* handles(id)
        yield* a.acquire()
        expect(yield* a.release).toBe(true)
        expect((yield* readKey(lockKeys("effect-lock:", id).lock)).value).toBeNull()
        expect(yield* a.release).toBe(false)
        expect(yield* a.status).toBe("FREE")
        expect(yield* b.acquire()).toBe(true)
      })
    )

    test(
      "an unextended lease expires and another owner can then acquire",
      Effect.gen(function*() {
        const id = yield* uniqueId("expiry")
        const [a, b] = yield* handles(id, { lease: backend.short })
        yield* a.acquire()
        expect(yield* b.acquire()).toBe(false)
        yield* backend.elapse(backend.short + backend.margin + 1)
        expect(yield* a.status).toBe("FREE")
        expect((yield* b.state)._tag).toBe("Free")
        expect(yield* b.acquire()).toBe(true)
        expect(yield* a.release).toBe(false)
        expect(yield* b.status).toBe("ACQUIRED")
      })
    )

    test(
      "extend adds milliseconds to the remaining lease, also with under a second left",
      Effect.gen(function*() {
        const id = yield* uniqueId("extend")
        const [a] = yield* handles(id, { lease: 800 })
        yield* a.acquire()
        expect(yield* a.extend(1250)).toBe(true)
        const raw = yield* readKey(lockKeys("effect-lock:", id).lock)
        // 800 ms lease + 1250 ms: more than either alone, at most their sum.
        expect(raw.pttl).toBeGreaterThan(1250)
        expect(raw.pttl).toBeLessThanOrEqual(2050)
        expect(yield* a.extend("1 second")).toBe(true)
        expect((yield* readKey(lockKeys("effect-lock:", id).lock)).pttl).toBeGreaterThan(2050)
      })
    )

    test(
      "fencing tokens strictly increase across acquisitions, through release and expiry",
      Effect.gen(function*() {
        const id = yield* uniqueId("fence")
        const [a, b] = yield* handles(id, { lease: backend.short })
        yield* a.acquire()
        const f1 = Option.getOrThrow(yield* a.fence)
        yield* a.release
        yield* b.acquire()
        const f2 = Option.getOrThrow(yield* b.fence)
        yield* backend.elapse(backend.short + backend.margin + 1)
        yield* a.acquire()
        const f3 = Option.getOrThrow(yield* a.fence)
        expect(f2).toBeGreaterThan(f1)
        expect(f3).toBeGreaterThan(f2)
        const fenceKey = yield* readKey(lockKeys("effect-lock:", id).fence)
        // the counter lives a week after the last acquisition (gone, it starts again above: Fence.test.ts)
        expect(fenceKey.pttl).toBeGreaterThan(7 * 24 * 60 * 60 * 1000 - 60_000)
        expect(Number(fenceKey.value)).toBe(f3)
      })
    )

    test(
      "acquire on a handle that holds the lock renews it with the same fence and keeps the token",
      Effect.gen(function*() {
        const id = yield* uniqueId("reacquire")
        const [a, b] = yield* handles(id)
        yield* a.acquire()
        const fence = yield* a.fence
        const token = (yield* readKey(lockKeys("effect-lock:", id).lock)).value
        expect(yield* a.acquire()).toBe(true)
        expect(yield* a.fence).toEqual(fence)
        expect((yield* readKey(lockKeys("effect-lock:", id).lock)).value).toBe(token)
        expect(yield* b.acquire()).toBe(false)
        expect(yield* a.release).toBe(true)
      })
    )

    test(
      "keys are namespaced by prefix and kind, and ids with braces, spaces and Lua are safe",
      Effect.gen(function*() {
        const suffix = yield* uniqueId("")
        const id = `a}{b c';return 1--é${suffix}`
        const [a, b] = yield* handles(id, { prefix: "tenant-1:" })
        expect(yield* a.acquire()).toBe(true)
        expect((yield* readKey(`tenant-1:lock:{${id}}`)).value).toMatch(HEX_TOKEN)
        expect((yield* readKey(id)).value).toBeNull()
        expect((yield* readKey(`effect-lock:lock:{${id}}`)).value).toBeNull()
        expect(yield* b.acquire()).toBe(false)
        const other = yield* Lock.make({ id, retry: { attempts: 1 } }) // same id, default prefix: another lock
        expect(yield* other.acquire()).toBe(true)
      })
    )

    test(
      "a scoped lease is held inside its scope and released when the scope closes",
      Effect.gen(function*() {
        const id = yield* uniqueId("scoped")
        const probe = yield* Lock.make({ id, retry: { attempts: 1 } })
        const fence = yield* Effect.scoped(Effect.gen(function*() {
          const lease = yield* Lock.acquire({ id })
          expect((yield* probe.state)._tag).toBe("HeldByOther")
          return lease.fence
        }))
        expect(fence).toBeGreaterThan(0)
        expect((yield* probe.state)._tag).toBe("Free")
        const failed = yield* Effect.scoped(Effect.flatMap(Lock.acquire({ id }), () => Effect.fail("boom"))).pipe(
          Effect.flip
        )
        expect(failed).toBe("boom")
        expect((yield* probe.state)._tag).toBe("Free")
      })
    )

    test(
      "withLock lets one fiber at a time into the critical section",
      Effect.gen(function*() {
        const id = yield* uniqueId("mutex")
        const counter = yield* Ref.make(0)
        const inside = yield* Ref.make(0)
        const maxInside = yield* Ref.make(0)
        const fences: Array<number> = []
        const critical = (lease: Lock.Lease) =>
          Effect.gen(function*() {
            fences.push(lease.fence)
            const n = yield* Ref.updateAndGet(inside, (x) => x + 1)
            yield* Ref.update(maxInside, (m) => Math.max(m, n))
            const seen = yield* Ref.get(counter)
            yield* Effect.yieldNow()
            yield* Ref.set(counter, seen + 1) // a lost update if two ran at once
            yield* Ref.update(inside, (x) => x - 1)
          })
        const worker = Effect.scoped(
          Effect.flatMap(Lock.acquire({ id, retry: { attempts: 1000, delay: 1 } }), critical)
        )
        yield* backend.within(2000, Effect.all(Array.from({ length: 6 }, () => worker), { concurrency: "unbounded" }))
        expect(yield* Ref.get(counter)).toBe(6)
        expect(yield* Ref.get(maxInside)).toBe(1)
        expect(fences).toEqual([...fences].sort((x, y) => x - y))
        expect(new Set(fences).size).toBe(6)
      })
    )

    test(
      "withLockIfAvailable runs when free and returns none without waiting when held",
      Effect.gen(function*() {
        const id = yield* uniqueId("ifavailable")
        const [holder] = yield* handles(id)
        expect(yield* Effect.succeed(1).pipe(Lock.withLockIfAvailable({ id }))).toEqual(Option.some(1))
        yield* holder.acquire()
        expect(yield* Effect.succeed(2).pipe(Lock.withLockIfAvailable({ id }))).toEqual(Option.none())
      })
    )

    test(
      "waiters are served first come, first served; one that gives up leaves the line",
      Effect.gen(function*() {
        const id = yield* uniqueId("line")
        const keys = lockKeys("effect-lock:", id)
        const order: Array<string> = []
        const holder = yield* Lock.make({ id })
        yield* holder.acquire()
        const join = (name: string, options: Partial<Lock.AcquireOptions> = {}) =>
          Effect.gen(function*() {
            const before = (yield* readList(keys.queue)).length
            const fiber = yield* Effect.fork(
              Lock.withLock({ id, timeout: "30 seconds", ...options })(Effect.sync(() => void order.push(name)))
            )
            yield* eventually(readList(keys.queue), (line) => line.length > before)
            return fiber
          })
        const a = yield* join("a")
        const quitter = yield* join("quitter")
        const b = yield* join("b")
        yield* Fiber.interrupt(quitter)
        expect((yield* readList(keys.queue)).length).toBe(2)
        yield* holder.release
        yield* backend.within(2000, Effect.all([Fiber.join(a), Fiber.join(b)]))
        expect(order).toEqual(["a", "b"])
        expect(yield* readList(keys.queue)).toEqual([])
      })
    )

    test(
      "a waiter that died in line blocks the lock only until its reservation lapses",
      Effect.gen(function*() {
        const id = yield* uniqueId("dead")
        const keys = lockKeys("effect-lock:", id)
        const holder = yield* Lock.make({ id })
        yield* holder.acquire()
        // A waiter joins the line and dies: nobody will ever claim what is handed to it.
        yield* deadWaiter(keys)
        const live = yield* Effect.fork(Lock.withLock({ id, timeout: "30 seconds" })(Effect.succeed("live")))
        yield* eventually(readList(keys.queue), (line) => line.length === 2)
        yield* holder.release
        expect((yield* readKey(keys.lock)).value).toBe("~dead-waiter")
        expect(yield* backend.within(3000, Fiber.join(live))).toBe("live")
      })
    )

    backend.prop(
      "random acquire/extend/release sequences by several owners agree with a simple model",
      fc.array(modelOp(backend.exactTime), { maxLength: 25 }),
      (ops) => agreesWithModel(ops, backend.elapse),
      backend.exactTime ? 150 : 40
    )

    test(
      "inspect reports free, held and reserved locks with the time left and the fence counter",
      Effect.gen(function*() {
        const id = yield* uniqueId("inspect")
        const keys = lockKeys("effect-lock:", id)
        const redis = yield* Redis
        const look = scripts.inspect.run(redis, [keys.lock, keys.fence], {})
        expect(yield* look).toEqual({ holder: "none", remaining: 0, fence: 0 })
        const [a] = yield* handles(id, { lease: 5000 })
        expect(yield* a.acquire()).toBe(true)
        const held = yield* look
        expect(held.holder).toBe("owner")
        const fence = Option.getOrThrow(yield* a.fence)
        expect(held.fence).toBe(fence)
        expect(held.remaining).toBeGreaterThan(4000)
        expect(held.remaining).toBeLessThanOrEqual(5000)
        expect(yield* a.release).toBe(true)
        expect(yield* look).toEqual({ holder: "none", remaining: 0, fence })
        yield* writeKey(keys.lock, `~${randomToken()}`, 1000)
        const reserved = yield* look
        expect(reserved.holder).toBe("reserved")
        expect(reserved.fence).toBe(fence)
        expect(reserved.remaining).toBeGreaterThan(0)
      })
    )
  })

type ModelOp =
  | { readonly kind: "acquire" | "release" | "status"; readonly owner: number }
  | { readonly kind: "extend"; readonly owner: number; readonly ms: number }
  | { readonly kind: "elapse"; readonly ms: number }

const MODEL_LEASE = 1000

/** An operation of one of three owners; time passes only where it is exact (TestClock). */
const modelOp = (exactTime: boolean): fc.Arbitrary<ModelOp> =>
  fc.oneof(
    fc.record({ kind: fc.constant("acquire" as const), owner: fc.nat(2) }),
    fc.record({ kind: fc.constant("release" as const), owner: fc.nat(2) }),
    fc.record({ kind: fc.constant("extend" as const), owner: fc.nat(2), ms: fc.integer({ min: 1, max: 1500 }) }),
    fc.record({ kind: fc.constant("status" as const), owner: fc.nat(2) }),
    ...(exactTime
      ? [fc.record({ kind: fc.constant("elapse" as const), ms: fc.constantFrom(1, 250, 999, 1000, 1001, 1600) })]
      : [])
  )

/**
 * Runs `ops` by three owners of one lock (lease 1 s) and checks every answer against a model of who holds
 * it and until when.
 */
const agreesWithModel = (ops: ReadonlyArray<ModelOp>, elapse: Backend["elapse"]) =>
  Effect.gen(function*() {
    const id = yield* uniqueId("model")
    const owners = yield* Effect.all([0, 1, 2].map(() => Lock.make({ id, lease: MODEL_LEASE, retry: { attempts: 1 } })))
    let now = 0
    let holder: number | null = null
    let expiresAt = 0
    let lastFence = 0
    let heldFence = 0
    const expire = () => {
      if (holder !== null && now > expiresAt) holder = null
    }
    for (const o of ops) {
      expire()
      switch (o.kind) {
        case "acquire": {
          const expected = holder === null || holder === o.owner
          expect(yield* owners[o.owner]!.acquire()).toBe(expected)
          if (expected) {
            const fence = Option.getOrThrow(yield* owners[o.owner]!.fence)
            if (holder === null) {
              expect(fence).toBeGreaterThan(lastFence)
              lastFence = heldFence = fence
            } else expect(fence).toBe(heldFence)
            holder = o.owner
            expiresAt = now + MODEL_LEASE
          }
          break
        }
        case "release": {
          expect(yield* owners[o.owner]!.release).toBe(holder === o.owner)
          if (holder === o.owner) holder = null
          break
        }
        case "extend": {
          expect(yield* owners[o.owner]!.extend(o.ms)).toBe(holder === o.owner)
          if (holder === o.owner) expiresAt += o.ms
          break
        }
        case "status": {
          expect(yield* owners[o.owner]!.status).toBe(holder === o.owner ? "ACQUIRED" : "FREE")
          break
        }
        case "elapse": {
          yield* elapse(o.ms)
          now += o.ms
          break
        }
      }
    }
  })
