/**
 * What an OpenTelemetry pipeline receives from effect-lock, read through `@effect/opentelemetry` with the
 * SDK's in-memory exporters (InMemorySpanExporter; a MetricReader collected by hand): monotonic counters,
 * units as units, one span shape for every primitive, a held lock that is an answer and not an ERROR,
 * and no control character in a span, a metric or a key. The Memory backend, on the live clock.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { describe, expect, it } from "@effect/vitest"
import { SpanStatusCode } from "@opentelemetry/api"
import { DataPointType, InstrumentType, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics"
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { Deferred, Effect, Fiber, Layer, Option, Schedule } from "effect"
import * as Debounce from "../src/Debounce.js"
import * as Lock from "../src/Lock.js"
import type { InvalidOptions, LockNotAcquired } from "../src/LockError.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"
import * as Semaphore from "../src/Semaphore.js"
import { uniqueId } from "./utils/probe.js"

/** A metric reader that keeps nothing: `collect` asks the producer for what it has now. */
class InMemoryMetricReader extends MetricReader {
  protected override onForceFlush() {
    return Promise.resolve()
  }
  protected override onShutdown() {
    return Promise.resolve()
  }
}

/** An OpenTelemetry SDK in memory, wired to Effect's tracer and metrics as `@effect/opentelemetry` does. */
const otel = () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new InMemoryMetricReader()
  const layer = Layer.mergeAll(
    OtelTracer.layer.pipe(Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider))),
    OtelMetrics.layer(() => reader)
  ).pipe(Layer.provide(OtelResource.layer({ serviceName: "effect-lock-test" })))
  const spans = (id: string): ReadonlyArray<ReadableSpan> =>
    exporter.getFinishedSpans().filter((span) => span.attributes["lock.id"] === id)
  const collect = Effect.promise(() => reader.collect()).pipe(Effect.map(({ resourceMetrics }) => resourceMetrics))
  return { layer, exporter, spans, collect }
}

/** The SDK's view of metric `name`, with its data points. */
const metric = (metrics: ResourceMetrics, name: string) => {
  const found = metrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name)
  expect(found, name).toBeDefined()
  return found!
}

/** The instrument `@effect/opentelemetry` declares (its descriptor's `type`, which the SDK's type omits). */
const instrument = (m: { readonly descriptor: object }): unknown => (m.descriptor as { readonly type?: unknown }).type

/** The sum of metric `name`'s points for `primitive`. */
const total = (metrics: ResourceMetrics, name: string, primitive: string): number =>
  metric(metrics, name).dataPoints
    .filter((point) => point.attributes["lock.primitive"] === primitive)
    .reduce((sum, point) => sum + (point.value as number), 0)

/** One acquisition span's shape, as every primitive must have it once it won. */
const expectWonShape = (span: ReadableSpan, name: string, primitive: string, id: string) => {
  expect(span.name).toBe(name)
  expect(span.attributes["lock.primitive"]).toBe(primitive)
  expect(span.attributes["lock.id"]).toBe(id)
  expect(span.attributes["lock.acquired"]).toBe(true)
  expect(span.attributes["lock.fence"]).toBeTypeOf("number")
  expect(span.attributes["lock.fence"] as number).toBeGreaterThan(0)
  expect(span.events.map((event) => event.name)).toEqual(["acquired"])
  expect(span.status.code).toBe(SpanStatusCode.OK)
}

const COUNTERS = [
  "effect_lock_acquire_attempts",
  "effect_lock_acquired",
  "effect_lock_extensions",
  "effect_lock_lost"
] as const

/** C0, DEL, C1, line and paragraph separators. */
const CONTROL = new RegExp(`[${String.fromCharCode(0)}-${String.fromCharCode(0x1f)}\\u007f-\\u009f\\u2028\\u2029]`)

