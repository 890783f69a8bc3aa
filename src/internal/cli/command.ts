/**
 * The `effect-lock` command line, on `@effect/cli`: the `run` and `status` subcommands, their options,
 * and the mapping of every outcome to an exit code.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Context, Effect, Either, Logger, LogLevel, Option, Queue, type Redacted } from "effect"
import { constants } from "node:os"
import type { InvalidOptions, RedisError } from "../../LockError.js"
import type { Redis } from "../../Redis.js"
import * as connection from "./connection.js"
import * as duration from "./duration.js"
import { CliFailure, ExitCodes } from "./exitCodes.js"
import { run, type Wait } from "./run.js"
import { Signals } from "./signals.js"
import { status } from "./status.js"

/**
 * Where the exit code is left for the runtime's teardown: an interrupted program returns no value.
 * The first code set wins.
 */
export class ExitStatus extends Context.Tag("effect-lock/internal/cli/ExitStatus")<ExitStatus, {
  code: number | undefined
}>() {}

const settle = (code: number) =>
  Effect.flatMap(ExitStatus, (exit) =>
    Effect.sync(() => {
      exit.code ??= code
    }))

const exitCodesHelp = HelpDoc.descriptionList([
  [HelpDoc.getSpan(HelpDoc.p("<child's code>")), HelpDoc.p("the command ran; 128 + N when a signal N ended it")],
  [HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.usage))), HelpDoc.p("bad options or arguments; nothing was sent")],
  [HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.unavailable))), HelpDoc.p("Redis unreachable or failing")],
  [HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.leaseLost))), HelpDoc.p("the lease was lost; the command was stopped")],
  [
    HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.notAcquired))),
    HelpDoc.p("the lock was not acquired (--conflict-exit-code)")
  ],
  [HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.cannotExecute))), HelpDoc.p("the command could not be run")],
  [HelpDoc.getSpan(HelpDoc.p(String(ExitCodes.notFound))), HelpDoc.p("the command was not found")]
])

const connectionHelp = HelpDoc.p(
  "Redis: --redis <url>, else REDIS_URL, else UPSTASH_REDIS_REST_URL with UPSTASH_REDIS_REST_TOKEN. " +
    "Durations: 1500ms, 30s, 5m, 2h, or plain milliseconds."
)

