/**
 * Fault hooks for the Upstash REST fixture (`POST /` and `POST /pipeline`, which `@upstash/redis` uses
 * by default): a test arms a fault for the requests with a matching command, and the fixture applies it
 * around running them.
 *
 * - `Hang`: the request is never answered (until `clear`, which then answers 503), nor run.
 * - `DelayReply(ms)`: run at once, answered `ms` later (a command Redis refused passes through at once).
 * - `HoldReply`: run at once, answered when the test calls `release` (a command Redis refused passes
 *   through at once): a late answer whose moment the test chooses.
 * - `BadGatewayAfterApply`: run; if Redis accepted it all, the answer is lost: HTTP 502 with an HTML body
 *   (what a proxy in front of Upstash sends). A command Redis refused (e.g. NOSCRIPT) passes through
 *   without using the fault up.
 */
import { HttpServerResponse } from "@effect/platform"
import { Deferred, Effect, FiberId } from "effect"

export type Command = ReadonlyArray<string | number>

export type Fault =
  | { readonly _tag: "Hang" }
  | { readonly _tag: "DelayReply"; readonly millis: number }
  | { readonly _tag: "HoldReply" }
  | { readonly _tag: "BadGatewayAfterApply" }

export const Hang: Fault = { _tag: "Hang" }
export const DelayReply = (millis: number): Fault => ({ _tag: "DelayReply", millis })
export const HoldReply: Fault = { _tag: "HoldReply" }
export const BadGatewayAfterApply: Fault = { _tag: "BadGatewayAfterApply" }

interface Armed {
  readonly match: (command: Command) => boolean
  readonly fault: Fault
  /** Requests left to affect. */
  times: number
}

export interface Faults {
  /** Arms `fault` for the next `times` (default 1; `Infinity`: all) requests whose command matches. */
  readonly on: (match: (command: Command) => boolean, fault: Fault, options?: { readonly times?: number }) => void
  /** Disarms everything and answers the hung requests (503). */
  readonly clear: Effect.Effect<void>
  /** Sends the answers held by `HoldReply` so far. */
  readonly release: Effect.Effect<void>
  /**
   * For the fixture: `respond` runs the request's commands and builds the response, saying whether Redis
   * accepted them all. A request is affected when any of its commands matches.
   */
  readonly around: (
    commands: ReadonlyArray<Command>,
    respond: Effect.Effect<
      { readonly response: HttpServerResponse.HttpServerResponse; readonly applied: boolean },
      unknown
    >
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
}

/** Matches EVAL / EVALSHA commands that name a key containing `text` (e.g. a lock id). */
export const scriptOn = (text: string) => (command: Command): boolean =>
  /^EVAL(SHA)?$/i.test(String(command[0])) && command.slice(3).some((part) => String(part).includes(text))

export const make = (): Faults => {
  let armed: Array<Armed> = []
  let released = Deferred.unsafeMake<void>(FiberId.none)
  let held = Deferred.unsafeMake<void>(FiberId.none)
  const find = (commands: ReadonlyArray<Command>): Armed | undefined =>
    armed.find((a) => a.times > 0 && commands.some(a.match))
  return {
    on: (match, fault, options = {}) => void armed.push({ match, fault, times: options.times ?? 1 }),
    clear: Effect.suspend(() => {
      armed = []
      const hung = released
      released = Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.succeed(hung, undefined)
    }),
    release: Effect.suspend(() => {
      const answers = held
      held = Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.succeed(answers, undefined)
    }),
    around: (commands, respond) =>
      Effect.suspend(() => {
        const found = find(commands)
        const response = Effect.map(respond, (r) => r.response)
        if (found === undefined) return response
        switch (found.fault._tag) {
          case "Hang":
            found.times--
            return Effect.zipRight(
              Deferred.await(released),
              HttpServerResponse.json({ error: "fixture: released" }, { status: 503 })
            )
          case "DelayReply": {
            const millis = found.fault.millis
            return Effect.flatMap(respond, ({ applied, response }) => {
              if (!applied) return Effect.succeed(response)
              found.times--
              return Effect.as(Effect.sleep(millis), response)
            })
          }
          case "HoldReply": {
            const answers = held
            return Effect.flatMap(respond, ({ applied, response }) => {
              if (!applied) return Effect.succeed(response)
              found.times--
              return Effect.as(Deferred.await(answers), response)
            })
          }
          case "BadGatewayAfterApply":
            return Effect.map(respond, ({ applied, response }) => {
              if (!applied) return response
              found.times--
              return HttpServerResponse.text("<html><body><h1>502 Bad Gateway</h1></body></html>", {
                status: 502,
                contentType: "text/html"
              })
            })
        }
      })
  }
}
