/**
 * The metrics of every primitive, updated without an Effect each (they are on the hot path). One set of
 * metric names serves every primitive; each primitive's set is tagged `lock.primitive` (`Lock`,
 * `Semaphore`), and an update carries the id too only when the user opted in (cardinality is theirs).
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"
import type { Primitive } from "./resource.js"

const make = (primitive: Primitive) => {
  const tag = <M extends Metric.Metric<any, any, any>>(metric: M): M =>
    Metric.tagged(metric, "lock.primitive", primitive) as unknown as M
  return {
    attempts: tag(Metric.counter("effect_lock_acquire_attempts", { description: "tries to acquire" })),
    acquired: tag(Metric.counter("effect_lock_acquired", { description: "successful acquisitions" })),
    waitMillis: tag(
      Metric.histogram(
        "effect_lock_wait_ms",
        MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
        "time from the first try to the acquisition"
      )
    ),
    extensions: tag(Metric.counter("effect_lock_extensions", { description: "confirmed lease extensions" })),
    lost: tag(Metric.counter("effect_lock_lost", { description: "leases lost while held" }))
  } as const
}

export type Metrics = ReturnType<typeof make>

/** Each primitive's metrics. */
export const metrics: Record<Primitive, Metrics> = { Lock: make("Lock"), Semaphore: make("Semaphore") }

const none: ReadonlyArray<MetricLabel.MetricLabel> = []

/** The extra labels of one acquisition's metrics: its id only when the user opted in. */
export const labels = (id: string, labelled: boolean): ReadonlyArray<MetricLabel.MetricLabel> =>
  labelled ? [MetricLabel.make("lock.id", id)] : none