/** A duration option, parsed before anything runs. */
const durationOption = (name: string, min: 0 | 1) => (self: Options.Options<string>) =>
  self.pipe(
    Options.withPseudoName("DURATION"),
    Options.mapEffect((text) =>
      Either.match(duration.parse(text, min), {
        onLeft: (message) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${message}`))),
        onRight: Effect.succeed
      })
    )
  )

const id = Options.text("id").pipe(
  Options.withPseudoName("ID"),
  Options.withDescription("the lock's name (1 to 1024 characters)")
)
const prefix = Options.text("prefix").pipe(
  Options.withPseudoName("PREFIX"),
  Options.withDefault("effect-lock:"),
  Options.withDescription("namespace of the lock's keys")
)
const redis = Options.redacted("redis").pipe(
  Options.withPseudoName("URL"),
  Options.optional,
  Options.withDescription("redis:// or rediss:// URL (default: REDIS_URL); never printed")
)
const quiet = Options.boolean("quiet").pipe(
  Options.withAlias("q"),
  Options.withDescription("print only warnings and errors on stderr")
)

/** 128 + the number of the first signal received, if any. */
const signalled = Effect.flatMap(Signals, ({ received }) =>
  Effect.map(Queue.takeAll(received), (signals) => {
    const first = Array.from(signals)[0]
    return first === undefined ? undefined : 128 + constants.signals[first]
  }))

/**
 * Runs a subcommand's work over the Redis it names and leaves its exit code. Every failure becomes an
 * exit code and one line on stderr (never with a URL or token).
 */
const withRedis = <R>(
  flag: Option.Option<Redacted.Redacted>,
  quiet: boolean,
  work: Effect.Effect<number, CliFailure | RedisError | InvalidOptions, R | Redis>
) =>
  connection.resolve(flag).pipe(
    Effect.flatMap((chosen) => Effect.provide(work, connection.layer(chosen))),
    Effect.catchTags({
      CliFailure: (e) => Effect.as(Effect.logError(e.message), e.code),
      RedisError: (e) => Effect.as(Effect.logError(e.message), ExitCodes.unavailable),
      InvalidOptions: (e) => Effect.as(Effect.logError(e.message), ExitCodes.usage)
    }),
    Effect.flatMap(settle),
    Logger.withMinimumLogLevel(quiet ? LogLevel.Warning : LogLevel.Info)
  )

const runCommand = Command.make("run", {
  id,
  lease: Options.text("lease").pipe(
    Options.withDefault("30s"),
    durationOption("lease", 1),
    Options.withDescription("lease length; it is extended every third of it while the command runs")
  ),
  wait: Options.text("wait").pipe(
    durationOption("wait", 0),
    Options.optional,
    Options.withDescription("wait at most this long for the lock (default: as long as it takes)")
  ),
  noWait: Options.boolean("no-wait").pipe(Options.withDescription("try once; if the lock is held, do not wait")),
  killAfter: Options.text("kill-after").pipe(
    Options.withDefault("10s"),
    durationOption("kill-after", 0),
    Options.withDescription("after SIGTERM (lease lost) or a forwarded signal, SIGKILL follows this long after")
  ),
  conflictExitCode: Options.integer("conflict-exit-code").pipe(
    Options.withPseudoName("CODE"),
    Options.withDefault(ExitCodes.notAcquired),
    Options.mapEffect((code) =>
      code >= 0 && code <= 255
        ? Effect.succeed(code)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p("--conflict-exit-code: expected 0 to 255")))
    ),
    Options.withDescription("exit code when the lock is not acquired")
  ),
  prefix,
  redis,
  quiet,
  command: Args.text({ name: "command" }).pipe(Args.withDescription("the program to run, after --")),
  args: Args.text({ name: "args" }).pipe(Args.repeated, Args.withDescription("its arguments"))
}).pipe(
  Command.withDescription(HelpDoc.blocks([
    HelpDoc.p(
      "Runs a command while holding the lock, keeping the lease alive, and releases it when the command exits. " +
        "The command gets EFFECT_LOCK_ID and EFFECT_LOCK_FENCE in its environment. SIGINT and SIGTERM are " +
        "forwarded to it; the lock is released once it has exited. If the lease is lost, the command gets " +
        "SIGTERM, then SIGKILL after --kill-after. Progress goes to stderr; stdout is the command's."
    ),
    connectionHelp,
    HelpDoc.h2("Exit codes"),
    exitCodesHelp
  ])),
  Command.withHandler((o) =>
    Effect.flatMap(ExitStatus, (exit) =>
      withRedis(
        o.redis,
        o.quiet,
        o.noWait && Option.isSome(o.wait)
          ? Effect.fail(new CliFailure({ code: ExitCodes.usage, message: "--wait and --no-wait exclude each other" }))
          : run({
            id: o.id,
            prefix: o.prefix,
            lease: o.lease,
            wait: o.noWait
              ? { _tag: "NoWait" }
              : Option.match(o.wait, {
                onNone: (): Wait => ({ _tag: "Forever" }),
                onSome: (millis): Wait => ({ _tag: "Timeout", millis })
              }),
            killAfter: o.killAfter,
            conflictExitCode: o.conflictExitCode,
            command: o.command,
            args: o.args,
            report: (code) => {
              exit.code ??= code
            }
          })
      ))
  )
)

const statusCommand = Command.make("status", {
  id,
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON object")),
  prefix,
  redis
}).pipe(
  Command.withDescription(HelpDoc.blocks([
    HelpDoc.p("Prints whether the lock is free or held, the time left on the lease and the current fence."),
    connectionHelp
  ])),
  Command.withHandler((o) => withRedis(o.redis, false, Effect.as(status(o), 0)))
)

/** The root command, with `run` and `status` below it. */
export const command = Command.make("effect-lock").pipe(
  Command.withDescription("Run any program under a distributed lock on Redis or Upstash."),
  Command.withSubcommands([runCommand, statusCommand])
)

/** Prints progress as `effect-lock: …` lines on stderr. */
const stderrLogger = Logger.replace(
  Logger.defaultLogger,
  Logger.withConsoleError(Logger.make(({ logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const level = LogLevel.greaterThanEqual(logLevel, LogLevel.Warning) ? `${logLevel.label.toLowerCase()}: ` : ""
    return `effect-lock: ${level}${text}`
  }))
)

/**
 * The program for one command line (`process.argv`). Its exit code is left in `ExitStatus`: rejected
 * options are the usage code; a run interrupted before its command started, 128 + the signal.
 */
export const program = (argv: ReadonlyArray<string>, version: string) =>
  Command.run(command, {
    name: "effect-lock",
    version,
    footer: HelpDoc.blocks([HelpDoc.h2("Exit codes of run"), exitCodesHelp])
  })(argv).pipe(
    Effect.catchIf(ValidationError.isValidationError, () => settle(ExitCodes.usage)),
    Effect.onInterrupt(() => Effect.flatMap(signalled, (code) => (code === undefined ? Effect.void : settle(code)))),
    Effect.provide(stderrLogger)
  )
