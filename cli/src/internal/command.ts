/**
 * The `effect-lock` command line, on `@effect/cli`: the `run` and `status` subcommands, their options,
 * and the mapping of every outcome to an exit code.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import {
  Console,
  Context,
  DefaultServices,
  Effect,
  Either,
  FiberRefs,
  HashMap,
  Logger,
  LogLevel,
  Option,
  Queue,
  Redacted
} from "effect"
import type { InvalidOptions, RedisError } from "effect-lock/LockError"
import type { Redis } from "effect-lock/Redis"
import { constants } from "node:os"
import * as connection from "./connection.js"
import * as duration from "./duration.js"
import { electCommand } from "./elect.js"
import { escape } from "./escape.js"
import { CliFailure, ExitCodes } from "./exitCodes.js"
import { leaderCommand } from "./leader.js"
import * as output from "./output.js"
import { run, type Wait } from "./run.js"
import * as scrub from "./scrub.js"
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

const exitCode = (code: string | number, meaning: string) =>
  [HelpDoc.getSpan(HelpDoc.p(String(code))), HelpDoc.p(meaning)] as [Span.Span, HelpDoc.HelpDoc]

/** Each exit code of `run`, once (printed at the end of every `--help`). */
const exitCodesHelp = HelpDoc.descriptionList([
  exitCode("<command's code>", "the command ran and exited with it"),
  exitCode(ExitCodes.usage, "bad options or arguments; nothing was sent to Redis"),
  exitCode(ExitCodes.unavailable, "Redis unreachable or failing"),
  exitCode(ExitCodes.leaseLost, "the lease was lost; the command's process group was stopped"),
  exitCode(ExitCodes.notAcquired, "the lock was not acquired (change it with --conflict-exit-code)"),
  exitCode(ExitCodes.cannotExecute, "the command could not be run (not executable); the lock was not taken"),
  exitCode(ExitCodes.notFound, "the command was not found; the lock was not taken"),
  exitCode(ExitCodes.interrupted, "SIGINT (Ctrl-C) ended run, or the command (128 + 2)"),
  exitCode(ExitCodes.terminated, "SIGTERM ended run, or the command (128 + 15)"),
  exitCode("128 + N", "another signal N ended the command (137: SIGKILL)")
])

const connectionHelp = HelpDoc.p(
  "Redis: --redis <url>, else --redis-file <path> (a file holding the URL), else REDIS_URL, else " +
    "UPSTASH_REDIS_REST_URL with UPSTASH_REDIS_REST_TOKEN. A password in --redis is visible to other " +
    "users (ps) until run hides it: prefer REDIS_URL or --redis-file. " +
    `Durations: ${duration.spelling}; a bare number is refused, except 0.`
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
  Options.withDescription("namespace of the lock's keys (default: effect-lock:)")
)
const redis = Options.redacted("redis").pipe(
  Options.withPseudoName("URL"),
  Options.optional,
  Options.withDescription("redis:// or rediss:// URL (default: REDIS_URL); never printed, hidden from ps")
)
const redisFile = Options.file("redis-file").pipe(
  Options.withPseudoName("PATH"),
  Options.optional,
  Options.withDescription("a file whose first line is the redis:// or rediss:// URL")
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
  source: { readonly redis: Option.Option<Redacted.Redacted>; readonly redisFile: Option.Option<string> },
  quiet: boolean,
  work: Effect.Effect<number, CliFailure | RedisError | InvalidOptions, R | Redis>
) =>
  warnOfPassword(source.redis).pipe(
    Effect.zipRight(connection.resolve(source.redis, source.redisFile)),
    Effect.flatMap((chosen) => Effect.provide(work, connection.layer(chosen))),
    Effect.catchTags({
      CliFailure: (e) => Effect.as(Effect.logError(e.message), e.code),
      RedisError: (e) => Effect.as(Effect.logError(e.message), ExitCodes.unavailable),
      InvalidOptions: (e) => Effect.as(Effect.logError(e.message), ExitCodes.usage)
    }),
    Effect.flatMap(settle),
    Logger.withMinimumLogLevel(quiet ? LogLevel.Warning : LogLevel.Info)
  )

/** A password in argv can be read by other users until the bin hides it (scrub.ts). */
const warnOfPassword = (flag: Option.Option<Redacted.Redacted>) =>
  Option.isSome(flag) && scrub.hasPassword(Redacted.value(flag.value))
    ? Effect.logWarning(
      "a password given with --redis can be seen by other users (ps) until run hides it, and stays in " +
        "your shell's history: use REDIS_URL or --redis-file"
    )
    : Effect.void

/** The command's environment: this one's, without the variables credentials come from (unless asked). */
const childEnv = (passRedisEnv: boolean): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (
      value !== undefined && (passRedisEnv || !(connection.credentialVariables as ReadonlyArray<string>).includes(name))
    ) {
      env[name] = value
    }
  }
  return env
}

