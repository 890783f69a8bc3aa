/**
 * A worker OS process for the reliability tests. Prints one JSON line per event on stdout.
 *
 * `<redisUrl>` is `redis://…`, or `redis+cluster://host:port,host:port,…` for a Redis Cluster.
 *
 *   worker.ts sections <redisUrl> <lockId> <counterKey> <count> <leaseMs>
 *     `count` critical sections under the lock; each reads the counter, waits 0–3 ms, writes it + 1
 *     (a lost update if two ever overlap), and prints { fence, start, end } in Redis TIME microseconds.
 *   worker.ts hold <redisUrl> <lockId> <leaseMs>
 *     acquires the lock, prints { acquired: fence }, and holds it until the process is stopped.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Random, Schedule } from "effect"
import type { Cluster, Redis as IORedis } from "ioredis"
import * as Lock from "../../src/Lock.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import { clusterNodes, plainClient } from "./checker.js"

const [mode, url = "", id = "", ...rest] = process.argv.slice(2)

const raw = Effect.acquireRelease(Effect.sync(() => plainClient(url)), (c) => Effect.promise(() => c.quit()))
const micros = (c: IORedis | Cluster) =>
  Effect.map(Effect.promise(() => c.time()), ([s, us]) => Number(s) * 1_000_000 + Number(us))

const sections = (counterKey: string, count: number, lease: number) =>
  Effect.gen(function*() {
    const client = yield* raw
    const retry = Schedule.spaced("2 millis").pipe(Schedule.jittered)
    for (let i = 0; i < count; i++) {
      yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Lock.acquire({ id, lease, timeout: "120 seconds", retry })
        const start = yield* micros(client)
        const value = Number(yield* Effect.promise(() => client.get(counterKey)))
        yield* Effect.sleep(yield* Random.nextIntBetween(0, 4))
        yield* Effect.promise(() => client.set(counterKey, String(value + 1)))
        const end = yield* micros(client)
        yield* Console.log(JSON.stringify({ fence: held.fence, start, end }))
      }))
    }
  })

const hold = (lease: number) =>
  Effect.gen(function*() {
    const held = yield* Lock.acquire({ id, lease })
    yield* Console.log(JSON.stringify({ acquired: held.fence }))
    return yield* Effect.never
  })

const program = mode === "sections"
  ? sections(rest[0]!, Number(rest[1]), Number(rest[2]))
  : hold(Number(rest[0]))

const nodes = clusterNodes(url)
const backend = nodes === undefined ? IoRedis.layer({ url }) : IoRedis.layerCluster({ nodes }).pipe(Layer.orDie)

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(backend)))
