/**
 * Steps a `Schedule` by hand, for waits that sleep on the service's timer rather than in a fiber of
 * their own (the line's retries, the lease's keep-alive, the parity handle's tries). This is the one
 * place that reads a `ScheduleDecision`: every other module asks a {@link Stepper} for the next instant.
 */
import { Effect, type Schedule, ScheduleDecision, ScheduleIntervals } from "effect"

/** One run of a schedule: each call to `next` is one recurrence, fed `input`. */
export interface Stepper<In> {
  /**
   * The instant (in the caller's milliseconds, never before `now`) at which the schedule allows the
   * next recurrence, or `undefined` once it is done.
   */
  readonly next: (now: number, input: In) => Effect.Effect<number | undefined>
}

/** Starts a run of `schedule`; its state lives in the stepper, one per run. */
export const stepper = <In>(schedule: Schedule.Schedule<unknown, In>): Stepper<In> => {
  let state: unknown = schedule.initial
  return {
    next: (now, input) =>
      Effect.map(schedule.step(now, input, state), ([next, _, decision]) => {
        state = next
        return ScheduleDecision.isDone(decision)
          ? undefined
          : Math.max(now, ScheduleIntervals.start(decision.intervals))
      })
  }
}
