/**
 * `effect-lock run`: acquire the lock, run the child under it, keep the lease alive, release it once the
 * child has exited.
 *
 * Scopes nest so that the order of shutdown is always the same: the child's scope closes first (the
 * child has exited, or is stopped: the signal, then SIGKILL after `killAfter`), then the lease's scope
 * (keep-alive stops, the lock is released). On lease loss the child gets SIGTERM, then SIGKILL after
 * `killAfter`. A signal to this process interrupts the program (`NodeRuntime.runMain`); the child's
 * scope then forwards that signal and waits for the child, so the lock is never released before the
 * child is gone. The exit code of a signalled run is reported through `report`, because an interrupted
 * program returns no value.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import { Duration, Effect, Either, Fiber, Queue, type Scope } from "effect"
import { constants } from "node:os"
import * as Lock from "../../Lock.js"
import type { InvalidOptions, LockLost, RedisError } from "../../LockError.js"
import type { Redis } from "../../Redis.js"
import { MAX_MILLIS } from "../validate.js"
import { format } from "./duration.js"
import { ExitCodes } from "./exitCodes.js"
import { type Signal, Signals } from "./signals.js"

/** How long to wait for the lock: one try, up to a time, or for as long as it takes. */
export type Wait =
  | { readonly _tag: "NoWait" }
  | { readonly _tag: "Timeout"; readonly millis: number }
  | { readonly _tag: "Forever" }

export interface RunOptions {
  readonly id: string
  readonly prefix: string
  /** Milliseconds. */
  readonly lease: number
  readonly wait: Wait
  /** Milliseconds between SIGTERM (or the forwarded signal) and SIGKILL. */
  readonly killAfter: number
  readonly conflictExitCode: number
  readonly command: string
  readonly args: ReadonlyArray<string>
  /**
   * Receives the exit code as soon as it is known (the first one reported wins): a signal may still
   * interrupt the program while the lease is released, and an interrupted program returns no value.
   */
  readonly report: (code: number) => void
}

/** The exit status a shell would report for a child: its code, or 128 + the signal that ended it. */
const exitStatus = (process: CommandExecutor.Process): Effect.Effect<number> =>
  process.exitCode.pipe(
    Effect.map(Number),
    Effect.catchAll((error) => {
      const signal = error._tag === "SystemError"
        ? /signal: (SIG[A-Z0-9]+)/.exec(error.description ?? "")?.[1]
        : undefined
      const number = signal === undefined ? undefined : constants.signals[signal as NodeJS.Signals]
      return Effect.succeed(number === undefined ? 1 : 128 + number)
    })
  )

const spawnFailure = (command: string, error: PlatformError) =>
  error._tag === "SystemError" && error.reason === "NotFound"
    ? { code: ExitCodes.notFound, message: `command not found: ${command}` }
    : { code: ExitCodes.cannotExecute, message: `cannot run ${command}: ${error.message}` }

const acquireOptions = (options: RunOptions): Lock.AcquireOptions => {
  const base = { id: options.id, prefix: options.prefix, lease: options.lease }
  switch (options.wait._tag) {
    case "NoWait":
      return { ...base, retry: { attempts: 1 }, fair: false }
    case "Timeout":
      return { ...base, timeout: options.wait.millis }
    case "Forever":
      return { ...base, timeout: MAX_MILLIS }
  }
}

/** Acquires the lease; says on stderr when it has to wait. */
const acquire = (options: RunOptions) =>
  Effect.gen(function*() {
    const waiting = yield* Effect.log(`waiting for lock "${options.id}"`).pipe(
      Effect.delay(Duration.millis(500)),
      Effect.fork
    )
    return yield* Lock.acquire(acquireOptions(options)).pipe(Effect.ensuring(Fiber.interrupt(waiting)))
  })

