/**
 * `npx tsx bench/rwlock.ts [rounds] [cycles]`: the ReadWriteLock's rows, run alone (not part of the full
 * `npm run bench`): on a private redis-server over TCP, from the sources (so no build is needed).
 *
 * - uncontended: one fiber, `cycles` read cycles (`withReadLock`) and write cycles (`withWriteLock`), each
 *   against the raw floor (SET NX PX + an owner-checked DEL, the full bench's floor) measured in the same
 *   round; the ratio is the median of the per-round ratios of the medians.
 * - contended: 8 reader fibers and 2 writer fibers on one id, 40 sections each of ~1 ms, in one process
 *   over one connection: sections per second; beside it the same 10 fibers under a plain `Lock` (all
 *   exclusive), so the ratio shows what sharing the reads buys.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Redacted } from "effect"
import { Redis as IORedis } from "ioredis"
import * as Lock from "../src/Lock.js"
import * as ReadWriteLock from "../src/ReadWriteLock.js"
import type { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as RedisServer from "../test/utils/RedisServer.js"

const [rounds = 3, cycles = 500] = process.argv.slice(2).map(Number)

const COMPARE_AND_DELETE =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
const ms = (x: number) => `${x.toFixed(3)} ms`

/** `cycles` timed runs of `cycle` after a tenth as many untimed ones: the durations in ms. */
const timed = <R>(cycle: Effect.Effect<unknown, unknown, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.ceil(cycles / 10); i++) yield* cycle
    const out: Array<number> = []
    for (let i = 0; i < cycles; i++) {
      const start = performance.now()
      yield* cycle
      out.push(performance.now() - start)
    }
    return out
  })

const floorCycle = (client: IORedis, sha: string, key: string) =>
  Effect.promise(async () => {
    const owner = Math.random().toString(36).slice(2)
    while ((await client.set(key, owner, "PX", 10_000, "NX")) !== "OK") await new Promise((r) => setTimeout(r, 1))
    await client.evalsha(sha, 1, key, owner)
  })

/** `readers` + `writers` fibers × `sections` sections of ~1 ms under `take(write)`: sections per second. */
const contended = <R>(
  take: (write: boolean) => (self: Effect.Effect<unknown>) => Effect.Effect<unknown, unknown, R>,
  readers: number,
  writers: number,
  sections: number
) =>
  Effect.gen(function*() {
    const section = Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
    const fiber = (write: boolean) => Effect.repeatN(take(write)(section), sections - 1)
    const start = performance.now()
    yield* Effect.all(
      [...Array.from({ length: readers }, () => fiber(false)), ...Array.from({ length: writers }, () => fiber(true))],
      { concurrency: "unbounded", discard: true }
    )
    return ((readers + writers) * sections) / ((performance.now() - start) / 1000)
  })

const program = Effect.gen(function*() {
  const server = yield* RedisServer.RedisServer
  const client = new IORedis(server.url)
  const sha = String(yield* Effect.promise(() => client.script("LOAD", COMPARE_AND_DELETE)))
  const run = <A, E>(self: Effect.Effect<A, E, Redis>) =>
    self.pipe(Effect.provide(IoRedis.layer({ url: Redacted.make(server.url) })))
  const options = { id: "bench-rw", timeout: "120 seconds" } as const
  const rows: Record<string, { p50: Array<number>; p99: Array<number>; ratio: Array<number> }> = {}
  const record = (name: string, durations: ReadonlyArray<number>, floorP50: number) => {
    const row = (rows[name] ??= { p50: [], p99: [], ratio: [] })
    row.p50.push(median(durations))
    row.p99.push(quantile(durations, 0.99))
    row.ratio.push(median(durations) / floorP50)
  }
  const throughput: Record<string, Array<number>> = { rw: [], mutex: [] }
  yield* Console.log(
    `${rounds} round(s) × ${cycles} uncontended cycles; contended: 8 readers + 2 writers × 40 sections`
  )
  for (let round = 0; round < rounds; round++) {
    const floor = yield* timed(floorCycle(client, sha, "bench-floor"))
    const floorP50 = median(floor)
    record("raw ioredis (floor)", floor, floorP50)
    yield* run(Effect.gen(function*() {
      record("ReadWriteLock.withReadLock", yield* timed(ReadWriteLock.withReadLock(options)(Effect.void)), floorP50)
      record("ReadWriteLock.withWriteLock", yield* timed(ReadWriteLock.withWriteLock(options)(Effect.void)), floorP50)
      record("Lock.withLock (for comparison)", yield* timed(Lock.withLock(options)(Effect.void)), floorP50)
      throughput.rw!.push(
        yield* contended(
          (write) =>
            write
              ? ReadWriteLock.withWriteLock({ ...options, id: `c-rw-${round}` })
              : ReadWriteLock.withReadLock({ ...options, id: `c-rw-${round}` }),
          8,
          2,
          40
        )
      )
      throughput.mutex!.push(yield* contended(() => Lock.withLock({ ...options, id: `c-mutex-${round}` }), 8, 2, 40))
    }))
  }
  yield* Effect.promise(() => client.quit())
  yield* Console.log("\n| row | p50 | p99 | × floor (median of per-round ratios) |\n| --- | ---: | ---: | --- |")
  for (const [name, row] of Object.entries(rows)) {
    yield* Console.log(
      `| ${name} | ${ms(median(row.p50))} | ${ms(median(row.p99))} | **${median(row.ratio).toFixed(2)}** (${
        row.ratio.map((r) => r.toFixed(2)).join(", ")
      }) |`
    )
  }
  const [rw, mutex] = [median(throughput.rw!), median(throughput.mutex!)]
  yield* Console.log(
    `\n| contended, 8 readers + 2 writers, ~1 ms sections | sections/s (per round) |\n| --- | --- |\n| ReadWriteLock | **${
      rw.toFixed(0)
    }** (${throughput.rw!.map((x) => x.toFixed(0)).join(", ")}) |\n| Lock (all exclusive) | ${mutex.toFixed(0)} (${
      throughput.mutex!.map((x) => x.toFixed(0)).join(", ")
    }) |\n| ReadWriteLock ÷ Lock | **${(rw / mutex).toFixed(2)}** |`
  )
})

NodeRuntime.runMain(program.pipe(Effect.provide(Layer.merge(RedisServer.layer, NodeContext.layer))))
