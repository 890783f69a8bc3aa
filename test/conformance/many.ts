/**
 * The conformance suite of `Lock.acquireAll` / `Lock.withLocks`: the same cases for every backend
 * (./backends.ts), each with a Redis provided.
 */
import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope } from "effect"
import { lockKeys } from "../../src/internal/keys.js"
import * as Lock from "../../src/Lock.js"
import type { Redis } from "../../src/Redis.js"
import { eventually } from "../utils/live.js"
import { readKey, readList, uniqueId } from "../utils/probe.js"
import { type Backend, expectFirstFence, FENCE_COUNTER_TTL } from "./backends.js"

export const manyConformance = (backend: Backend) =>
  describe(`Lock.acquireAll conformance: ${backend.name}`, () => {
    const test = (name: string, body: Effect.Effect<void, unknown, Redis | Scope.Scope>) =>
      backend.test(name, (client) => Effect.provide(Effect.scoped(body), client))
    const once = { retry: { attempts: 1 } } as const
    const holder = (id: string) => Effect.map(readKey(lockKeys("effect-lock:", id).lock), (k) => k.value)
    const inLine = (id: string, n: number) =>
      eventually(readList(lockKeys("effect-lock:", id).queue), (line) => line.length === n)
    /** Each id's own fence counter holds the fence it gave last, and lives a week after it. */
    const counters = (of: ReadonlyArray<string>, fences: ReadonlyArray<number>) =>
      Effect.forEach(of, (id, i) =>
        Effect.map(readKey(lockKeys("effect-lock:", id).fence), (counter) => {
          expect(counter.value).toBe(String(fences[i]))
          expect(counter.pttl).toBeGreaterThan(FENCE_COUNTER_TTL)
        }), { discard: true })
    /** An id of a tag of its own: on a cluster, ids of different tags land (mostly) in different slots. */
    const ids = (label: string, n: number) =>
      Effect.map(uniqueId(label), (base) => Array.from({ length: n }, (_, i) => `${base}-${i}`))

    test(
      "takes every id, each with its own fence, in the order given; releases them all with the scope",
      Effect.gen(function*() {
        const [a, b, c] = yield* ids("all", 3)
        const first = yield* Effect.scoped(Lock.acquire({ id: b!, ...once }))
        const scope = yield* Scope.make()
        const leases = yield* Scope.extend(Lock.acquireAll({ ids: [c!, a!, b!], ...once }), scope)
        expect(leases.map((l) => l.id)).toEqual([c, a, b])
        // c and a are fresh: each counter starts at the server's clock in µs + 1 (docs/fences.md); b counts on.
        const [fenceC, fenceA, fenceB] = leases.map((l) => l.fence)
        expectFirstFence(backend, fenceC!)
        expectFirstFence(backend, fenceA!)
        expect(fenceB).toBe(first.fence + 1)
        yield* counters([c!, a!, b!], [fenceC!, fenceA!, fenceB!])
        for (const id of [a!, b!, c!]) expect(yield* holder(id)).not.toBeNull()
        yield* Scope.close(scope, Exit.void)
        for (const id of [a!, b!, c!]) expect(yield* holder(id)).toBeNull()
      })
    )

    test(
      "all or none: one id held elsewhere, nothing is taken and nothing is left held",
      Effect.gen(function*() {
        const [a, b, c] = yield* ids("none", 3)
        yield* Lock.acquire({ id: b!, ...once })
        const error = yield* Effect.flip(Lock.acquireAll({ ids: [a!, b!, c!], timeout: 300 }))
        expect(error._tag).toBe("LockNotAcquired")
        expect(yield* holder(a!)).toBeNull()
        expect(yield* holder(c!)).toBeNull()
        // Leaving the lines is sent at the deadline (and retried in the background until answered).
        for (const id of [a!, c!]) yield* inLine(id, 0)
      }).pipe((self) => backend.within(1000, self))
    )

    test(
      "a waiter for several ids is served in line once the holder releases",
      Effect.gen(function*() {
        const [a, b] = yield* ids("wait", 2)
        const scope = yield* Scope.make()
        yield* Scope.extend(Lock.acquire({ id: a!, ...once }), scope)
        const waiter = yield* Effect.fork(Lock.withLocks({ ids: [a!, b!], timeout: 20_000 })(Effect.succeed("both")))
        yield* inLine(a!, 1)
        yield* Scope.close(scope, Exit.void)
        expect(yield* backend.within(2000, Fiber.join(waiter))).toBe("both")
        expect(yield* holder(a!)).toBeNull()
        expect(yield* holder(b!)).toBeNull()
      })
    )

    test(
      "overlapping sets asked for in opposite orders never deadlock",
      Effect.gen(function*() {
        const [a, b, c] = yield* ids("cross", 3)
        const count = yield* Ref.make(0)
        const body = Ref.update(count, (n) => n + 1)
        const orders = [[a!, b!], [b!, a!], [c!, b!, a!], [a!, c!]]
        yield* backend.within(
          5000,
          Effect.all(
            orders.map((order) =>
              Effect.repeatN(Lock.withLocks({ ids: order, timeout: 20_000 })(body), backend.exactTime ? 10 : 5)
            ),
            { concurrency: "unbounded" }
          )
        )
        expect(yield* Ref.get(count)).toBe(orders.length * (backend.exactTime ? 11 : 6))
      })
    )

    test(
      "ids with a common {tag} (one slot even on a cluster) and ids of other slots are taken together",
      Effect.gen(function*() {
        const [tag, other] = yield* ids("tag", 2)
        const tagged = [`{${tag}}:stock`, `{${tag}}:invoice`, other!]
        const leases = yield* Lock.acquireAll({ ids: tagged, ...once })
        for (const lease of leases) expectFirstFence(backend, lease.fence)
        yield* counters(tagged, leases.map((l) => l.fence))
        const error = yield* Effect.flip(Lock.acquireAll({ ids: [tagged[1]!], ...once }))
        expect(error._tag).toBe("LockNotAcquired")
      })
    )

    test(
      "loss of any one id interrupts the body with LockLost",
      Effect.gen(function*() {
        const [a, b] = yield* ids("lost", 2)
        const error = yield* Lock.withLocks({ ids: [a!, b!], lease: backend.short, keepAlive: false, ...once })(
          Effect.never
        ).pipe(Effect.flip, (self) => backend.within(backend.short * 4, self))
        expect(error._tag).toBe("LockLost")
      })
    )

    test(
      "bad ids (none, duplicates, more than 1,000, not text) are InvalidOptions with nothing sent",
      Effect.gen(function*() {
        const [a] = yield* ids("bad", 1)
        const many = Array.from({ length: 1001 }, (_, i) => `${a}-${i}`)
        for (const bad of [[], [a!, a!], many, [a!, ""], "a"] as ReadonlyArray<unknown>) {
          const error = yield* Effect.flip(Lock.withLocks({ ids: bad as ReadonlyArray<string> })(Effect.void))
          expect(error._tag).toBe("InvalidOptions")
        }
        expect((yield* Effect.flip(Lock.withLocks({ ids: [a!], lease: 0 })(Effect.void)))._tag).toBe("InvalidOptions")
        expect(yield* holder(a!)).toBeNull()
        expect(yield* holder(`${a}-0`)).toBeNull()
      })
    )
  })