/**
 * Stops the child: sends `signal`, forwards any further signal this process receives, and sends
 * SIGKILL if the child is still running after `killAfter`. Returns the child's exit status.
 *
 * Runs uninterruptibly (it is also the finalizer of a signalled run): only the waits inside the
 * timeout are made interruptible, in the fibers the timeout races, so that the timeout can cut them.
 */
const stop = (
  process: CommandExecutor.Process,
  signal: Signal,
  killAfter: number,
  received: Queue.Dequeue<Signal>
): Effect.Effect<number> =>
  Effect.gen(function*() {
    const send = (signal: NodeJS.Signals) => Effect.ignore(process.kill(signal)).pipe(Effect.interruptible, Effect.fork)
    yield* send(signal)
    const forward = Effect.forever(Effect.flatMap(Queue.take(received), (signal) => send(signal)))
    const exited = yield* Effect.raceFirst(exitStatus(process), Effect.zipRight(forward, Effect.never)).pipe(
      Effect.interruptible,
      Effect.timeout(killAfter),
      Effect.option
    )
    if (exited._tag === "Some") return exited.value
    yield* Effect.logWarning(`the command did not exit within ${format(killAfter)} of ${signal}; sending SIGKILL`)
    yield* send("SIGKILL")
    return yield* exitStatus(process)
  }).pipe(Effect.uninterruptible)

/** Runs the child while the lease holds; its exit status, or the lost-lease code. */
const supervise = (
  options: RunOptions,
  lease: Lock.Lease
): Effect.Effect<number, never, Scope.Scope | CommandExecutor.CommandExecutor | Signals> =>
  Effect.gen(function*() {
    const { received } = yield* Signals
    const started = yield* Command.make(options.command, ...options.args).pipe(
      Command.env({ EFFECT_LOCK_ID: options.id, EFFECT_LOCK_FENCE: String(lease.fence) }),
      Command.stdin("inherit"),
      Command.stdout("inherit"),
      Command.stderr("inherit"),
      Command.start,
      Effect.either
    )
    if (Either.isLeft(started)) {
      const failure = spawnFailure(options.command, started.left)
      yield* Effect.logError(failure.message)
      return failure.code
    }
    const child = started.right
    const outcome = yield* Effect.raceFirst(
      Effect.map(exitStatus(child), (code) => ({ _tag: "Exited", code }) as const),
      Effect.map(Effect.flip(lease.lost), (lost) => ({ _tag: "Lost", lost }) as const)
    ).pipe(
      // Interrupted by a signal to this process: pass it on, and wait for the child before the lease
      // is released.
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          const pending = yield* Queue.takeAll(received)
          const signal = Array.from(pending)[0] ?? "SIGTERM"
          yield* Effect.log(`received ${signal}; forwarding it to the command`)
          const code = yield* stop(child, signal, options.killAfter, received)
          options.report(code)
        })
      )
    )
    // Reported at once: a signal arriving from now on must not replace the code.
    if (outcome._tag === "Exited") {
      options.report(outcome.code)
      return outcome.code
    }
    options.report(ExitCodes.leaseLost)
    yield* lostLease(outcome.lost)
    yield* stop(child, "SIGTERM", options.killAfter, received)
    return ExitCodes.leaseLost
  })

const lostLease = (lost: LockLost) => Effect.logError(`${lost.message}; stopping the command (SIGTERM)`)

/**
 * The whole `run`: the exit code to leave with. Redis faults and rejected options stay in the error
 * channel; a lock held by another owner is the conflict code.
 */
export const run = (
  options: RunOptions
): Effect.Effect<number, RedisError | InvalidOptions, Redis | CommandExecutor.CommandExecutor | Signals> =>
  Effect.scoped(
    Effect.gen(function*() {
      const lease = yield* acquire(options)
      yield* Effect.log(`acquired lock "${options.id}" with fence ${lease.fence}`)
      return yield* Effect.scoped(supervise(options, lease))
    })
  ).pipe(
    Effect.catchTag(
      "LockNotAcquired",
      (error) => Effect.as(Effect.log(`${error.message}; not running the command`), options.conflictExitCode)
    )
  )
