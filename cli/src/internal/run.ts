/**
 * `effect-lock run`: find the command, acquire the lock, run the command in a process group of its own
 * under a watchdog (watchdog.ts), keep the lease alive, and release it once the whole group is gone.
 *
 * Scopes nest so that the order of shutdown is always the same: the group's scope closes first (every
 * process of the group has exited, or was killed), then the lease's scope (keep-alive stops, the lock
 * is released). Whatever ends the command's part — its exit, a lost lease, a signal to `run` — ends the
 * same way ({@link stop}): the signal to the whole group, SIGKILL to the group after `killAfter` (or at
 * the lease's deadline minus the watchdog's margin, whichever is first) whatever its leader did, and a
 * wait until no process of the group is left. A signal to this process interrupts the program
 * (`NodeRuntime.runMain`); the exit code of a signalled run is reported through `report`, because an
 * interrupted program returns no value.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Clock, Deferred, Duration, Effect, Fiber, Option, Queue, Schedule, type Scope } from "effect"
import * as Lock from "effect-lock/Lock"
import { type InvalidOptions, type LeadershipLost, type LockLost, RedisError } from "effect-lock/LockError"
import type { Redis } from "effect-lock/Redis"
import { format } from "./duration.js"
import { quote } from "./escape.js"
import * as executable from "./executable.js"
import type { CliFailure } from "./exitCodes.js"
import { ExitCodes } from "./exitCodes.js"
import * as group from "./group.js"
import { MAX_MILLIS } from "./limits.js"
import { type Signal, Signals } from "./signals.js"
import { report as lockStatus } from "./status.js"
import * as Watchdog from "./watchdog.js"

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
  /** The command's environment, before `EFFECT_LOCK_ID` and `EFFECT_LOCK_FENCE` are added. */
  readonly env: Record<string, string>
  /**
   * Receives the exit code as soon as it is known (the first one reported wins): a signal may still
   * interrupt the program while the lease is released, and an interrupted program returns no value.
   */
  readonly report: (code: number) => void
}

/**
 * The watchdog's margin: the group is SIGKILLed this long before the lease's local deadline (itself
 * measured from before the request that proved it, minus the clock-drift allowance), so that a late
 * timer or a slow kill still ends it before the key can expire.
 */
export const marginOf = (lease: number): number => Math.min(1000, Math.max(25, Math.floor(lease / 20)))

/** When no extension is confirmed, SIGTERM goes this long before the watchdog's SIGKILL. */
const graceOf = (lease: number, killAfter: number): number => Math.min(killAfter, Math.floor(lease / 10))

/** How often the watchdog is told the lease's deadline. */
const beatOf = (lease: number): number => Math.min(1000, Math.max(10, Math.floor(lease / 6)))

/** How often the group is looked at while `run` waits for it to be gone. */
const POLL = Schedule.spaced(Duration.millis(20))

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

/** How long `--no-wait`'s one try waits for its answer: an unanswering server is no reason to wait. */
const NO_WAIT_ANSWER = 2000

/** Acquires the lease; says on stderr when it has to wait (never with `--no-wait`: it does not wait). */
const acquire = (options: RunOptions) =>
  Effect.gen(function*() {
    if (options.wait._tag === "NoWait") {
      return yield* Lock.acquire(acquireOptions(options)).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(NO_WAIT_ANSWER),
          onTimeout: () =>
            new RedisError({
              operation: "eval lock.acquire",
              detail: `no answer within ${format(NO_WAIT_ANSWER)} (--no-wait makes one try)`
            })
        })
      )
    }
    const waiting = yield* Effect.log(`waiting for lock ${quote(options.id)}`).pipe(
      Effect.delay(Duration.millis(500)),
      Effect.fork
    )
    return yield* Lock.acquire(acquireOptions(options)).pipe(Effect.ensuring(Fiber.interrupt(waiting)))
  })

/** What ended the command's part of the run. */
type Outcome =
  | { readonly _tag: "Exited"; readonly status: number }
  | { readonly _tag: "Gone"; readonly expired: boolean }
  | { readonly _tag: "Lost"; readonly message: string }

/** What {@link supervise} needs of a run (`elect` hands it a term's). */
export type Supervised = Pick<
  RunOptions,
  "id" | "prefix" | "lease" | "killAfter" | "command" | "args" | "env" | "report"
>

/** Says why a lease was lost: an extension found another owner, no owner, or nothing was confirmed. */
/**
 * What {@link supervise} needs of what it runs the command under: a lock's lease, or an election's
 * leadership (its term as the fence).
 */
export interface Guard {
  readonly fence: number
  readonly lost: Effect.Effect<never, LockLost | LeadershipLost>
  readonly validUntil: Effect.Effect<number>
}

