/**
 * `effect-lock leader`: who leads an election now, for people (one line) or scripts (`--json`).
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import { Console, Duration, Effect, Option } from "effect"
import * as Election from "effect-lock/Election"
import type { InvalidOptions, RedisError } from "effect-lock/LockError"
import type { Redis } from "effect-lock/Redis"
import type { Shared } from "./command.js"
import { escape, json } from "./escape.js"

export interface LeaderOptions {
  readonly id: string
  readonly prefix: string
  readonly json: boolean
}

/** What `leader --json` prints. */
export interface LeaderReport {
  readonly id: string
  /** The leader, or `null` when nobody leads (or leadership is being handed over). */
  readonly leader: { readonly identity: string; readonly term: number; readonly remainingMs: number } | null
  /** The latest term begun (the leader's, when there is one); 0 if nobody led within `fenceTtl` (counter gone). */
  readonly term: number
}

export const report = (
  options: Omit<LeaderOptions, "json">
): Effect.Effect<LeaderReport, RedisError | InvalidOptions, Redis> =>
  Effect.map(Election.inspect({ id: options.id, prefix: options.prefix }), ({ id, leader, term }) => ({
    id,
    leader: Option.match(leader, {
      onNone: () => null,
      onSome: (l) => ({ identity: l.identity, term: l.term, remainingMs: Duration.toMillis(l.remaining) })
    }),
    term
  }))

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const describe = (r: LeaderReport): string =>
  r.leader === null
    ? `no leader (latest term ${r.term})`
    : `${escape(r.leader.identity)}, term ${r.leader.term}, ${seconds(r.leader.remainingMs)} left`

/** Prints the leader on stdout. */
export const leader = (options: LeaderOptions): Effect.Effect<void, RedisError | InvalidOptions, Redis> =>
  Effect.flatMap(report(options), (r) => Console.log(options.json ? json(r) : describe(r)))

/** The `leader` subcommand. */
export const leaderCommand = (shared: Shared) =>
  Command.make("leader", {
    id: Options.text("id").pipe(Options.withPseudoName("ID"), Options.withDescription("the election's name")),
    json: Options.boolean("json").pipe(Options.withDescription("print one JSON object")),
    prefix: shared.prefix,
    redis: shared.redis,
    redisFile: shared.redisFile
  }).pipe(
    Command.withDescription(HelpDoc.blocks([
      HelpDoc.p("Prints who leads the election, its term and the time left on its lease (or that nobody leads)."),
      shared.connectionHelp
    ])),
    Command.withHandler((o) => shared.withRedis(o, false, Effect.as(leader(o), 0)))
  )
