/**
 * `effect-lock leader`: who leads an election now, for people (one line) or scripts (`--json`).
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import { Console, Effect } from "effect"
import { InvalidOptions, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { look } from "../election/election.js"
import { resolve } from "../election/options.js"
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
  /** The latest term begun (the leader's, when there is one); 0 if nobody ever led. */
  readonly term: number
}

export const report = (
  options: Omit<LeaderOptions, "json">
): Effect.Effect<LeaderReport, RedisError | InvalidOptions, Redis> =>
  Effect.gen(function*() {
    const election = resolve({ id: options.id, prefix: options.prefix })
    if (election instanceof InvalidOptions) return yield* election
    const reply = yield* look(election, yield* Redis)
    const leader = reply.leader === undefined
      ? null
      : { identity: reply.leader.identity, term: reply.leader.term, remainingMs: reply.leader.remaining }
    return { id: options.id, leader, term: reply.fence }
  })

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
