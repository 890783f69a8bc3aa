/**
 * Hostile input at every public entry point, on a private redis-server: each bad value is a typed
 * InvalidOptions that sends nothing to Redis (INFO commandstats proves it), each odd-but-valid value
 * works, and no key outside the library's namespace is ever written. Then security: tokens, secrets.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option, Redacted, Tracer } from "effect"
import { Redis as IORedis } from "ioredis"
import * as Debounce from "../src/Debounce.js"
import { randomToken } from "../src/internal/token.js"
import * as Lock from "../src/Lock.js"
import type { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Upstash from "../src/Redis/Upstash.js"
import * as RedisServer from "./utils/RedisServer.js"

const MB = "x".repeat(1 << 20)
const cb = () => Effect.void

/** Every call here must fail with InvalidOptions. */
const rejected: ReadonlyArray<readonly [string, () => Effect.Effect<unknown, unknown, any>]> = [
  ...[
    ["empty", ""],
    ["1 MB", MB],
    ["a number", 42],
    ["null", null],
    ["undefined", undefined],
    ["an object", {}],
    // a control character would reach key names, spans and logs raw
    ["a newline in the", "line\nbreak"],
    ["a tab in the", "tab\there"],
    ["an escape in the", "\u001b[2J"]
  ]
    .flatMap(
      ([what, id]) =>
        [
          [`Lock.make: ${what} id`, () => Lock.make({ id } as any)],
          [`Lock.acquire: ${what} id`, () => Effect.scoped(Lock.acquire({ id } as any))],
          [`Lock.withLock: ${what} id`, () => Lock.withLock(Effect.void, { id } as any)],
          [`Lock.withLockIfAvailable: ${what} id`, () => Lock.withLockIfAvailable(Effect.void, { id } as any)],
          [`Debounce.make: ${what} id`, () => Debounce.make({ id, callback: cb } as any)]
        ] as const
    ),
  ...[0, -1, NaN, Infinity, 1.5, 2 ** 53, "soon", "-5 seconds"].flatMap((lease) =>
    [
      [`Lock.make: lease ${String(lease)}`, () => Lock.make({ id: "a", lease } as any)],
      [`Lock.acquire: lease ${String(lease)}`, () => Effect.scoped(Lock.acquire({ id: "a", lease } as any))],
      [`handle.acquire: lease ${String(lease)}`, () =>
        Effect.flatMap(Lock.make({ id: "a" }), (l) => l.acquire({ lease } as any))]
    ] as const
  ),
  ...[-1, 0, NaN, 1.5].flatMap((attempts) =>
    [
      [`Lock.make: retry.attempts ${attempts}`, () => Lock.make({ id: "a", retry: { attempts } })],
      [`Lock.acquire: retry.attempts ${attempts}`, () => Effect.scoped(Lock.acquire({ id: "a", retry: { attempts } }))]
    ] as const
  ),
  ...[0, -5, NaN, 1.5].flatMap((ms) =>
    [
      [`handle.extend(${ms})`, () => Effect.flatMap(Lock.make({ id: "a" }), (l) => l.extend(ms))]
    ] as const
  ),
  [`Lock.acquire: timeout -1`, () => Effect.scoped(Lock.acquire({ id: "a", timeout: -1 }))],
  ...[0, -1, NaN].map((wait) =>
    [`Debounce.make: wait ${wait}`, () => Debounce.make({ id: "d", wait, callback: cb })] as const
  ),
  [`Debounce.make: maxWait < wait`, () => Debounce.make({ id: "d", wait: 1000, maxWait: 999, callback: cb })],
  ...[10n, () => 1, NaN, undefined, new Date(0), new Map(), Symbol("s")].map((arg) =>
    [
      `debounce.call(${typeof arg})`,
      () => Effect.flatMap(Debounce.make({ id: "d", callback: (_: unknown) => Effect.void }), (d) => d.call(arg))
    ] as const
  )
]

/** Odd but valid ids: each must lock, report and release correctly, and stay inside the namespace. */
const oddIds = [
  "{",
  "}",
  "{}",
  "a}{b",
  "with space",
  "ünïcødé 🔒",
  "'); redis.call('FLUSHALL') --",
  "]]..redis.call('FLUSHALL')..[[",
  "*",
  "?",
  "x".repeat(1024)
]

const calls = (stats: string) =>
  stats
    .split("\n")
    .filter((line) => line.startsWith("cmdstat_") && !line.startsWith("cmdstat_info"))
    .reduce((sum, line) => sum + Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), 0)