const runCommand = Command.make("run", {
  id,
  lease: Options.text("lease").pipe(
    Options.withDefault("30s"),
    durationOption("lease", 1),
    Options.withDescription("lease length (default: 30s); it is extended every third of it while the command runs")
  ),
  wait: Options.text("wait").pipe(
    durationOption("wait", 0),
    Options.optional,
    Options.withDescription("wait at most this long for the lock (default: as long as it takes)")
  ),
  noWait: Options.boolean("no-wait").pipe(
    Options.withDescription("try once; if the lock is held, exit (75) at once, without waiting")
  ),
  killAfter: Options.text("kill-after").pipe(
    Options.withDefault("10s"),
    durationOption("kill-after", 0),
    Options.withDescription(
      "SIGKILL to the command's process group this long after SIGTERM (lease lost, command exited leaving " +
        "processes behind) or a forwarded signal (default: 10s); never later than the lease's end"
    )
  ),
  conflictExitCode: Options.integer("conflict-exit-code").pipe(
    Options.withPseudoName("CODE"),
    Options.withDefault(ExitCodes.notAcquired),
    Options.mapEffect((code) =>
      code >= 0 && code <= 255
        ? Effect.succeed(code)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p("--conflict-exit-code: expected 0 to 255")))
    ),
    Options.withDescription("exit code when the lock is not acquired (default: 75)")
  ),
  prefix,
  redis,
  redisFile,
  passRedisEnv: Options.boolean("pass-redis-env").pipe(
    Options.withDescription("pass REDIS_URL and UPSTASH_REDIS_REST_* on to the command (default: removed)")
  ),
  quiet,
  command: Args.text({ name: "command" }).pipe(Args.withDescription("the program to run, after --")),
  args: Args.text({ name: "args" }).pipe(Args.repeated, Args.withDescription("its arguments"))
}).pipe(
  Command.withDescription(HelpDoc.blocks([
    HelpDoc.p(
      "Runs a command in a process group of its own while holding the lock, keeping the lease alive, and " +
        "releases the lock once every process of the group is gone. The command gets EFFECT_LOCK_ID and " +
        "EFFECT_LOCK_FENCE in its environment, not the Redis credentials (see --pass-redis-env). SIGINT and " +
        "SIGTERM are forwarded to the group; SIGTSTP (Ctrl-Z) is ignored. If the lease is lost, the group gets " +
        "SIGTERM, then SIGKILL after --kill-after. A watchdog in the group kills it before the lease can " +
        "expire if run itself dies or stops. Progress goes to stderr; stdout is the command's."
    ),
    connectionHelp
  ])),
  Command.withHandler((o) =>
    Effect.flatMap(ExitStatus, (exit) =>
      withRedis(
        o,
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
            env: childEnv(o.passRedisEnv),
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
  redis,
  redisFile
}).pipe(
  Command.withDescription(HelpDoc.blocks([
    HelpDoc.p("Prints whether the lock is free or held, the time left on the lease and the current fence."),
    connectionHelp
  ])),
  Command.withHandler((o) => withRedis(o, false, Effect.as(status(o), 0)))
)

/** What the commands defined in files of their own (`elect`, `leader`) share with these. */
const shared = {
  prefix,
  redis,
  redisFile,
  quiet,
  durationOption,
  withRedis,
  childEnv,
  ExitStatus,
  connectionHelp,
  exitCodesHelp
}
export type Shared = typeof shared

/** The root command, with `run` and `status` below it. */
export const command = Command.make("effect-lock").pipe(
  Command.withDescription("Run any program under a distributed lock on Redis or Upstash."),
  Command.withSubcommands([runCommand, statusCommand, electCommand(shared), leaderCommand(shared)])
)

/**
 * Prints progress as `effect-lock: …` lines on stderr, escaped. The library's own `lease lost (…)`
 * warning is left out: `run` says why, in words (taken by another owner, expired, unconfirmed).
 */
const stderrLogger = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ annotations, context, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    if (text.startsWith("lease lost (") && HashMap.has(annotations, "lock.id")) return
    const level = LogLevel.greaterThanEqual(logLevel, LogLevel.Warning) ? `${logLevel.label.toLowerCase()}: ` : ""
    const console = Context.get(FiberRefs.getOrDefault(context, DefaultServices.currentServices), Console.Console)
    console.unsafe.error(`effect-lock: ${level}${escape(text)}`)
  })
)

/**
 * The program for one command line (`process.argv`). Its exit code is left in `ExitStatus`: rejected
 * options are the usage code; a run interrupted before its command started, 128 + the signal.
 */
export const program = (argv: ReadonlyArray<string>, version: string) =>
  Command.run(command, {
    name: "effect-lock",
    version,
    footer: HelpDoc.blocks([HelpDoc.h2("Exit codes of effect-lock run"), exitCodesHelp])
  })(argv).pipe(
    Effect.catchIf(ValidationError.isValidationError, () => settle(ExitCodes.usage)),
    Effect.onInterrupt(() => Effect.flatMap(signalled, (code) => (code === undefined ? Effect.void : settle(code)))),
    Effect.provide(stderrLogger),
    output.provide
  )
