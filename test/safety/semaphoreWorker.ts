/**
 * A worker OS process for the semaphore's multi-process tests. Prints one JSON line per event on stdout.
 *
 *   semaphoreWorker.ts sections <redisUrl> <id> <counterKey> <count> <leaseMs> <permits>
 *     `count` sections, three at a time, each under one permit: INCR the counter (every section counts once),
 *     wait 1–5 ms, and print { fence, start, end } in Redis TIME microseconds.
 *   semaphoreWorker.ts hold <redisUrl> <id> <leaseMs> <permits> <n>
 *     takes `n` permits, prints { acquired: fence }, and holds them until the process is stopped.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Random, Schedule } from "effect"
import { Redis as IORedis } from "ioredis"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import * as Semaphore from "../../src/Semaphore.js"

const [mode, url = "", id = "", ...rest] = process.argv.slice(2)

const raw = Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit()))
const micros = (c: IORedis) =>
  Effect.map(Effect.promise(() => c.time()), ([s, us]) => Number(s) * 1_000_000 + Number(us))

const sections = (counterKey: string, count: number, lease: number, permits: number) =>
  Effect.gen(function*() {
    const client = yield* raw
    const sem = yield* Semaphore.make({ id, permits, lease })
    const retry = Schedule.spaced("2 millis").pipe(Schedule.jittered)
    // Three fibers per process: a process contends with itself as well as with the others.
    const section = Effect.scoped(Effect.gen(function*() {
      const held = yield* sem.take(1, { timeout: "60 seconds", retry })
      const start = yield* micros(client)
      yield* Effect.promise(() => client.incr(counterKey))
      yield* Effect.sleep(yield* Random.nextIntBetween(1, 6))
      const end = yield* micros(client)
      yield* Console.log(JSON.stringify({ fence: held.fence, start, end }))
    }))
    yield* Effect.all(Array.from({ length: count }, () => section), { concurrency: 3, discard: true })
  })

const hold = (lease: number, permits: number, n: number) =>
  Effect.gen(function*() {
    const sem = yield* Semaphore.make({ id, permits, lease })
    const held = yield* sem.take(n)
    yield* Console.log(JSON.stringify({ acquired: held.fence }))
    return yield* Effect.never
  })

const program = mode === "sections"
  ? sections(rest[0]!, Number(rest[1]), Number(rest[2]), Number(rest[3]))
  : hold(Number(rest[0]), Number(rest[1]), Number(rest[2]))

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(IoRedis.layer({ url }))))
