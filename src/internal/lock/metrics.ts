/** The lock's metrics, updated without an Effect each (they are on the hot path). */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

export const metrics = {
  attempts: Metric.counter("effect_lock_acquire_attempts", { description: "tries to acquire a lock" }),
  acquired: Metric.counter("effect_lock_acquired", { description: "successful acquisitions" }),
  waitMillis: Metric.histogram(
    "effect_lock_wait_ms",
    MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
    "time from the first try to the acquisition"
  ),
  extensions: Metric.counter("effect_lock_extensions", { description: "confirmed lease extensions" }),
  lost: Metric.counter("effect_lock_lost", { description: "leases lost while held" })
} as const

const none: ReadonlyArray<MetricLabel.MetricLabel> = []

/** The labels of one lock's metrics: its id only when the user opted in (cardinality is theirs). */
export const labels = (id: string, labelled: boolean): ReadonlyArray<MetricLabel.MetricLabel> =>
  labelled ? [MetricLabel.make("lock.id", id)] : none