describe("OpenTelemetry export (@effect/opentelemetry, in-memory SDK)", () => {
  it.live("counters export as monotonic sums, the wait as a histogram whose unit is a unit, not a name", () => {
    const { collect, layer } = otel()
    return Effect.gen(function*() {
      const id = yield* uniqueId("metrics")
      yield* Lock.withLock({ id, lease: 300 })(Effect.sleep(150)) // one keep-alive step at 100 ms
      const semaphore = yield* Semaphore.make({ id: `${id}-s`, permits: 2 })
      yield* semaphore.withPermits(1)(Effect.void)
      // a lease lost while held (stolen, found at the next keep-alive step)
      const held = yield* Deferred.make<void>()
      const losing = yield* Effect.fork(
        Lock.withLock({ id: `${id}-lost`, lease: 300 })(
          Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)
        )
      )
      yield* Deferred.await(held)
      yield* MemoryTest.steal(`${id}-lost`)
      expect((yield* Effect.flip(Fiber.join(losing)))._tag).toBe("LockLost")
      const first = yield* collect
      for (const name of COUNTERS) {
        const m = metric(first, name)
        expect(instrument(m), name).toBe(InstrumentType.COUNTER) // not UP_DOWN_COUNTER
        expect(m.dataPointType, name).toBe(DataPointType.SUM)
        expect(m.dataPointType === DataPointType.SUM && m.isMonotonic, name).toBe(true)
        expect(m.descriptor.unit, name).toBe("1")
      }
      const wait = metric(first, "effect_lock_wait_duration")
      expect(instrument(wait)).toBe(InstrumentType.HISTOGRAM)
      expect(wait.dataPointType).toBe(DataPointType.HISTOGRAM)
      expect(wait.descriptor.unit).toBe("s")
      expect(wait.descriptor.description).toBe("time from the first try to the acquisition")
      const names = first.scopeMetrics.flatMap((s) => s.metrics).map((m) => m.descriptor.name)
        .filter((n) => n.startsWith("effect_lock"))
      expect(names.sort()).toEqual([...COUNTERS, "effect_lock_wait_duration"].sort())
      for (const n of names) expect(n).not.toMatch(/_(ms|millis|milliseconds|s|seconds)$/)
      // the buckets are seconds: an uncontended acquisition lands in the first (≤ 1 ms) or so
      const point = wait.dataPoints.find((p) => p.attributes["lock.primitive"] === "Lock")!
      const histogram = point.value as { readonly buckets: { readonly boundaries: ReadonlyArray<number> } }
      expect(histogram.buckets.boundaries[0]).toBe(0.001)
      expect(total(first, "effect_lock_acquired", "Lock")).toBeGreaterThanOrEqual(1)
      expect(total(first, "effect_lock_acquired", "Semaphore")).toBeGreaterThanOrEqual(1)
      expect(total(first, "effect_lock_extensions", "Lock")).toBeGreaterThanOrEqual(1)
      expect(total(first, "effect_lock_lost", "Lock")).toBeGreaterThanOrEqual(1)

      yield* Lock.withLock({ id })(Effect.void)
      const second = yield* collect
      for (const name of COUNTERS) {
        for (const primitive of ["Lock", "Semaphore"]) {
          expect(total(second, name, primitive)).toBeGreaterThanOrEqual(total(first, name, primitive))
        }
      }
      expect(total(second, "effect_lock_acquired", "Lock")).toBeGreaterThan(
        total(first, "effect_lock_acquired", "Lock")
      )
    }).pipe(Effect.provide(Layer.merge(MemoryTest.layer, layer)))
  })

  it.live("every primitive has one span shape: <Module>.<op>, lock.id, lock.primitive, the fence, `acquired`", () => {
    const { layer, spans } = otel()
    return Effect.gen(function*() {
      const id = yield* uniqueId("shape")
      yield* Lock.withLock({ id })(Effect.void)
      yield* Effect.scoped(Lock.acquire({ id }))
      yield* Lock.withLease({ id }, () => Effect.void)
      yield* Lock.withLockIfAvailable({ id })(Effect.void)
      const handle = yield* Lock.make({ id })
      expect(yield* handle.acquire()).toBe(true)
      yield* handle.release
      const semaphore = yield* Semaphore.make({ id: `${id}-sem`, permits: 3 })
      yield* Effect.scoped(semaphore.take(2))
      yield* semaphore.withPermits(1)(Effect.void)
      yield* semaphore.withPermitsIfAvailable(1)(Effect.void)

      const lock = spans(id)
      expect(lock.map((s) => s.name)).toEqual([
        "Lock.acquire",
        "Lock.acquire",
        "Lock.acquire",
        "Lock.acquire",
        "Lock.handle.acquire" // the parity handle's own name, not also `Lock.acquire`
      ])
      lock.forEach((span, i) => expectWonShape(span, i === 4 ? "Lock.handle.acquire" : "Lock.acquire", "Lock", id))
      const fences = lock.map((s) => s.attributes["lock.fence"] as number)
      expect([...fences].sort((a, b) => a - b)).toEqual(fences) // one fence per win, rising

      const taken = spans(`${id}-sem`)
      expect(taken.map((s) => s.name)).toEqual(["Semaphore.take", "Semaphore.take", "Semaphore.take"])
      for (const span of taken) expectWonShape(span, "Semaphore.take", "Semaphore", `${id}-sem`)
    }).pipe(Effect.provide(Layer.merge(MemoryTest.layer, layer)))
  })

  it.live("waiting for a held lock is not an ERROR; finding it held is OK with lock.acquired false", () => {
    const { layer, spans } = otel()
    return Effect.gen(function*() {
      const id = yield* uniqueId("held")
      const holding = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        Lock.withLock({ id })(Effect.zipRight(Deferred.succeed(holding, undefined), Deferred.await(done)))
      )
      yield* Deferred.await(holding)
      // a waiter that waits (many short tries), then wins once the holder lets go
      const waiter = yield* Effect.fork(
        Lock.withLock({ id, retry: Schedule.spaced("5 millis") })(Effect.void)
      )
      // answers, not faults: one plain try, the handle's false, tries used up
      expect(Option.isNone(yield* Lock.withLockIfAvailable({ id })(Effect.void))).toBe(true)
      const handle = yield* Lock.make({ id, retry: { attempts: 2, delay: 5 } })
      expect(yield* handle.acquire()).toBe(false)
      const used = yield* Effect.flip(Lock.withLock({ id, retry: { attempts: 2, delay: 5 } })(Effect.void))
      expect((used as LockNotAcquired).reason).toBe("held")
      const full = yield* Semaphore.make({ id: `${id}-full`, permits: 1 })
      const semaphoreMissed = yield* full.withPermits(1)(full.withPermitsIfAvailable(1)(Effect.void))
      expect(Option.isNone(semaphoreMissed)).toBe(true)
      const [missedTake] = spans(`${id}-full`).filter((s) => s.attributes["lock.acquired"] === false)
      expect([missedTake?.name, missedTake?.status.code, missedTake?.events]).toEqual([
        "Semaphore.take",
        SpanStatusCode.OK,
        []
      ])
      // the caller's deadline missed: that may be an ERROR
      const late = yield* Effect.flip(Lock.withLock({ id, timeout: "30 millis" })(Effect.void))
      expect((late as LockNotAcquired).reason).toBe("timeout")
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(waiter)

      const all = spans(id)
      const missed = all.filter((s) => s.attributes["lock.acquired"] === false)
      expect(missed.map((s) => [s.name, s.status.code])).toEqual([
        ["Lock.acquire", SpanStatusCode.OK], // withLockIfAvailable
        ["Lock.handle.acquire", SpanStatusCode.OK],
        ["Lock.acquire", SpanStatusCode.OK], // tries used up
        ["Lock.acquire", SpanStatusCode.ERROR] // timeout
      ])
      for (const span of missed.slice(0, 3)) {
        expect(span.events).toEqual([]) // no `exception` event either
        expect(span.attributes["lock.fence"]).toBeUndefined()
      }
      expect(missed[3]!.status.message).toContain("was not acquired before the timeout")
      const won = all.filter((s) => s.attributes["lock.acquired"] === true)
      expect(won.length).toBe(2) // the holder, and the waiter after its wait
      for (const span of won) expectWonShape(span, "Lock.acquire", "Lock", id)
      const waited = won.find((s) => s.startTime.join() !== won[0]!.startTime.join()) ?? won[1]!
      const [event] = waited.events
      const waitNanos = (event!.time[0] - waited.startTime[0]) * 1e9 + (event!.time[1] - waited.startTime[1])
      expect(waitNanos).toBeGreaterThan(20e6) // it did wait, through the timeout above, and is still OK
    }).pipe(Effect.provide(Layer.merge(MemoryTest.layer, layer)))
  })

  it.live("no control character in any span name, attribute or event, metric, or key (Debounce's run lock too)", () => {
    const { collect, exporter, layer } = otel()
    return Effect.gen(function*() {
      const id = yield* uniqueId("deb")
      const d = yield* Debounce.make({
        id,
        wait: 20,
        key: (user: string) => user,
        callback: (user: string) => Effect.succeed(`saved ${user}`)
      })
      const [a, b] = yield* Effect.all([d.call("ann"), d.call("bob")], { concurrency: 2 })
      expect([a._tag, b._tag]).toEqual(["Ran", "Ran"])
      yield* Lock.withLock({ id: `${id} with spaces {and} braces` })(Effect.void)
      const keys = Object.keys(yield* MemoryTest.keyspace)
      const runLockKeys = keys.filter((k) => k.includes("debounce:lock:"))
      expect(runLockKeys.length).toBeGreaterThan(0)
      expect(runLockKeys.some((k) => k.includes(`{${id.length}:${id}:ann}`))).toBe(true)
      for (const key of keys) expect(key, JSON.stringify(key)).not.toMatch(CONTROL)

      const finished = exporter.getFinishedSpans()
      const runSpans = finished.filter((s) => String(s.attributes["lock.id"]).startsWith(`${id.length}:${id}:`))
      expect(runSpans.map((s) => s.name)).toEqual(["Lock.acquire", "Lock.acquire"])
      expect(finished.filter((s) => s.name === "Debounce.call").length).toBe(2)
      const texts = finished.flatMap((s) => [
        s.name,
        ...Object.entries(s.attributes).flatMap(([k, v]) => [k, String(v)]),
        ...s.events.flatMap((e) => [e.name, ...Object.entries(e.attributes ?? {}).flatMap(([k, v]) => [k, String(v)])])
      ])
      expect(texts.length).toBeGreaterThan(20)
      for (const text of texts) expect(text, JSON.stringify(text)).not.toMatch(CONTROL)
      const metrics = (yield* collect).scopeMetrics.flatMap((s) => s.metrics)
      for (const m of metrics) {
        expect(m.descriptor.name).not.toMatch(CONTROL)
        for (const p of m.dataPoints) {
          for (const [k, v] of Object.entries(p.attributes)) expect(`${k}=${String(v)}`).not.toMatch(CONTROL)
        }
      }
    }).pipe(Effect.provide(Layer.merge(MemoryTest.layer, layer)))
  })

  it.effect("an id, prefix or debounce key with a newline or another control character is InvalidOptions", () =>
    Effect.gen(function*() {
      const rejected: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown, any>]> = [
        ["id", Effect.scoped(Lock.acquire({ id: "job\nadmin" }))],
        ["id", Lock.make({ id: "tab\there" })],
        ["id", Lock.make({ id: "nul\u0000" })],
        ["id", Lock.make({ id: "sep\u2028" })],
        ["prefix", Lock.make({ id: "job", prefix: "app\r\n" })],
        ["id", Semaphore.make({ id: "s\n", permits: 1 })],
        ["id", Debounce.make({ id: "d\u001b[31m", callback: () => Effect.void })],
        [
          "key",
          Effect.flatMap(
            Debounce.make({ id: "d", wait: 1, key: (k: string) => k, callback: (_: string) => Effect.void }),
            (d) => d.call("line\nbreak")
          )
        ]
      ]
      for (const [option, effect] of rejected) {
        const error = (yield* Effect.flip(effect)) as InvalidOptions
        expect(error._tag).toBe("InvalidOptions")
        expect(error.option).toBe(option)
        expect(error.expected).toContain("control characters")
      }
      expect(Object.keys(yield* MemoryTest.keyspace)).toEqual([]) // nothing was sent
    }).pipe(Effect.provide(MemoryTest.layer)))
})
