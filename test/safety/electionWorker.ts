/**
 * A worker OS process for the election checker (./electionChecker.ts): `Election.runAsLeader` with a
 * body that makes fenced writes while it leads, for 5–30 ms a term, then ends (and campaigns again).
 *
 *   electionWorker.ts <redisUrl> <electionId> <identity> <leaseMs> <storeKey> <logKey> [holdMs]
 *
 * `<redisUrl>` may be the Upstash REST fixture's `http://…` (the token in UPSTASH_REDIS_REST_TOKEN);
 * `<storeKey>` `-` makes no fenced writes (the hand-over benchmark); `holdMs` fixes each term's length.
 *
 * Prints one JSON line per event, times in the machine's monotonic milliseconds (`process.hrtime`,
 * CLOCK_MONOTONIC: the same clock for every process):
 *   { e: "ready", pid }
 *   { e: "start", term, t, d }   the body began as leader of `term`; `d`: its local deadline then
 *   { e: "d", term, d }          the local deadline moved (a keep-alive step)
 *   { e: "end", term, t, d, ok, stale }  the body ended (its work done, or interrupted on loss), with how
 *                                many fenced writes were accepted and how many refused as stale
 * A write is sent only while the clock is before the local deadline: a leader never acts outside its
 * lease as far as it knows (a process frozen between that look and its write is what the fence is for).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Clock, Effect, Random, Redacted } from "effect"
import { Redis as IORedis } from "ioredis"
import * as Election from "../../src/Election.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import * as Upstash from "../../src/Redis/Upstash.js"

const [url = "", id = "", identity = "", leaseArg = "1000", storeKey = "", logKey = "", holdArg] = process.argv.slice(2)
const lease = Number(leaseArg)
const writing = storeKey !== "-"

/** The fenced write: refused (0) when a newer term has written; else recorded in the log, in order. */
const FENCED = `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local term = tonumber(ARGV[1])
if term < current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1`

const mono = () => Number(process.hrtime.bigint()) / 1e6
const print = (record: Record<string, unknown>) =>
  Effect.sync(() => process.stdout.write(`${JSON.stringify(record)}\n`))

const program = Effect.gen(function*() {
  const client = writing
    ? yield* Effect.acquireRelease(
      Effect.sync(() => new IORedis(url, { maxRetriesPerRequest: null })),
      (c) => Effect.sync(() => c.disconnect())
    )
    : undefined
  // The offset from the Clock's milliseconds (the lease's deadline) to the monotonic clock's.
  const clockNanos = yield* Clock.currentTimeNanos
  const offset = mono() - Number(clockNanos) / 1e6
  const deadlineOf = (leadership: Election.Leadership) => Effect.map(leadership.validUntil, (d) => d + offset)
  yield* print({ e: "ready", pid: process.pid })

  const body = (leadership: Election.Leadership) =>
    Effect.gen(function*() {
      const { term } = leadership
      let d = yield* deadlineOf(leadership)
      yield* print({ e: "start", term, t: mono(), d })
      let ok = 0
      let stale = 0
      const until = mono() + (holdArg === undefined ? yield* Random.nextIntBetween(5, 31) : Number(holdArg))
      yield* Effect.gen(function*() {
        while (mono() < until) {
          const now = yield* deadlineOf(leadership)
          if (now !== d) yield* print({ e: "d", term, d: (d = now) })
          if (mono() >= d) return
          if (client === undefined) {
            yield* Effect.sleep(Math.max(0, Math.min(5, until - mono())))
            continue
          }
          const accepted = yield* Effect.promise(() => client.eval(FENCED, 2, storeKey, logKey, String(term)))
          if (accepted === 1) ok++
          else stale++
          yield* Effect.sleep(yield* Random.nextIntBetween(1, 4))
        }
      }).pipe(
        Effect.ensuring(Effect.suspend(() => print({ e: "end", term, t: mono(), d, ok, stale })))
      )
    })

  return yield* Election.runAsLeader({ id, identity, lease })(body)
})

const backend = url.startsWith("http")
  ? Upstash.layer({ url, token: Redacted.make(process.env.UPSTASH_REDIS_REST_TOKEN ?? "") })
  : IoRedis.layer({ url })

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(backend)))
