/**
 * The ReadWriteLock conformance suite: the same cases for every backend (./backends.ts), each with a
 * Redis provided.
 */
import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope } from "effect"
import { readWriteKeys } from "../../src/internal/keys.js"
import { inspect } from "../../src/internal/rwlock/rwlock.js"
import * as ReadWriteLock from "../../src/ReadWriteLock.js"
import { Redis } from "../../src/Redis.js"
import { eventually } from "../utils/live.js"
import { readKey, readList, readTtl, uniqueId } from "../utils/probe.js"
import { type Backend, expectFirstFence, FENCE_COUNTER_TTL } from "./backends.js"

export const readWriteLockConformance = (backend: Backend) =>
  describe(`ReadWriteLock conformance: ${backend.name}`, () => {
    /** One test, with one client provided; the body in a scope of its own, so holds are given back while the connection is open. */
    const test = (name: string, body: Effect.Effect<void, unknown, Redis | Scope.Scope>) =>
      backend.test(name, (client) => Effect.provide(Effect.scoped(body), client))
    const once = { retry: { attempts: 1 } } as const
    const look = (id: string) => Effect.flatMap(Redis, (redis) => inspect(redis, "effect-lock:", id))
    const until = (cond: Effect.Effect<boolean, unknown, Redis>) => eventually(cond, (holds) => holds)
    const waiting = (id: string, n: number) => until(Effect.map(look(id), (s) => s.waiting === n))
    const inScope = <A, E, R>(self: Effect.Effect<A, E, R | Scope.Scope>) =>
      Effect.flatMap(Scope.make(), (scope) => Effect.map(Scope.extend(self, scope), (a) => [a, scope] as const))

    test(
      "readers share; a writer excludes readers and writers; a read carries the last write's fence",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-share")
        const [w1, ws] = yield* inScope(ReadWriteLock.writeLock({ id, ...once }))
        // A fresh id's write fence counter starts at the server's clock in µs + 1 (docs/fences.md).
        expectFirstFence(backend, w1.fence)
        expect((yield* Effect.flip(ReadWriteLock.readLock({ id, ...once })))._tag).toBe("LockNotAcquired")
        expect((yield* Effect.flip(ReadWriteLock.writeLock({ id, ...once })))._tag).toBe("LockNotAcquired")
        yield* Scope.close(ws, Exit.void)
        const r1 = yield* ReadWriteLock.readLock({ id, ...once })
        const r2 = yield* ReadWriteLock.readLock({ id, ...once })
        expect([r1.fence, r2.fence]).toEqual([w1.fence, w1.fence])
        expect(yield* look(id)).toMatchObject({ writing: false, readers: 2, fence: w1.fence })
        const miss = yield* Effect.flip(ReadWriteLock.writeLock({ id, ...once }))
        expect(miss).toMatchObject({ _tag: "LockNotAcquired", id, reason: "held" })
      })
    )

    test(
      "a waiting writer holds back later readers, and the readers before it enter together",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-fair")
        const order = yield* Ref.make<ReadonlyArray<string>>([])
        const log = (name: string) => Ref.update(order, (o) => [...o, name])
        const [, first] = yield* inScope(ReadWriteLock.readLock({ id, ...once }))
        const writer = yield* Effect.fork(
          ReadWriteLock.withWriteLock({ id, timeout: 20_000 })(log("w").pipe(Effect.zipRight(log("w-end"))))
        )
        yield* waiting(id, 1)
        // A reader arriving after the writer waits, though only readers hold.
        const late = yield* Effect.fork(ReadWriteLock.withReadLock({ id, timeout: 20_000 })(log("r-late")))
        yield* waiting(id, 2)
        expect(yield* ReadWriteLock.withReadLock({ id, ...once })(Effect.void).pipe(Effect.flip)).toMatchObject({
          _tag: "LockNotAcquired"
        })
        expect(yield* Ref.get(order)).toEqual([])
        yield* Scope.close(first, Exit.void)
        yield* backend.within(2000, Fiber.join(writer))
        yield* backend.within(2000, Fiber.join(late))
        expect(yield* Ref.get(order)).toEqual(["w", "w-end", "r-late"])
      })
    )

    test(
      "readers queued behind a writer are all let in when it releases",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-batch")
        const [, ws] = yield* inScope(ReadWriteLock.writeLock({ id, ...once }))
        const inside = yield* Ref.make(0)
        const most = yield* Ref.make(0)
        const gate = yield* Ref.make(false)
        const reader = ReadWriteLock.withReadLock({ id, timeout: 20_000 })(
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(inside, (n) => n + 1)
            yield* Ref.update(most, (m) => Math.max(m, n))
            yield* until(Ref.get(gate))
            yield* Ref.update(inside, (n) => n - 1)
          })
        )
        const readers = yield* Effect.fork(Effect.all([reader, reader, reader], { concurrency: "unbounded" }))
        yield* waiting(id, 3)
        yield* Scope.close(ws, Exit.void)
        yield* until(Effect.map(Ref.get(inside), (n) => n === 3))
        yield* Ref.set(gate, true)
        yield* backend.within(2000, Fiber.join(readers))
        expect(yield* Ref.get(most)).toBe(3)
      })
    )

    test(
      "write fences strictly increase; downgrade keeps the fence, lets readers in and keeps writers out",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-downgrade")
        const a = yield* Effect.scoped(ReadWriteLock.writeLock({ id, ...once }))
        const [w, ws] = yield* inScope(ReadWriteLock.writeLock({ id, ...once }))
        expect(w.fence).toBeGreaterThan(a.fence)
        const reader = yield* Effect.fork(ReadWriteLock.withReadLock({ id, timeout: 20_000 })(Effect.succeed("read")))
        yield* waiting(id, 1)
        const r = yield* w.downgrade
        expect(r.fence).toBe(w.fence)
        expect(yield* w.downgrade).toBe(r)
        expect(yield* backend.within(2000, Fiber.join(reader))).toBe("read")
        expect(yield* look(id)).toMatchObject({ writing: false, readers: 1 })
        expect((yield* Effect.flip(ReadWriteLock.writeLock({ id, ...once })))._tag).toBe("LockNotAcquired")
        const extra = yield* Effect.scoped(ReadWriteLock.readLock({ id, ...once }))
        expect(extra.fence).toBe(w.fence)
        yield* Scope.close(ws, Exit.void)
        expect(yield* look(id)).toMatchObject({ writing: false, readers: 0 })
        const next = yield* Effect.scoped(ReadWriteLock.writeLock({ id, ...once }))
        expect(next.fence).toBe(w.fence + 1)
      })
    )

    test(
      "a reader that stops extending lapses alone when its lease ends; the others keep reading",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-expire")
        yield* ReadWriteLock.readLock({ id, ...once, lease: backend.short, keepAlive: false })
        const kept = yield* ReadWriteLock.readLock({ id, ...once, lease: 60_000 })
        yield* backend.elapse(backend.short + backend.margin + 1)
        expect(yield* look(id)).toMatchObject({ readers: 1 })
        expect(yield* kept.isLost).toBe(false)
        const write = yield* Effect.flip(ReadWriteLock.writeLock({ id, ...once }))
        expect(write._tag).toBe("LockNotAcquired")
      })
    )

    test(
      "a writer that stops extending lapses when its lease ends, and its lease reports the loss",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-writer-expire")
        const w = yield* ReadWriteLock.writeLock({ id, ...once, lease: backend.short, keepAlive: false })
        yield* backend.elapse(backend.short + backend.margin + 1)
        expect(yield* w.isLost).toBe(true)
        expect((yield* Effect.flip(w.downgrade))._tag).toBe("LockLost")
        const r = yield* ReadWriteLock.readLock({ id, ...once })
        expect(r.fence).toBe(w.fence)
      })
    )

    test(
      "an interrupted waiting writer leaves the line and lets the readers behind it in",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-interrupt")
        yield* ReadWriteLock.readLock({ id, ...once })
        const writer = yield* Effect.fork(ReadWriteLock.withWriteLock({ id, timeout: 60_000 })(Effect.void))
        yield* waiting(id, 1)
        const reader = yield* Effect.fork(ReadWriteLock.withReadLock({ id, timeout: 60_000 })(Effect.succeed("in")))
        yield* waiting(id, 2)
        yield* Fiber.interrupt(writer)
        expect(yield* backend.within(2000, Fiber.join(reader))).toBe("in")
        expect(yield* readList(readWriteKeys("effect-lock:", id).queue)).toEqual([])
      })
    )

    test(
      "withWriteLock runs the body alone; bad options are InvalidOptions with nothing sent",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-bad")
        expect(yield* ReadWriteLock.withWriteLock({ id })(Effect.succeed(1))).toBe(1)
        for (
          const bad of [{ id: "" }, { id, lease: 0 }, { id, timeout: -1 }, { id, fair: "yes" as unknown as boolean }]
        ) {
          expect((yield* Effect.flip(ReadWriteLock.withReadLock(bad)(Effect.void)))._tag).toBe("InvalidOptions")
          expect((yield* Effect.flip(Effect.scoped(ReadWriteLock.writeLock(bad))))._tag).toBe("InvalidOptions")
        }
        const keys = readWriteKeys("effect-lock:", "")
        for (const key of [keys.writer, keys.readers, keys.queue]) expect(yield* readTtl(key)).toBe(-2)
      })
    )

    test(
      "every key has a TTL (the fence counter a week after the last write), and every key of an id shares its hash tag",
      Effect.gen(function*() {
        const id = yield* uniqueId("rw-ttl")
        const written = yield* Effect.scoped(ReadWriteLock.writeLock({ id, ...once }))
        yield* ReadWriteLock.readLock({ id, ...once })
        const writer = yield* Effect.fork(ReadWriteLock.withWriteLock({ id, timeout: 60_000 })(Effect.void))
        yield* waiting(id, 1)
        const keys = readWriteKeys("effect-lock:", id)
        for (const key of [keys.readers, keys.fences, keys.queue, keys.alive, keys.modes]) {
          expect(yield* readTtl(key)).toBeGreaterThan(0)
        }
        // Gone, the counter starts again above every fence it gave (docs/fences.md).
        const counter = yield* readKey(keys.fence)
        expect(counter.value).toBe(String(written.fence))
        expect(counter.pttl).toBeGreaterThan(FENCE_COUNTER_TTL)
        for (const key of Object.values(keys)) expect(yield* readTtl(key)).not.toBe(-1)
        yield* Fiber.interrupt(writer)
        for (const key of Object.values(keys)) expect(key.startsWith(`effect-lock:rwlock:{${id}}`)).toBe(true)
      })
    )
  })
