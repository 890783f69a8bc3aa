/**
 * The signals the command receives. `NodeRuntime.runMain` turns the first SIGINT or SIGTERM into an
 * interruption of the program, and then stops listening; this listener is installed first and stays,
 * so that the program knows which signal it was (and forwards it, not just any), and so that a second
 * Ctrl-C while the child shuts down is forwarded too instead of killing this process with the lock held.
 *
 * SIGTSTP (Ctrl-Z) is listened to as well, so that it does not stop this process: a stopped `run` keeps
 * no lease alive, and its watchdog would kill the command when the lease ran out. It is reported instead.
 */
import { Context, Effect, Layer, Queue } from "effect"

export type Signal = "SIGINT" | "SIGTERM"

export interface Service {
  /** Every SIGINT and SIGTERM received, in order, until the program takes them. */
  readonly received: Queue.Dequeue<Signal>
  /** Every SIGTSTP received (and ignored). */
  readonly stops: Queue.Dequeue<"SIGTSTP">
}

export class Signals extends Context.Tag("effect-lock/internal/cli/Signals")<Signals, Service>() {}

/** Listens from when the layer is built until it is released. */
export const layer: Layer.Layer<Signals> = Layer.scoped(
  Signals,
  Effect.gen(function*() {
    const received = yield* Queue.unbounded<Signal>()
    const stops = yield* Queue.unbounded<"SIGTSTP">()
    const onSignal = (signal: NodeJS.Signals) => void received.unsafeOffer(signal === "SIGINT" ? "SIGINT" : "SIGTERM")
    const onStop = () => void stops.unsafeOffer("SIGTSTP")
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        // Before runMain's own listener: the signal is queued by the time the interruption runs.
        process.prependListener("SIGINT", onSignal)
        process.prependListener("SIGTERM", onSignal)
        process.on("SIGTSTP", onStop)
      }),
      () =>
        Effect.sync(() => {
          process.removeListener("SIGINT", onSignal)
          process.removeListener("SIGTERM", onSignal)
          process.removeListener("SIGTSTP", onStop)
        })
    )
    return { received, stops }
  })
)
