/**
 * Debounce under hostile input and hostile state: what could escape as a defect (URIError, RangeError,
 * SyntaxError) is a typed error, and every key Debounce leaves in Redis
 * carries a TTL. Memory under TestClock, and one real redis-server for the keys' TTLs.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, TestClock } from "effect"
import { Redis as IORedis } from "ioredis"
import * as Debounce from "../src/Debounce.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { writeKey } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

const withClient = <A, E>(body: (client: FaultyRedis.FaultyRedis) => Effect.Effect<A, E, any>) => {
  const client = FaultyRedis.make()
  return body(client).pipe(Effect.provide(client.layer.pipe(Layer.provide(Memory.layer))))
}

/** Fails the test with the defect if `exit` died, so a defect is never mistaken for a typed error. */
const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = Cause.failureOption(exit.cause)
  if (error._tag === "None") throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

describe("Debounce: input that is not well-formed is InvalidOptions, never a defect", () => {
  it.effect("a key with a lone surrogate is InvalidOptions, not a URIError defect, and nothing is sent", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const d = yield* Debounce.make({ id: "lone", key: (k: string) => k, callback: (_: string) => Effect.void })
        for (const key of ["owner-\uD800", "\uDFFF", "a\uDC00b"]) {
          const error = failure(yield* Effect.exit(d.call(key)))
          expect(error._tag).toBe("InvalidOptions")
          expect((error as { option: string }).option).toBe("key")
        }
        expect(client.calls).toEqual([])
      })
    ))

  it.effect("a well-formed key with astral characters still works", () =>
    Effect.gen(function*() {
      const d = yield* Debounce.make({
        id: "astral",
        wait: 10,
        key: (k: string) => k,
        callback: (k: string) => Effect.succeed(k)
      })
      const fiber = yield* Effect.fork(d.call("🔒 \uD83D\uDD12"))
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(fiber)).toEqual({ _tag: "Ran", edge: "trailing", result: "🔒 \uD83D\uDD12" })
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("an id or a prefix with a lone surrogate is InvalidOptions", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const byId = failure(yield* Effect.exit(Debounce.make({ id: "d-\uD800", callback: () => Effect.void })))
        expect([byId._tag, (byId as { option: string }).option]).toEqual(["InvalidOptions", "id"])
        const byPrefix = failure(
          yield* Effect.exit(Debounce.make({ id: "d", prefix: "app-\uDFFF:", callback: () => Effect.void }))
        )
        expect([byPrefix._tag, (byPrefix as { option: string }).option]).toEqual(["InvalidOptions", "prefix"])
        expect(client.calls).toEqual([])
      })
    ))

  it.effect("arguments nested 20,000 deep are InvalidOptions, not a RangeError defect, and nothing is sent", () =>
    withClient((client) =>
      Effect.gen(function*() {
        let deep: unknown = 0
        for (let i = 0; i < 20_000; i++) deep = [deep]
        let deepObject: unknown = 0
        for (let i = 0; i < 20_000; i++) deepObject = { next: deepObject }
        const d = yield* Debounce.make({ id: "deep", callback: (_: unknown) => Effect.void })
        for (const arg of [deep, deepObject]) {
          const error = failure(yield* Effect.exit(d.call(arg)))
          expect(error._tag).toBe("InvalidOptions")
          expect((error as { option: string }).option).toBe("arguments")
        }
        expect(client.calls).toEqual([])
      })
    ))

  it.effect("arguments nested a few levels deep still travel", () =>
    Effect.gen(function*() {
      let nested: unknown = "leaf"
      for (let i = 0; i < 50; i++) nested = { child: [nested] }
      const d = yield* Debounce.make({ id: "nested", wait: 10, callback: (x: unknown) => Effect.succeed(x) })
      const fiber = yield* Effect.fork(d.call(nested))
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(fiber)).toEqual({ _tag: "Ran", edge: "trailing", result: nested })
    }).pipe(Effect.provide(Memory.layer)))

  it.effect("arguments in Redis that are not JSON (a foreign write) are a RedisError, not a SyntaxError defect", () =>
    Effect.gen(function*() {
      let ran = false
      const d = yield* Debounce.make({
        id: "foreign",
        wait: 1000,
        callback: (_: string) => Effect.sync(() => void (ran = true))
      })
      const argsKey = "effect-lock:debounce:{foreign}::args"
      for (const stored of ["not json {", "{\"an\":\"object\"}"]) {
        const fiber = yield* Effect.fork(d.call("x"))
        yield* TestClock.adjust(500)
        yield* writeKey(argsKey, stored, 60_000)
        yield* TestClock.adjust(500)
        const error = failure(yield* Fiber.await(fiber))
        expect(error._tag).toBe("RedisError")
      }
      expect(ran).toBe(false)
    }).pipe(Effect.provide(Memory.layer)))
})

describe("Debounce state in Redis", () => {
  it.scopedLive(
    "every key a debounced run leaves behind carries a TTL (the run lock's fence included)",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.startFresh()
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => new IORedis(server.url)),
          (c) => Effect.promise(() => c.quit())
        )
        const backend = yield* Layer.build(IoRedis.layer({ url: server.url }))
        const d = yield* Debounce.make({
          id: "ttl",
          wait: 20,
          key: (k: string) => k,
          callback: (k: string) => Effect.succeed(k)
        })
          .pipe(Effect.provide(backend))
        for (const key of ["a", "b"]) {
          expect((yield* d.call(key).pipe(Effect.provide(backend)))._tag).toBe("Ran")
        }
        const leading = yield* Debounce.make({
          id: "ttl-leading",
          wait: 20,
          leading: true,
          callback: () => Effect.succeed(1)
        })
          .pipe(Effect.provide(backend))
        expect((yield* leading.call().pipe(Effect.provide(backend)))._tag).toBe("Ran")
        const keys = yield* Effect.promise(() => client.keys("*"))
        const immortal: Array<string> = []
        for (const key of keys) {
          if ((yield* Effect.promise(() => client.pttl(key))) === -1) immortal.push(JSON.stringify(key))
        }
        expect(immortal).toEqual([])
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )
})
