/**
 * The live processes of a process group: what `run` waits for before it releases the lock. A zombie
 * (exited, not yet reaped) counts as gone: it runs nothing, and a parent that never reaps (a container
 * whose PID 1 is `run` itself) would otherwise keep the lock forever. Linux reads `/proc`; other
 * systems ask `ps`.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"

/** One `/proc/<pid>/stat` line: `pid (comm) state ppid pgrp …`; `comm` may hold spaces and parentheses. */
const parseStat = (line: string): { readonly state: string; readonly pgrp: number } | undefined => {
  const fields = line.slice(line.lastIndexOf(")") + 2).split(" ")
  const pgrp = Number(fields[2])
  return fields[0] === undefined || !Number.isInteger(pgrp) ? undefined : { state: fields[0], pgrp }
}

const isGone = (state: string) => state.startsWith("Z") || state.startsWith("X")

const fromProc = (pgid: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory("/proc")
    const members = yield* Effect.forEach(
      entries.filter((name) => /^\d+$/.test(name)),
      (pid) =>
        fs.readFileString(`/proc/${pid}/stat`).pipe(
          Effect.map((line) => {
            const stat = parseStat(line)
            return stat !== undefined && stat.pgrp === pgid && !isGone(stat.state) ? [Number(pid)] : []
          }),
          // gone between the listing and the read
          Effect.orElseSucceed(() => [])
        ),
      { concurrency: 16 }
    )
    return members.flat()
  })

const fromPs = (pgid: number) =>
  Command.make("ps", "-A", "-o", "pid=", "-o", "pgid=", "-o", "stat=").pipe(
    Command.string,
    Effect.map((out) =>
      out.split("\n").flatMap((line) => {
        const [pid, group, state = ""] = line.trim().split(/\s+/)
        return Number(group) === pgid && !isGone(state) ? [Number(pid)] : []
      })
    )
  )

/** The pids of the group's live processes. A failure to look is reported as a defect. */
export const members = (
  pgid: number
): Effect.Effect<ReadonlyArray<number>, never, FileSystem.FileSystem | CommandExecutor.CommandExecutor> =>
  Effect.orDie<ReadonlyArray<number>, unknown, FileSystem.FileSystem | CommandExecutor.CommandExecutor>(
    process.platform === "linux" ? fromProc(pgid) : fromPs(pgid)
  )
