/**
 * Reliability against real redis-server processes: mutual exclusion across OS processes, and what
 * users are promised under faults — a killed holder, a stopped worker, a Redis restart, a network
 * stall, a slow Redis. Waits are for conditions (polling Redis), never for time to "settle".
 */
import { NodeContext } from "@effect/platform-node"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import * as Lock from "../src/Lock.js"
import type { LockLost } from "../src/LockError.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Checker from "./safety/checker.js"
import { eventually, raw } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as Proxy from "./utils/Proxy.js"
import * as RedisServer from "./utils/RedisServer.js"

const keyOf = (id: string) => `effect-lock:lock:{${id}}`

/** A test against real processes: live clock, and a CommandExecutor to start them. */
const live = (name: string, body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor>, timeout = 60_000) =>
  it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), timeout)

/** Fails fast while Redis is away instead of queueing commands (what an app wants from a lock). */
const failFast = { maxRetriesPerRequest: 1, retryStrategy: () => 50, connectTimeout: 1000 } as const

const server = (args: ReadonlyArray<string> = []) => RedisServer.startFresh({ args })

/** Spawns a worker that takes the lock and holds it; resolves with the process once it holds it. */
const holder = (url: string, id: string, lease: number) =>
  Effect.gen(function*() {
    const proc = yield* Checker.spawnWorker(["hold", url, id, String(lease)])
    const fence = yield* Checker.lines(proc.stdout).pipe(
      Stream.filter((line) => line.startsWith("{")),
      Stream.map((line) => (JSON.parse(line) as { acquired: number }).acquired),
      Stream.runHead,
      Effect.flatten
    )
    return { proc, fence }
  })

