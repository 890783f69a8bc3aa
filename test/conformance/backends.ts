/**
 * The backends every conformance suite runs on, defined once: Memory under TestClock, IoRedis over a
 * private redis-server, Upstash over the REST fixture, and the IoRedis Cluster client over a real cluster.
 * A suite (./lock.ts, ./semaphore.ts, ./debounce.ts) is a function of a {@link Backend} that registers its
 * cases; `onEveryBackend(suite, …)` runs suites on the first three, {@link onCluster} in the cluster's file.
 */
import { describe, expect, it, layer, type Vitest } from "@effect/vitest"
import { Cause, Effect, type FastCheck as fc, Fiber, Layer, type Scope, TestClock } from "effect"
import { Redis } from "../../src/Redis.js"
import * as Memory from "../../src/Redis/Memory.js"
import * as RedisCluster from "../utils/RedisCluster.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

export interface Backend {
  readonly name: string
  /**
   * Registers one test. `client` is a new client of the backend's one store each time it is provided (on
   * a real server, a connection of its own, as another process would have); the body runs in a scope.
   */
  readonly test: (
    name: string,
    body: (client: Layer.Layer<Redis>) => Effect.Effect<void, unknown, Scope.Scope>
  ) => void
  /** Registers a property: `body` runs `numRuns` times, each on a generated value and a client of its own. */
  readonly prop: <A>(
    name: string,
    arbitrary: fc.Arbitrary<A>,
    body: (value: A) => Effect.Effect<void, unknown, Redis | Scope.Scope>,
    numRuns: number
  ) => void
  /** Lets `ms` of the store's time pass. */
  readonly elapse: (ms: number) => Effect.Effect<void>
  /** Runs an effect that waits on the clock, letting up to `ms` of time pass for it (TestClock) or as is. */
  readonly within: <A, E, R>(ms: number, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** A lease or debounce wait for the cases that wait for one to pass: short, with margins on a real server. */
  readonly short: number
  /** Extra time past `short` after which a key must be gone (0 on TestClock). */
  readonly margin: number
  /** Whether time is exact (TestClock), so properties may let time pass. */
  readonly exactTime: boolean
}

/** A conformance suite: registers its cases for one backend. */
export type Suite = (backend: Backend) => void

/**
 * A fresh counter's first fence (docs/fences.md): the server's `TIME` in µs + 1 on a redis-server (above
 * 10¹⁵ on any clock past 2001), the store's clock ms × 1000 + 1 on Memory, so exactly 1 at TestClock 0.
 */
export const expectFirstFence = (backend: Backend, fence: number) => {
  expect(Number.isSafeInteger(fence)).toBe(true)
  if (backend.exactTime) expect(fence).toBe(1)
  else expect(fence).toBeGreaterThan(1e15)
}

/** How long a fence counter lives after its last fence, by default (`fenceTtl`): 7 days, less a minute's slack. */
export const FENCE_COUNTER_TTL = 7 * 24 * 60 * 60 * 1000 - 60_000

/** Test time per property, on any backend. */
const PROPERTY_TIMEOUT = 60_000

/** The embedded store under TestClock: one store per test (or property run), time only moves when told. */
export const memory: Backend = {
  name: "Memory (TestClock)",
  test: (name, body) =>
    it.scoped(name, () => Effect.flatMap(Memory.make, (store) => body(Layer.succeed(Redis, store)))),
  prop: (name, arbitrary, body, numRuns) =>
    it.scoped.prop(name, { value: arbitrary }, ({ value }) => body(value).pipe(Effect.provide(Memory.layer)), {
      timeout: PROPERTY_TIMEOUT,
      fastCheck: { numRuns }
    }),
  elapse: (ms) => TestClock.adjust(ms),
  within: (ms, self) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(self)
      yield* TestClock.adjust(ms)
      return yield* Fiber.join(fiber)
    }),
  short: 1000,
  margin: 0,
  exactTime: true
}

/**
 * A backend on real servers, registered with a file's shared `it` (from `layer(servers)`): the wall clock,
 * with margins for a loaded two-core machine. `client` makes one client of the servers per use.
 */
export const onServer = <R>(
  name: string,
  it: { readonly scoped: Vitest.Tester<Scope.Scope | R> },
  client: Layer.Layer<Redis, unknown, R>
): Backend => {
  const fresh = Layer.orDie(client)
  return {
    name,
    test: (name, body) =>
      it.scoped(
        name,
        () =>
          Effect.flatMap(Effect.context<R>(), (servers) => body(Layer.provide(fresh, Layer.succeedContext(servers))))
      ),
    prop: (name, arbitrary, body, numRuns) =>
      it.scoped.prop(name, { value: arbitrary }, ({ value }) => body(value).pipe(Effect.provide(fresh)), {
        timeout: PROPERTY_TIMEOUT,
        fastCheck: { numRuns }
      }),
    elapse: (ms) => Effect.sleep(ms),
    within: (ms, self) =>
      Effect.timeoutFailCause(self, { duration: ms * 10, onTimeout: () => Cause.die(`not done within ${ms * 10} ms`) }),
    short: 300,
    margin: 200,
    exactTime: false
  }
}

const shared = { timeout: 30_000, excludeTestServices: true } as const

/** Runs `suites` on Memory under TestClock, on IoRedis over a private redis-server and on Upstash over the REST fixture. */
export const onEveryBackend = (...suites: ReadonlyArray<Suite>) => {
  describe("Memory", () => {
    for (const suite of suites) suite(memory)
  })
  layer(RedisServer.layer, shared)("IoRedis", (it) => {
    const backend = onServer("IoRedis (redis-server)", it, RedisServer.ioredis)
    for (const suite of suites) suite(backend)
  })
  layer(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)), shared)("Upstash", (it) => {
    const backend = onServer("Upstash (@upstash/redis → REST fixture → redis-server)", it, UpstashServer.upstash)
    for (const suite of suites) suite(backend)
  })
}

/** The IoRedis Cluster client on the file's cluster (`layer(RedisCluster.layer)`), as a backend. */
export const onCluster = (it: { readonly scoped: Vitest.Tester<Scope.Scope | RedisCluster.RedisCluster> }) =>
  onServer("IoRedis Cluster (3 masters, 3 replicas)", it, RedisCluster.ioredis)
