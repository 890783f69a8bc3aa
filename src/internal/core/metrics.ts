/**
 * The metrics of every primitive, updated without an Effect each (they are on the hot path). One set of
 * metric names serves every primitive; each primitive's set is tagged `lock.primitive` (`Lock`,
 * `Semaphore`, `ReadWriteLock`), and an update carries the id too only when the user opted in
 * (cardinality is theirs).
 *
 * As OpenTelemetry reads them (`@effect/opentelemetry`): the counters are `incremental`, so they export
 * as monotonic sums (OTel `Counter`), not up-down counters; units are units, not parts of names: the
 * wait histogram is tagged `unit: "s"` (the tag `@effect/opentelemetry` reads as the instrument's unit,
 * seconds as OTel's semantic conventions measure durations), the counters have the default unit `1`.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"
import type { Primitive } from "./resource.js"

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

const make = (primitive: Primitive) => {
  const tag = <M extends Metric.Metric<any, any, any>>(metric: M): M =>
    Metric.tagged(metric, "lock.primitive", primitive) as unknown as M
  return {
    attempts: tag(counter("effect_lock_acquire_attempts", "tries to acquire")),
    acquired: tag(counter("effect_lock_acquired", "successful acquisitions")),
    /** Seconds from the first try to the acquisition: buckets from 1 ms, doubling, to 32.8 s. */
    wait: tag(
      Metric.tagged(
        Metric.histogram(
          "effect_lock_wait_duration",
          MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 }),
          "time from the first try to the acquisition"
        ),
        "unit",
        "s"
      )
    ),
    extensions: tag(counter("effect_lock_extensions", "confirmed lease extensions")),
    lost: tag(counter("effect_lock_lost", "leases lost while held"))
  } as const
}

export type Metrics = ReturnType<typeof make>

/** Each primitive's metrics. */
export const metrics: Record<Primitive, Metrics> = {
  Lock: make("Lock"),
  Semaphore: make("Semaphore"),
  ReadWriteLock: make("ReadWriteLock")
}

const none: ReadonlyArray<MetricLabel.MetricLabel> = []

/** The extra labels of one acquisition's metrics: its id only when the user opted in. */
export const labels = (id: string, labelled: boolean): ReadonlyArray<MetricLabel.MetricLabel> =>
  labelled ? [MetricLabel.make("lock.id", id)] : none
