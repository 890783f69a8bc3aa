/**
 * `effect-lock elect`: campaign, run the child while leading (with `run`'s supervision: signals
 * forwarded, SIGTERM then SIGKILL on loss), resign once it has exited, and campaign again — or, with
 * `--once`, leave with the child's code after the first term.
 *
 * A signal to this process interrupts the program: while leading, `run`'s supervision forwards it and
 * waits for the child, and only then is leadership resigned (handed to the next candidate in one
 * round trip); while campaigning, the candidate leaves the line.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Duration, Effect, Fiber, Option, Schedule } from "effect"
import * as Election from "effect-lock/Election"
import type { InvalidOptions, RedisError } from "effect-lock/LockError"
import type { Redis } from "effect-lock/Redis"
import type { Shared } from "./command.js"
import { quote } from "./escape.js"
import * as executable from "./executable.js"
import { type CliFailure, ExitCodes } from "./exitCodes.js"
import { ignoreStops, supervise } from "./run.js"
import type { Signals } from "./signals.js"

export interface ElectOptions {
  readonly id: string
  readonly identity: string | undefined
  readonly prefix: string
  /** Milliseconds. */
  readonly lease: number
  readonly once: boolean
  /** Milliseconds between SIGTERM (or the forwarded signal) and SIGKILL. */
  readonly killAfter: number
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** The command's environment, before `EFFECT_LOCK_*` are added. */
  readonly env: Record<string, string>
  /**
   * Sets the exit code to leave with, as soon as it is known; `undefined` when a new campaign starts
   * (a signal then ends the program with 128 + the signal).
   */
  readonly report: (code: number | undefined) => void
}

/** After a Redis fault, the next campaign waits 100 ms, doubling to 2 s. */
const FAULT_BACKOFF = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** One term: campaign, run the child while leading, resign. The child's exit status, or the lost code. */
const term = (options: ElectOptions, input: Election.Options) =>
  Effect.scoped(Effect.gen(function*() {
    options.report(undefined)
    const as = input.identity === undefined ? "" : ` as ${quote(input.identity)}`
    const waiting = yield* Effect.log(`waiting to lead ${quote(options.id)}${as}`).pipe(
      Effect.delay(Duration.millis(500)),
      Effect.fork
    )
    const leadership = yield* Election.campaign(input).pipe(
      Effect.catchTag("LockNotAcquired", (e) => Effect.die(e)), // no timeout: a campaign waits until it leads
      Effect.ensuring(Fiber.interrupt(waiting))
    )
    const { identity } = leadership
    yield* Effect.log(`leading ${quote(options.id)} as ${quote(identity)}, term ${leadership.term}`)
    return yield* Effect.scoped(supervise({
      id: options.id,
      prefix: options.prefix,
      lease: options.lease,
      killAfter: options.killAfter,
      command: options.command,
      args: options.args,
      report: options.report,
      env: { ...options.env, EFFECT_LOCK_TERM: String(leadership.term), EFFECT_LOCK_IDENTITY: identity }
    }, { fence: leadership.term, lost: leadership.lost, validUntil: leadership.validUntil }))
  }))

/** The whole `elect`: the exit code to leave with (only `--once`, or a command that cannot run, ends it). */
type Requirements = Redis | CommandExecutor.CommandExecutor | FileSystem.FileSystem | Signals

export const elect = (
  options: ElectOptions
): Effect.Effect<number, RedisError | InvalidOptions | CliFailure, Requirements> =>
  Effect.suspend(() => {
    const input: Election.Options = {
      id: options.id,
      identity: options.identity,
      prefix: options.prefix,
      lease: options.lease
    }
    // The command is looked for once, before the first campaign; SIGTSTP is ignored throughout.
    const prepare = Effect.zipRight(
      executable.find(options.command, options.env.PATH),
      Effect.forkScoped(ignoreStops)
    )
    const once = term(options, input)
    if (options.once) return Effect.scoped(Effect.zipRight(prepare, once))
    const again = once.pipe(
      Effect.tapError((e) => Effect.logWarning(`${e.message}; campaigning again`)),
      Effect.retry({ schedule: FAULT_BACKOFF, while: (e) => e._tag === "RedisError" })
    )
    const loop = (): Effect.Effect<number, RedisError | InvalidOptions | CliFailure, Requirements> =>
      Effect.flatMap(again, (code) =>
        code === ExitCodes.cannotExecute || code === ExitCodes.notFound
          ? Effect.succeed(code)
          : Effect.zipRight(
            Effect.log(
              `term ended (${
                code === ExitCodes.leaseLost ? "leadership lost" : `exit code ${code}`
              }); campaigning again`
            ),
            Effect.suspend(loop)
          ))
    return Effect.scoped(Effect.zipRight(prepare, loop()))
  })

/** The `elect` subcommand, on the options and helpers the other commands use. */
export const electCommand = (shared: Shared) =>
  Command.make("elect", {
    id: Options.text("id").pipe(
      Options.withPseudoName("ID"),
      Options.withDescription("the election's name (1 to 1024 characters)")
    ),
    identity: Options.text("identity").pipe(
      Options.withPseudoName("IDENTITY"),
      Options.optional,
      Options.withDescription("who this candidate is, as `leader` shows it (default: <hostname>:<pid>:<random>)")
    ),
    lease: Options.text("lease").pipe(
      Options.withDefault("15s"),
      shared.durationOption("lease", 1),
      Options.withDescription("leadership's lease; it is extended every third of it while leading")
    ),
    once: Options.boolean("once").pipe(
      Options.withDescription("leave after the first term, with the command's exit code")
    ),
    killAfter: Options.text("kill-after").pipe(
      Options.withDefault("10s"),
      shared.durationOption("kill-after", 0),
      Options.withDescription("after SIGTERM (leadership lost) or a forwarded signal, SIGKILL follows this long after")
    ),
    prefix: shared.prefix,
    redis: shared.redis,
    redisFile: shared.redisFile,
    passRedisEnv: Options.boolean("pass-redis-env").pipe(
      Options.withDescription("leave REDIS_URL and the Upstash variables in the command's environment")
    ),
    quiet: shared.quiet,
    command: Args.text({ name: "command" }).pipe(Args.withDescription("the program to run as leader, after --")),
    args: Args.text({ name: "args" }).pipe(Args.repeated, Args.withDescription("its arguments"))
  }).pipe(
    Command.withDescription(HelpDoc.blocks([
      HelpDoc.p(
        "Campaigns to lead the election, runs the command while leading (EFFECT_LOCK_TERM and " +
          "EFFECT_LOCK_IDENTITY in its environment), stops it (SIGTERM, then SIGKILL after --kill-after) the " +
          "moment leadership is lost, and campaigns again; when the command exits, it resigns and campaigns " +
          "again. --once leaves after the first term with the command's exit code. SIGINT and SIGTERM are " +
          "forwarded to the command; leadership is resigned once it has exited, and the next candidate leads."
      ),
      shared.connectionHelp,
      HelpDoc.h2("Exit codes"),
      shared.exitCodesHelp
    ])),
    Command.withHandler((o) =>
      Effect.flatMap(shared.ExitStatus, (exit) =>
        shared.withRedis(
          o,
          o.quiet,
          elect({
            id: o.id,
            identity: Option.getOrUndefined(o.identity),
            prefix: o.prefix,
            lease: o.lease,
            once: o.once,
            killAfter: o.killAfter,
            command: o.command,
            args: o.args,
            env: shared.childEnv(o.passRedisEnv),
            report: (code) => {
              exit.code = code
            }
          })
        ))
    )
  )