const describeLoss = (options: Supervised, lost: LockLost | LeadershipLost): Effect.Effect<string, never, Redis> => {
  if (lost._tag === "LeadershipLost") {
    const leadership = `lost leadership of ${quote(options.id)} (term ${lost.term})`
    return Effect.succeed(
      lost.reason === "unconfirmed"
        ? `${leadership}: no extension could be confirmed before it would expire`
        : `${leadership}: its lease expired or another candidate leads`
    )
  }
  const lease = `lost the lease on lock ${quote(options.id)} (fence ${lost.fence})`
  if (lost.reason === "unconfirmed") {
    return Effect.succeed(`${lease}: no extension could be confirmed before it would expire`)
  }
  return lockStatus(options).pipe(
    Effect.timeout(Duration.seconds(1)),
    Effect.map((now) =>
      now.state === "held" || now.state === "reserved"
        ? `${lease}: it was taken by another owner`
        : `${lease}: it expired (its key is gone)`
    ),
    Effect.orElseSucceed(() => `${lease}: the lock is no longer ours`)
  )
}

/** Completes when the lease has less than `margin + grace` left and nothing extends it. */
const endingSoon = (lease: Guard, before: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const until = (yield* lease.validUntil) - before
      const now = Number(yield* Clock.currentTimeNanos) / 1e6
      if (now >= until) return
      yield* Effect.sleep(Duration.millis(Math.ceil(until - now)))
    }
  })

/** The command's part of the run: the group under its watchdog, from start to gone. */
export const supervise = (
  options: Supervised,
  lease: Guard
): Effect.Effect<
  number,
  CliFailure,
  Scope.Scope | CommandExecutor.CommandExecutor | FileSystem.FileSystem | Signals | Redis