describe("hostile input, on a private redis-server", () => {
  it.scopedLive(
    "every bad value is InvalidOptions and reaches Redis with nothing; odd ids work; nothing lands outside the namespace",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.startFresh()
        const client = yield* Effect.acquireRelease(Effect.sync(() => new IORedis(server.url)), (c) =>
          Effect.promise(() => c.quit()))
        const context = yield* Layer.build(IoRedis.layer({ url: server.url }))
        const backend = Effect.provide(context)
        yield* Effect.promise(() =>
          client.config("RESETSTAT")
        )
        const before = calls(yield* Effect.promise(() => client.info("commandstats")))

        for (const [name, run] of rejected) {
          const error = yield* run().pipe(backend, Effect.flip, Effect.orElseSucceed(() => ({ _tag: "succeeded" })))
          expect([name, (error as { _tag: string })._tag]).toEqual([name, "InvalidOptions"])
          expect((error as { message: string }).message.length).toBeLessThan(300) // a clear message, not a 1 MB echo
        }
        expect(calls(yield* Effect.promise(() => client.info("commandstats")))).toBe(before)

        for (const id of oddIds) {
          const [mine, theirs] = yield* Effect.all([Lock.make({ id }), Lock.make({ id, retry: { attempts: 1 } })]).pipe(
            backend
          )
          expect(yield* mine.acquire().pipe(backend)).toBe(true)
          expect(yield* theirs.acquire().pipe(backend)).toBe(false)
          expect(yield* mine.status.pipe(backend)).toBe("ACQUIRED")
          expect(Option.isNone(yield* Lock.withLockIfAvailable(Effect.succeed(1), { id }).pipe(backend))).toBe(true)
          expect(yield* mine.release.pipe(backend)).toBe(true)
          if (id.length > 512) continue // Debounce ids stop at 512 characters (its run lock adds the key)
          const d = yield* Debounce.make({ id, wait: 10, callback: (x: string) => Effect.succeed(x) }).pipe(backend)
          expect(yield* d.call(id).pipe(backend)).toEqual({ _tag: "Ran", edge: "trailing", result: id })
        }
        expect(yield* Effect.promise(() => client.dbsize())).toBeGreaterThan(0) // the FLUSHALL-looking ids flushed nothing
        const keys = yield* Effect.promise(() => client.keys("*"))
        expect(keys.filter((key) => !key.startsWith("effect-lock:"))).toEqual([])
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )
})

describe("security", () => {
  it("owner tokens are 128 bits from crypto: 32 hex digits, all distinct", () => {
    const tokens = Array.from({ length: 10_000 }, randomToken)
    for (const token of tokens) expect(token).toMatch(/^[0-9a-f]{32}$/)
    expect(new Set(tokens).size).toBe(tokens.length)
  })

  it.live("secrets never show in a layer's or an error's toString / JSON, nor in spans or logs", () =>
    Effect.gen(function*() {
      const secret = "s3cr3t-passw0rd"
      const port = yield* RedisServer.freePort
      const layers: ReadonlyArray<Layer.Layer<Redis, unknown>> = [
        IoRedis.layer({
          url: Redacted.make(`redis://:${secret}@127.0.0.1:${port}`),
          password: Redacted.make(secret),
          client: { maxRetriesPerRequest: 0, retryStrategy: () => null }
        }),
        Upstash.layer({ url: `http://127.0.0.1:${port}`, token: Redacted.make(secret), client: { retry: false } })
      ]
      const spans: Array<string> = []
      const recordingTracer = yield* Effect.map(Effect.tracer, (inner) =>
        Tracer.make({
          context: (f, fiber) => inner.context(f, fiber),
          span: (name, parent, context, links, startTime, kind, options) => {
            const span = inner.span(name, parent, context, links, startTime, kind, options)
            spans.push(JSON.stringify({ name, attributes: [...span.attributes] }))
            const attribute = span.attribute.bind(span)
            span.attribute = (key, value) => {
              spans.push(JSON.stringify({ key, value }))
              attribute(key, value)
            }
            return span
          }
        }))
      const logs: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => logs.push(JSON.stringify([message, [...annotations]])))
      for (const layer of layers) {
        const error = yield* Effect.flatMap(Lock.make({ id: "secret-test" }), (l) => l.acquire()).pipe(
          Effect.provide(layer),
          Effect.withTracer(recordingTracer),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.All),
          Effect.flip
        )
        const texts = [String(layer), safeJson(layer), String(error), safeJson(error), (error as Error).message]
        for (const text of [...texts, ...spans, ...logs]) expect(text).not.toContain(secret)
      }
      expect(spans.length).toBeGreaterThan(0)
    }))
})

const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? ""
  } catch (e) {
    return String(e)
  }
}