describe("reliability on real redis-server processes", () => {
  live(
    "mutual exclusion across OS processes: no lost update, no overlap, fences increase",
    Effect.gen(function*() {
      const { url } = yield* server()
      const report = yield* Checker.run({ redisUrl: url, processes: 3, sections: 15 })
      expect(report.exitCodes).toEqual([0, 0, 0])
      expect(report.sections.length).toBe(45)
      expect(report.counter).toBe(45)
      expect(report.overlaps).toEqual([])
      expect(report.fenceInversions).toEqual([])
    }),
    120_000
  )

  live(
    "a holder killed with SIGKILL: nothing extends its lease, and another owner acquires after it",
    Effect.gen(function*() {
      const { url } = yield* server()
      const client = yield* raw(url)
      const id = yield* uniqueId("killed")
      const lease = 1500
      const { fence, proc } = yield* holder(url, id, lease)
      yield* proc.kill("SIGKILL")
      // Sample the lease as Redis sees it: it only ever goes down until the key expires.
      const samples: Array<number> = []
      yield* eventually(
        Effect.tap(Effect.promise(() => client.pttl(keyOf(id))), (pttl) => Effect.sync(() => samples.push(pttl))),
        (pttl) => pttl < 0
      )
      expect(samples[0]!).toBeLessThanOrEqual(lease)
      for (let i = 1; i < samples.length; i++) {
        if (samples[i]! >= 0) expect(samples[i]!).toBeLessThanOrEqual(samples[i - 1]!)
      }
      const next = yield* Effect.scoped(Lock.acquire({ id, timeout: "10 seconds" })).pipe(
        Effect.provide(IoRedis.layer({ url }))
      )
      expect(next.fence).toBeGreaterThan(fence)
    })
  )

  live(
    "a holder stopped with SIGTERM releases its lock on the way out, long before its lease ends",
    Effect.gen(function*() {
      const { url } = yield* server()
      const client = yield* raw(url)
      const id = yield* uniqueId("sigterm")
      const { proc } = yield* holder(url, id, 60_000)
      expect(yield* Effect.promise(() => client.pttl(keyOf(id)))).toBeGreaterThan(50_000)
      yield* proc.kill("SIGTERM")
      yield* proc.exitCode.pipe(Effect.ignore)
      // Released by the worker's finalizer, not expired: the lease had a minute to go.
      expect(yield* Effect.promise(() => client.exists(keyOf(id)))).toBe(0)
    })
  )

  live(
    "interrupting the holding fiber releases the lock before the interruption completes",
    Effect.gen(function*() {
      const { url } = yield* server()
      const client = yield* raw(url)
      const id = yield* uniqueId("interrupt")
      const held = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Lock.withLock({ id, lease: 60_000 })(Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)).pipe(
          Effect.provide(IoRedis.layer({ url }))
        )
      )
      yield* Deferred.await(held)
      expect(yield* Effect.promise(() => client.exists(keyOf(id)))).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => client.exists(keyOf(id)))).toBe(0)
    })
  )

  live(
    "Redis restarted: typed errors, guarded work interrupted with LockLost before its lease ends, recovery without restarting the app",
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const url = `redis://127.0.0.1:${port}`
      const first = yield* Scope.make()
      yield* Scope.extend(RedisServer.start({ port }), first)
      const backend = yield* Layer.build(IoRedis.layer({ url, client: failFast }))
      const provide = Effect.provide(backend)
      const id = yield* uniqueId("restart")
      const lease = 2000

      const acquired = yield* Deferred.make<{ readonly validUntil: number; readonly fence: number }>()
      const work = Effect.scoped(Effect.gen(function*() {
        const held = yield* Lock.acquire({ id, lease })
        yield* Deferred.succeed(acquired, { validUntil: yield* held.validUntil, fence: held.fence })
        return yield* Effect.raceFirst(Effect.never, held.lost)
      })).pipe(provide)
      const guarded = yield* Effect.fork(Effect.timed(work))
      const { validUntil } = yield* Deferred.await(acquired)
      const waiter = yield* Effect.fork(Effect.scoped(Lock.acquire({ id, timeout: "30 seconds" })).pipe(provide))

      yield* Scope.close(first, Exit.void) // Redis goes away with the lock in it

      const lost = yield* Fiber.join(guarded).pipe(Effect.flip)
      const lostAt = yield* Clock.currentTimeMillis
      expect(lost._tag).toBe("LockLost")
      expect((lost as LockLost).reason).toBe("unconfirmed")
      expect(lostAt).toBeGreaterThanOrEqual(validUntil) // at the local deadline (lease − drift), not before
      expect(lostAt).toBeLessThan(validUntil + lease) // and not waiting for a Redis that is not there
      const waited = yield* Fiber.join(waiter).pipe(Effect.flip)
      expect(waited._tag).toBe("RedisError")

      // Redis comes back (empty: it keeps nothing on disk); the same layer recovers.
      yield* RedisServer.start({ port })
      const again = yield* eventually(
        Effect.scoped(Effect.map(Lock.acquire({ id, retry: { attempts: 1 } }), (l) => l.fence)).pipe(provide),
        (fence) => fence > 0
      )
      // a fresh Redis lost the counter: it starts again at Redis TIME in µs, above the fence before
      expect(again).toBeGreaterThan((yield* Deferred.await(acquired)).fence)
    })
  )

  live(
    "network stall longer than the lease: the holder is interrupted at its local deadline, a new owner gets a higher fence",
    Effect.gen(function*() {
      const target = yield* server()
      const proxy = yield* Proxy.start(target)
      const client = yield* raw(target.url)
      const id = yield* uniqueId("stall")
      const lease = 1500

      // The stale holder's connection outlives its lease, so its held-back commands arrive after thaw.
      const staleConnection = yield* Layer.build(IoRedis.layer({ url: proxy.url }))
      const acquired = yield* Deferred.make<{ readonly validUntil: number; readonly fence: number }>()
      const stale = yield* Effect.fork(
        Effect.scoped(Effect.gen(function*() {
          const held = yield* Lock.acquire({ id, lease })
          yield* Deferred.succeed(acquired, { validUntil: yield* held.validUntil, fence: held.fence })
          return yield* Effect.raceFirst(Effect.never, held.lost)
        })).pipe(Effect.provide(staleConnection))
      )
      const held = yield* Deferred.await(acquired)
      yield* proxy.freeze // the stale holder can no longer reach Redis; nothing is lost, only held back

      const lost = (yield* Fiber.join(stale).pipe(Effect.flip)) as LockLost
      const lostAt = yield* Clock.currentTimeMillis
      expect(lost.reason).toBe("unconfirmed")
      expect(lostAt).toBeGreaterThanOrEqual(held.validUntil)

      // A process with a healthy connection acquires once Redis has expired the stale lease.
      const fresh = yield* Effect.gen(function*() {
        const held = yield* Lock.acquire({ id, lease: 10_000, timeout: "10 seconds" })
        return { fence: held.fence, at: yield* Clock.currentTimeMillis }
      }).pipe(Effect.provide(IoRedis.layer({ url: target.url })))
      expect(fresh.at).toBeGreaterThan(held.validUntil)
      expect(fresh.fence).toBeGreaterThan(held.fence)

      const token = yield* Effect.promise(() => client.get(keyOf(id)))
      const commands = () =>
        client.info("commandstats").then((text) => Number(/cmdstat_evalsha:calls=(\d+)/.exec(text)?.[1] ?? 0))
      const before = yield* Effect.promise(commands)
      yield* proxy.thaw // the stale holder's held-back extension and release now reach Redis…
      yield* eventually(Effect.promise(commands), (n) => n >= before + 2)
      expect(yield* Effect.promise(() => client.get(keyOf(id)))).toBe(token) // …and change nothing
      expect(yield* Effect.promise(() => client.pttl(keyOf(id)))).toBeGreaterThan(5000)
    })
  )

  live(
    "slow Redis (100 ms each way): leases are still kept alive, and a timeout is a typed error that leaves nothing held",
    Effect.gen(function*() {
      const target = yield* server()
      const proxy = yield* Proxy.start(target)
      const client = yield* raw(target.url)
      yield* proxy.setLatency(100)
      const slow = Effect.provide(IoRedis.layer({ url: proxy.url }))
      const id = yield* uniqueId("slow")

      // Work of 2 leases, with every round trip 200 ms (400 ms when a script is new to the server):
      // keep-alive still holds the lease. (The first extension is confirmed ~1 s before the deadline.)
      const result = yield* Lock.withLock({ id, lease: 3000 })(Effect.as(Effect.sleep("6 seconds"), "done")).pipe(slow)
      expect(result).toBe("done")

      // No answer within the timeout is a Redis fault, not contention; the try that Redis applied after
      // the caller gave up is undone by the owner-checked leave sent right behind it.
      const started = Date.now()
      const error = yield* Effect.scoped(Lock.acquire({ id, timeout: "50 millis" })).pipe(slow, Effect.flip)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(error._tag).toBe("RedisError")
      expect(error.message).toContain("no answer before the deadline")
      yield* eventually(Effect.promise(() => client.exists(keyOf(id))), (n) => n === 0)
    })
  )
})
