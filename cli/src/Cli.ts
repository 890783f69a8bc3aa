/**
 * The `effect-lock` command: run any program under a lock, from cron, deploy scripts or container
 * entry points, on Redis (`--redis` / `REDIS_URL`, through ioredis) or Upstash
 * (`UPSTASH_REDIS_REST_URL` + `UPSTASH_REDIS_REST_TOKEN`).
 *
 * ```sh
 * effect-lock run --id nightly-report --lease 30s --no-wait -- ./report.sh
 * effect-lock status --id nightly-report --json
 * ```
 *
 * `run` finds the command, acquires the lock, runs the command in a process group of its own with
 * `EFFECT_LOCK_ID` and `EFFECT_LOCK_FENCE` in its environment (and without the Redis credentials), keeps
 * the lease alive while it runs and releases it once every process of the group is gone. Signals to the
 * command line are forwarded to the group; a lost lease stops it (SIGTERM, then SIGKILL after
 * `--kill-after`); a watchdog in the group kills it before the lease can expire if `run` itself is
 * killed or stopped (docs/cli.md). Exit codes are in {@link ExitCodes}.
 *
 * This module is the entry point of the `effect-lock` bin (Node only), exported for embedding the command
 * in another command line. Importing it loads `@effect/cli` and `@effect/platform-node`; programs that
 * only want locks import `Lock`, which loads neither.
 *
 * @example
 * import { Effect } from "effect"
 * import * as Cli from "effect-lock-cli"
 *
 * // `effect-lock status --id nightly-report`, in process; the exit code comes back
 * const code = Cli.run(["node", "effect-lock", "status", "--id", "nightly-report"], "0.1.0")
 * Effect.runPromise(code).then((code) => process.exitCode = code)
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Exit, Layer } from "effect"
import { command as rootCommand, ExitStatus, program } from "./internal/command.js"
import { ExitCodes as codes } from "./internal/exitCodes.js"
import * as Scrub from "./internal/scrub.js"
import * as Signals from "./internal/signals.js"

/**
 * The exit codes of `effect-lock run`, beside the child's own (or 128 + the signal that ended it).
 *
 * | code | meaning |
 * | --- | --- |
 * | 64 | bad options or arguments (`EX_USAGE`); nothing was sent to Redis |
 * | 69 | Redis unreachable or failing (`EX_UNAVAILABLE`) |
 * | 70 | the lease was lost while the command ran; it was stopped |
 * | 75 | the lock was not acquired (`EX_TEMPFAIL`, like `flock -E 75`); `--conflict-exit-code` changes it |
 * | 126 | the command could not be run (the lock was not taken) |
 * | 127 | the command was not found (the lock was not taken) |
 * | 130 | SIGINT ended the run or the command (128 + 2) |
 * | 143 | SIGTERM ended the run or the command (128 + 15) |
 *
 * @since 0.1.0
 * @category command line
 */
export const ExitCodes: typeof codes = codes

/**
 * The `@effect/cli` command (`run` and `status`), for embedding in another command line.
 *
 * @since 0.1.0
 * @category command line
 */
export const command = rootCommand

/**
 * Runs the command line `argv` (as `process.argv`: node, script, arguments…) and returns its exit code.
 * SIGINT and SIGTERM are watched while it runs.
 *
 * @since 0.1.0
 * @category command line
 */
export const run = (argv: ReadonlyArray<string>, version: string): Effect.Effect<number> =>
  Effect.suspend(() => {
    const exit = { code: undefined as number | undefined }
    return Effect.map(provide(program(argv, version), exit), () => exit.code ?? 0)
  })

const provide = <A, E>(
  self: Effect.Effect<A, E, NodeContext.NodeContext | Signals.Signals | ExitStatus>,
  exit: ExitStatus["Type"]
) => Effect.provide(self, Layer.mergeAll(NodeContext.layer, Signals.layer, Layer.succeed(ExitStatus, exit)))

/**
 * The entry point of the `effect-lock` binary: runs `process.argv` with `NodeRuntime.runMain`, so that
 * SIGINT and SIGTERM interrupt the program and its finalizers run (the child is stopped, the lock
 * released) before the process exits with the code of the run. A password in `--redis` is first hidden
 * from `ps` and `/proc/<pid>/cmdline`, where the platform allows.
 *
 * @since 0.1.0
 * @category command line
 */
export const main = (version: string): void => {
  Scrub.hideSecrets()
  const exit = { code: undefined as number | undefined }
  NodeRuntime.runMain(provide(program(process.argv, version), exit), {
    disablePrettyLogger: true,
    teardown: (result, onExit) => onExit(exit.code ?? (Exit.isSuccess(result) ? 0 : 1))
  })
}