> =>
  Effect.gen(function*() {
    const { received } = yield* Signals
    const margin = marginOf(options.lease)
    const dog = yield* Watchdog.start({
      command: options.command,
      args: options.args,
      env: { ...options.env, EFFECT_LOCK_ID: options.id, EFFECT_LOCK_FENCE: String(lease.fence) },
      killAfter: options.killAfter,
      margin
    })
    // The watchdog hears the deadline until the group is gone (also while it is being stopped).
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.flatMap(lease.validUntil, dog.beat), Effect.sleep(beatOf(options.lease))))
    )
    const started = yield* Queue.take(dog.events)
    if (started._tag !== "Started") {
      const missing = started._tag === "SpawnFailed" && started.errno === "ENOENT"
      yield* Effect.logError(missing ? `command not found: ${options.command}` : `cannot run ${options.command}`)
      yield* Effect.ignore(Effect.zipRight(dog.signal("SIGKILL"), dog.exited))
      return missing ? ExitCodes.notFound : ExitCodes.cannotExecute
    }

    // What the watchdog says, as it happens.
    const exited = yield* Deferred.make<number>()
    const gone = yield* Deferred.make<boolean>()
    let expired = false
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(dog.events), (event) => {
      switch (event._tag) {
        case "Exited":
          return Deferred.succeed(exited, event.status)
        case "Expired":
          return Effect.sync(() => {
            expired = true
          })
        case "Closed":
          return Deferred.succeed(gone, expired)
        default:
          return Effect.void
      }
    })))

    /** The live processes of the group, the watchdog aside. */
    const others = Effect.map(group.members(dog.pgid), (pids) => pids.filter((pid) => pid !== dog.pgid))
    /** Whether the command has exited (or the watchdog is gone) and nothing else of the group runs. */
    const quiet = Effect.zipWith(
      Effect.zipWith(Deferred.isDone(exited), Deferred.isDone(gone), (a, b) => a || b),
      Effect.suspend(() => others),
      (done, rest) => done && rest.length === 0
    )
    const untilQuiet = Effect.repeat(quiet, { until: (done) => done, schedule: POLL })
    const untilEmpty = Effect.repeat(group.members(dog.pgid), { until: (pids) => pids.length === 0, schedule: POLL })
    const killAt = (from: number) =>
      Effect.map(lease.validUntil, (until) => Math.min(from + options.killAfter, until - margin))
    /** Sleeps until SIGKILL is due: `killAfter` after `from`, or the deadline minus the margin. */
    const untilKill = (from: number) =>
      Effect.gen(function*() {
        while (true) {
          const at = yield* killAt(from)
          const now = Number(yield* Clock.currentTimeNanos) / 1e6
          if (now >= at) return
          yield* Effect.sleep(Duration.millis(Math.min(Math.ceil(at - now), 1000)))
        }
      })

    /**
     * Stops the group: `signal` to it, any further signal this process receives forwarded, SIGKILL to the
     * group when due; then waits until no process of it is left, and lets the watchdog go. Returns the
     * command's exit status. Uninterruptible (it is also the finalizer of a signalled run): only the waits
     * inside are made interruptible, in the fibers the race runs, so that it can cut them.
     */
    const stop = (
      signal: Signal | "SIGTERM"
    ): Effect.Effect<number, never, FileSystem.FileSystem | CommandExecutor.CommandExecutor> =>
      Effect.gen(function*() {
        const from = Number(yield* Clock.currentTimeNanos) / 1e6
        yield* dog.signal(signal)
        const forward = Effect.forever(Effect.flatMap(Queue.take(received), (signal) => dog.signal(signal)))
        const ended = yield* Effect.raceAll([
          Effect.as(untilQuiet, true),
          Effect.as(untilKill(from), false),
          Effect.zipRight(forward, Effect.never)
        ].map(Effect.interruptible))
        if (!ended) {
          const now = Number(yield* Clock.currentTimeNanos) / 1e6
          yield* Effect.logWarning(
            now >= from + options.killAfter
              ? `the command's process group did not exit within ${
                format(options.killAfter)
              } of ${signal}; sending SIGKILL`
              : `the lease is about to expire and the command's process group still runs; sending SIGKILL`
          )
          yield* dog.signal("SIGKILL")
        }
        yield* finish
        const status = yield* Deferred.poll(exited)
        return Option.isSome(status) ? yield* status.value : 128 + 9
      }).pipe(Effect.uninterruptible)

    /** Waits until the group is gone: the rest of it, then the watchdog, let go. */
    const finish = Effect.gen(function*() {
      yield* untilQuiet
      yield* dog.release
      yield* untilEmpty
    })

    const racers: ReadonlyArray<Effect.Effect<Outcome, never, Redis>> = [
      Effect.map(Deferred.await(exited), (status) => ({ _tag: "Exited", status })),
      Effect.map(Deferred.await(gone), (expired) => ({ _tag: "Gone", expired })),
      Effect.flatMap(
        Effect.flip(lease.lost),
        (lost) => Effect.map(describeLoss(options, lost), (message) => ({ _tag: "Lost", message }))
      ),
      Effect.as(endingSoon(lease, margin + graceOf(options.lease, options.killAfter)), {
        _tag: "Lost",
        message: `lost the lease on lock ${quote(options.id)} (fence ${lease.fence}): no extension was confirmed, ` +
          `and it is about to expire`
      })
    ]
    const outcome = yield* Effect.raceAll(racers).pipe(
      // Interrupted by a signal to this process: pass it on, and wait for the group before the lease is
      // released.
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          const pending = yield* Queue.takeAll(received)
          const signal = Array.from(pending)[0] ?? "SIGTERM"
          yield* Effect.log(`received ${signal}; forwarding it to the command's process group`)
          options.report(yield* stop(signal))
        })
      )
    )
    return yield* Effect.uninterruptible(ending(outcome))

    /** After the command's part has ended: the group stopped and gone; the exit code. */
    function ending(outcome: Outcome) {
      return Effect.gen(function*() {
        switch (outcome._tag) {
          case "Exited": {
            // Reported at once: a signal arriving from now on must not replace the code.
            options.report(outcome.status)
            const rest = yield* others
            if (rest.length > 0) {
              yield* Effect.logWarning(
                `the command exited, but ${rest.length} process(es) of its group still run; stopping them (SIGTERM)`
              )
              yield* stop("SIGTERM")
            } else {
              yield* Effect.uninterruptible(finish)
            }
            return outcome.status
          }
          case "Gone": {
            options.report(ExitCodes.leaseLost)
            yield* Effect.logError(
              outcome.expired
                ? `run was stopped past the lease's deadline: the watchdog killed the command's process group`
                : `the watchdog exited; stopping the command's process group`
            )
            if (!outcome.expired) yield* stop("SIGTERM")
            yield* Effect.uninterruptible(untilEmpty)
            return ExitCodes.leaseLost
          }
          case "Lost":
            options.report(ExitCodes.leaseLost)
            yield* Effect.logError(`${outcome.message}; stopping the command's process group (SIGTERM)`)
            yield* stop("SIGTERM")
            return ExitCodes.leaseLost
        }
      })
    }
  })

/** Says so when SIGTSTP (Ctrl-Z) is ignored: a stopped `run` would let the lease lapse under the command. */
export const ignoreStops = Effect.flatMap(Signals, ({ stops }) =>
  Effect.forever(Effect.zipRight(
    Queue.take(stops),
    Effect.logWarning("ignoring SIGTSTP: run does not stop while it waits for or holds the lock (Ctrl-C ends it)")
  )))

/**
 * The whole `run`: the exit code to leave with. Redis faults and rejected options stay in the error
 * channel; a lock held by another owner is the conflict code; a command that cannot be found or run
 * fails before the lock is taken.
 */
export const run = (
  options: RunOptions
): Effect.Effect<
  number,
  RedisError | InvalidOptions | CliFailure,
  Redis | CommandExecutor.CommandExecutor | FileSystem.FileSystem | Signals
> =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* executable.find(options.command, options.env.PATH)
      yield* Effect.forkScoped(ignoreStops)
      const lease = yield* acquire(options)
      yield* Effect.log(`acquired lock ${quote(options.id)} with fence ${lease.fence}`)
      return yield* Effect.scoped(supervise(options, lease))
    })
  ).pipe(
    Effect.catchTag(
      "LockNotAcquired",
      (error) => Effect.as(Effect.log(`${error.message}; not running the command`), options.conflictExitCode)
    )
  )
