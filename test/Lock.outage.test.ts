/**
 * Timeouts on real redis-server processes through ioredis: an acquisition with a `timeout` returns by it
 * (plus a wide margin for this machine) whatever Redis does — paused behind the test proxy, or refusing
 * connections under the default `IoRedis.layer` — and an unanswered Redis is a `RedisError`, never
 * `LockNotAcquired` ("another copy is on it").
 */
import { NodeContext } from "@effect/platform-node"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Fiber, Layer, type Scope } from "effect"
import * as Lock from "../src/Lock.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import { eventually, raw, scriptCalls } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as Proxy from "./utils/Proxy.js"
import * as RedisServer from "./utils/RedisServer.js"

const live = (name: string, body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor>, timeout = 60_000) =>
  it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), timeout)

/** Margin over a timeout for this loaded 2-core machine. */
const MARGIN = 1500

/**
 * Runs `self` as a daemon (a call stuck in an uninterruptible try must not hang the test) and returns
 * how long it took and how it ended, or Infinity if it had not ended after `limit` ms.
 */
const timed = <A, E>(self: Effect.Effect<A, E>, limit = 10_000) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkDaemon(self)
    const done = yield* Fiber.await(fiber).pipe(Effect.timeout(limit), Effect.option)
    const elapsed = done._tag === "None" ? Infinity : (yield* Clock.currentTimeMillis) - start
    const result = done._tag === "None" ? undefined : yield* Effect.either(Fiber.join(fiber))
    return { elapsed, result }
  })

const tagOf = <A, E>(result: Either.Either<A, E> | undefined) =>
  result === undefined ? "still pending" : Either.isRight(result) ? "succeeded" : (result.left as { _tag: string })._tag

describe("timeouts hold against a real Redis that does not answer", () => {
  live(
    "Redis paused (frozen behind the proxy) before the first try: withLock({ timeout: 1 s }) returns by ~1 s with a RedisError",
    Effect.gen(function*() {
      const target = yield* RedisServer.startFresh()
      const proxy = yield* Proxy.start(target)
      const backend = yield* Layer.build(IoRedis.layer({ url: proxy.url }))
      const id = yield* uniqueId("paused")
      // The connection is up and the scripts are loaded; then Redis stops answering.
      yield* Lock.withLock({ id })(Effect.void).pipe(Effect.provide(backend))
      yield* proxy.freeze
      const { elapsed, result } = yield* timed(
        Lock.withLock({ id, timeout: "1 second" })(Effect.void).pipe(Effect.provide(backend))
      )
      yield* proxy.thaw
      expect(elapsed).toBeLessThanOrEqual(1000 + MARGIN)
      expect(tagOf(result)).toBe("RedisError")
    })
  )

  live(
    "Redis paused while a waiter waits for a busy lock: it returns by its timeout (1 s)",
    Effect.gen(function*() {
      const target = yield* RedisServer.startFresh()
      const proxy = yield* Proxy.start(target)
      const direct = yield* Layer.build(IoRedis.layer({ url: target.url }))
      const viaProxy = yield* Layer.build(IoRedis.layer({ url: proxy.url }))
      const id = yield* uniqueId("paused-waiting")
      const scripts = scriptCalls(yield* raw(target.url))
      const holder = yield* Lock.make({ id, lease: 60_000 }).pipe(Effect.provide(direct))
      expect(yield* holder.acquire().pipe(Effect.provide(direct))).toBe(true)
      const before = yield* scripts
      const start = yield* Clock.currentTimeMillis
      const waiter = yield* Effect.forkDaemon(
        Lock.withLock({ id, timeout: "1 second", retry: { attempts: 1000, delay: 50 } })(Effect.void).pipe(
          Effect.provide(viaProxy)
        )
      )
      // It is waiting: it has been told the lock is held, and tried again.
      yield* eventually(scripts, (n) => n >= before + 2, "10 seconds")
      yield* proxy.freeze
      const done = yield* Fiber.await(waiter).pipe(Effect.timeout(10_000), Effect.option)
      const elapsed = done._tag === "None" ? Infinity : (yield* Clock.currentTimeMillis) - start
      yield* proxy.thaw
      expect(elapsed).toBeLessThanOrEqual(1000 + MARGIN) // was 6 s
    })
  )

  live(
    "Redis refusing connections, default IoRedis.layer: withLock({ timeout: 2 s }) returns by ~2 s with a RedisError, not LockNotAcquired",
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const backend = yield* Layer.build(IoRedis.layer({ url: `redis://127.0.0.1:${port}` }))
      const id = yield* uniqueId("refused")
      const { elapsed, result } = yield* timed(
        Lock.withLock({ id, timeout: "2 seconds" })(Effect.void).pipe(Effect.provide(backend))
      )
      expect(tagOf(result)).toBe("RedisError") // was LockNotAcquired: "another copy is on it"
      expect(elapsed).toBeLessThanOrEqual(2000 + MARGIN) // was 10.6 s
    })
  )
})
