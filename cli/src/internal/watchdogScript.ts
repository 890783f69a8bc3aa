/**
 * The watchdog: a tiny Node process that `run` starts as the leader of a new process group (its own
 * session), and that starts the command below it, in the same group. It is the part of `run` that lives
 * in the command's group, so that the group never outlives the lease, whatever happens to `run`:
 *
 * - `run` dies (SIGKILL, the OOM killer, a crash): the socket to `run` closes; the watchdog sends SIGTERM
 *   to the group, then SIGKILL after `killAfter`, or at the lease's deadline minus `margin`, whichever
 *   is first.
 * - `run` stops (SIGSTOP) or hangs: no newer deadline arrives; at the last deadline minus `margin` the
 *   watchdog sends SIGKILL to the group (itself included), and tells `run` (`expired`), for when it
 *   resumes.
 *
 * It ignores the signals sent to the group (they are the command's), relays the command's exit to `run`
 * and stays until `run` says `release` (the group's other processes are gone) or kills the group.
 *
 * Protocol, one line per message on a Unix socket: `run` → watchdog `deadline <ms>` (the lease's deadline
 * on the system's monotonic clock, `process.hrtime`, which every process of the machine shares) and
 * `release`; watchdog → `run`: `started <pid>`, `error <errno code>`, `exited <code> <signal>`, `expired`.
 *
 * The function is serialised with `String(watchdog)` into a script file, and called there with
 * `require` and {@link onLines}: it uses nothing but `process`, its arguments and what it loads (a
 * bundler may rename its locals, or rewrite a `require` it sees), and is plain JavaScript once its types
 * are erased.
 */
import type * as ChildProcess from "node:child_process"
import type * as Net from "node:net"

/**
 * Calls `f` with each line `socket` receives. Both ends use it: `run` imports it, and the script gets it
 * serialised beside {@link watchdog}.
 */
export function onLines(socket: Net.Socket, f: (line: string) => void): void {
  let buffer = ""
  socket.setEncoding("utf8")
  socket.on("data", (chunk: string) => {
    buffer += chunk
    let end: number
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end)
      buffer = buffer.slice(end + 1)
      f(line)
    }
  })
}

export function watchdog(load: (id: string) => unknown, lines: typeof onLines): void {
  const net = load("node:net") as typeof Net
  const { spawn } = load("node:child_process") as typeof ChildProcess
  const [socketPath = "", killAfterText = "0", marginText = "0", command = "", ...args] = process.argv.slice(2)
  const killAfter = Number(killAfterText)
  const margin = Number(marginText)
  const now = () => Number(process.hrtime.bigint() / 1_000_000n)
  let deadline = Infinity
  let started = false
  let orphaned = false
  let expiry: ReturnType<typeof setTimeout> | undefined
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-process.pid, signal)
    } catch {
      // the group is gone
    }
  }
  // Signals to the group are the command's: this process outlives them and reports the command's end.
  for (
    const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTSTP", "SIGTTIN", "SIGTTOU"]
  ) {
    process.on(signal, () => undefined)
  }
  const socket = net.connect(socketPath)
  const send = (line: string) => {
    if (!socket.destroyed) socket.write(`${line}\n`)
  }
  const onDeadline = () => {
    const left = deadline - margin - now()
    if (left > 0) {
      expiry = setTimeout(onDeadline, left)
      return
    }
    send("expired")
    killGroup("SIGKILL")
  }
  const onOrphaned = () => {
    if (orphaned) return
    orphaned = true
    if (!started) process.exit(1)
    killGroup("SIGTERM")
    clearTimeout(expiry)
    setTimeout(() => killGroup("SIGKILL"), Math.max(0, Math.min(killAfter, deadline - margin - now())))
  }
  const start = () => {
    started = true
    const child = spawn(command, args, { stdio: "inherit" })
    child.on("error", (error: NodeJS.ErrnoException) => send(`error ${error.code ?? "EUNKNOWN"}`))
    child.on("spawn", () => send(`started ${child.pid}`))
    child.on("exit", (code, signal) => send(`exited ${code ?? ""} ${signal ?? ""}`))
  }
  lines(socket, (line) => {
    const [word, value] = line.split(" ")
    if (word === "release") process.exit(0)
    if (word === "deadline") {
      deadline = Number(value)
      clearTimeout(expiry)
      if (!orphaned) onDeadline()
      if (!started) start()
    }
  })
  socket.on("error", onOrphaned)
  socket.on("close", onOrphaned)
}
