/**
 * `run`'s side of the watchdog (see watchdogScript.ts): starts it as the leader of the command's process
 * group, talks to it over a Unix socket in a private temporary directory (mode 0700, removed as soon as
 * the watchdog has connected), and hands `run` what it says as events.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Clock, Data, Deferred, Effect, FiberId, Queue, type Scope } from "effect"
import * as net from "node:net"
import { constants } from "node:os"
import { join } from "node:path"
import { CliFailure } from "./exitCodes.js"
import { onLines, watchdog } from "./watchdogScript.js"

/** What the watchdog reports. `Closed`: it is gone (it exited, or killed its group). */
export type Event = Data.TaggedEnum<{
  Started: { readonly pid: number }
  SpawnFailed: { readonly errno: string }
  /** The command's exit status, as a shell reports it: its code, or 128 + the signal that ended it. */
  Exited: { readonly status: number }
  /** The watchdog killed the group: no newer deadline came before the last one (minus the margin). */
  Expired: {}
  Closed: {}
}>
export const Event = Data.taggedEnum<Event>()

export interface Watchdog {
  /** The process group of the watchdog, the command and whatever the command starts. */
  readonly pgid: number
  readonly events: Queue.Dequeue<Event>
  /** Tells the watchdog the lease's deadline, in the service timer's milliseconds (`Clock`). */
  readonly beat: (deadline: number) => Effect.Effect<void>
  /** Sends `signal` to the whole group (the watchdog ignores all but SIGKILL). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Lets the watchdog go and waits for its exit: for when the rest of the group is gone. */
  readonly release: Effect.Effect<void>
  /** Waits for the watchdog's exit. */
  readonly exited: Effect.Effect<void>
}

export interface StartOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** The command's whole environment (the watchdog passes its own on). */
  readonly env: Record<string, string>
  readonly killAfter: number
  readonly margin: number
}

const decode = (line: string): Event | undefined => {
  const [word, a = "", b = ""] = line.split(" ")
  switch (word) {
    case "started":
      return Event.Started({ pid: Number(a) })
    case "error":
      return Event.SpawnFailed({ errno: a })
    case "exited":
      return Event.Exited({
        status: a !== "" ? Number(a) : 128 + (constants.signals[b as NodeJS.Signals] ?? 0)
      })
    case "expired":
      return Event.Expired()
  }
  return undefined
}

/** Listens on `path`; the first connection, or a failure to listen. */
const listen = (path: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: net.Server; readonly accepted: Deferred.Deferred<net.Socket> }, CliFailure>(
      (resume) => {
        const accepted = Deferred.unsafeMake<net.Socket>(FiberId.none)
        const server = net.createServer((socket) => {
          server.close()
          Deferred.unsafeDone(accepted, Effect.succeed(socket))
        })
        server.once("error", (error) =>
          resume(Effect.fail(new CliFailure({ code: 1, message: `cannot start the watchdog: ${error.message}` }))))
        server.listen(path, () =>
          resume(Effect.succeed({ server, accepted })))
      }
    ),
    ({ server }) =>
      Effect.sync(() => server.close())
  )

/**
 * The milliseconds of the system's monotonic clock (`process.hrtime`, shared by every process) at the
 * service timer's instant `at`: the one place where the two clocks meet.
 */
const toMonotonic = (at: number) =>
  Effect.map(Clock.currentTimeNanos, (nanos) => {
    const offset = Number(process.hrtime.bigint() - nanos) / 1e6
    return Math.floor(at + offset)
  })

/** Starts the watchdog and, through it, the command; the group is SIGKILLed if the scope closes first. */
export const start = (
  options: StartOptions
): Effect.Effect<Watchdog, CliFailure, Scope.Scope | CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const failure = (message: string) => () =>
      new CliFailure({ code: 1, message: `cannot start the watchdog: ${message}` })
    const dir = yield* Effect.acquireRelease(
      fs.makeTempDirectory({ prefix: "effect-lock-" }).pipe(Effect.mapError(failure("no temporary directory"))),
      (dir) => Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
    )
    const script = join(dir, "watchdog.cjs")
    const socketPath = join(dir, "socket")
    yield* fs.writeFileString(script, `"use strict";\n(${String(watchdog)})(require, ${String(onLines)})\n`).pipe(
      Effect.mapError(failure("cannot write its script"))
    )
    const { accepted } = yield* listen(socketPath)
    const proc = yield* Command.make(
      process.execPath,
      script,
      socketPath,
      String(options.killAfter),
      String(options.margin),
      options.command,
      ...options.args
    ).pipe(
      Command.env(options.env, { extendEnv: false }),
      Command.stdin("inherit"),
      Command.stdout("inherit"),
      Command.stderr("inherit"),
      Command.start,
      Effect.mapError((error) => failure(error.message)())
    )
    const pgid = proc.pid
    const signal = (signal: NodeJS.Signals) =>
      Effect.sync(() => {
        try {
          process.kill(-pgid, signal)
        } catch {
          // the group is gone
        }
      })
    const exited = Effect.ignore(proc.exitCode)
    // Whatever ends the scope, the group does not outlive it (the platform's own finalizer would send
    // SIGTERM, which the watchdog ignores, and wait).
    yield* Effect.addFinalizer(() => Effect.zipRight(signal("SIGKILL"), exited))

    const events = yield* Queue.unbounded<Event>()
    const socket = yield* Effect.raceFirst(
      Deferred.await(accepted),
      Effect.zipRight(exited, Effect.fail(failure("it exited before it connected")()))
    )
    // The script is loaded and the socket connected: nothing of the directory is needed any more.
    yield* Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    onLines(socket, (line) => {
      const event = decode(line)
      if (event !== undefined) events.unsafeOffer(event)
    })
    socket.on("error", () => undefined)
    socket.on("close", () => void events.unsafeOffer(Event.Closed()))

    const write = (line: string) =>
      Effect.sync(() => {
        if (!socket.destroyed) socket.write(`${line}\n`)
      })
    return {
      pgid,
      events,
      beat: (deadline) => Effect.flatMap(toMonotonic(deadline), (at) => write(`deadline ${at}`)),
      signal,
      release: Effect.zipRight(write("release"), exited),
      exited
    } satisfies Watchdog
  })
