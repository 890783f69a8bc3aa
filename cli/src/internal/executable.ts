/**
 * Finds the command before the lock is taken, as `execvp` will: a name with a `/` is a path, any other
 * is looked up in `PATH`. Not found is 127, found but not runnable (a directory, no execute permission)
 * 126, as the shells say. The command can still fail to start later (it changed meanwhile): `run`
 * reports that the same way.
 */
import { Effect } from "effect"
import { constants } from "node:fs"
import { access, stat } from "node:fs/promises"
import { delimiter, join } from "node:path"
import { CliFailure, ExitCodes } from "./exitCodes.js"

type Found = "runnable" | "not runnable" | "missing"

const check = (path: string): Effect.Effect<Found> =>
  Effect.promise(async () => {
    try {
      const info = await stat(path)
      if (!info.isFile()) return "not runnable"
      await access(path, constants.X_OK)
      return "runnable"
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EACCES" ? "not runnable" : "missing"
    }
  })

/** Succeeds when `command` can be run with `PATH` = `path`; else the failure `run` exits with. */
export const find = (command: string, path: string | undefined): Effect.Effect<void, CliFailure> =>
  Effect.gen(function*() {
    const candidates = command.includes("/")
      ? [command]
      : (path ?? "").split(delimiter).map((dir) => join(dir === "" ? "." : dir, command))
    let seen: Found = "missing"
    for (const candidate of command === "" ? [] : candidates) {
      const found = yield* check(candidate)
      if (found === "runnable") return
      if (found === "not runnable") seen = found
    }
    return yield* seen === "missing"
      ? new CliFailure({ code: ExitCodes.notFound, message: `command not found: ${command}` })
      : new CliFailure({ code: ExitCodes.cannotExecute, message: `cannot run ${command}: not an executable file` })
  })
