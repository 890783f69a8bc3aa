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
 *   worker.ts wait <redisUrl> <lockId> <fibers> <leaseMs> [calm]
 *     the liveness checker's worker (test/safety/liveness.ts): `fibers` fibers each wait for the lock
 *     again and again, with random timeouts and random interrupts (none with `calm`: a minute's
 *     timeout), hold it 0–20 ms and release it. On
 *     stdin, "hold" makes one more fiber take the lock and keep it until "release". Prints
 *     { e: "ready" | "wait" | "got" | "rel" | "gaveup", f: fiber ("H" for the holding one), t: µs }.
 *   worker.ts rw <redisUrl> <id> <fibers> <count> <leaseMs> <writeShare>
 *     the read-write checker's worker (checker.ts `runReadWrite`): `fibers` fibers each take `count`
 *     reads or writes (a write with chance `writeShare`) and print, per section, { m: "r" | "w", fence,
 *     arrive, start, end } in Redis TIME microseconds (`arrive`: just before asking), with `valid`: whether
 *     the lease was still known held once `end` was read (a SIGSTOPped holder's was not); and
 *     { stall: [from, to] } for every stall of its event loop over 150 ms (wall-clock µs).
 *   worker.ts pairs <redisUrl> <idA> <idB> <count>
 *     `count` times `Lock.withLocks({ ids: [idA, idB] })`, then prints { done: count }.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Clock, Console, Effect, Layer, Queue, Random, Schedule } from "effect"
import type { Cluster, Redis as IORedis } from "ioredis"
import * as Lock from "../../src/Lock.js"
import * as ReadWriteLock from "../../src/ReadWriteLock.js"
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

/** Wall-clock microseconds: one clock for every process of the machine (the same as Redis TIME's). */
const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
const event = (e: string, f: number | "H", extra: Record<string, unknown> = {}) =>
  Effect.sync(() => process.stdout.write(`${JSON.stringify({ e, f, t: nowMicros(), ...extra })}\n`))

const wait = (fibers: number, lease: number, calm: boolean) =>
  Effect.gen(function*() {
    const commands = yield* Queue.unbounded<string>()
    let buffered = ""
    process.stdin.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8")
      const lines = buffered.split("\n")
      buffered = lines.pop() ?? ""
      for (const line of lines) Queue.unsafeOffer(commands, line.trim())
    })
    const waiter = (f: number) =>
      Effect.gen(function*() {
        while (true) {
          const timeout = calm ? 60_000 : yield* Random.nextIntBetween(2000, 20_000)
          // One try in five is interrupted after 0–300 ms, wherever it is (in a try, or between tries).
          const interruptAfter = !calm && (yield* Random.nextIntBetween(0, 5)) === 0
            ? yield* Random.nextIntBetween(0, 300)
            : undefined
          const hold = yield* Random.nextIntBetween(0, 21)
          yield* event("wait", f)
          let held = false
          const attempt = Effect.scoped(Effect.gen(function*() {
            yield* Lock.acquire({ id, lease, timeout })
            held = true
            yield* event("got", f)
            yield* Effect.sleep(hold)
          }))
          const outcome = yield* (interruptAfter === undefined ? attempt : attempt.pipe(Effect.timeout(interruptAfter)))
            .pipe(
              Effect.either
            )
          // "rel" once the release is done (the scope closed); "gaveup" when it never got the lock.
          yield* held ? event("rel", f) : event("gaveup", f, { why: outcome._tag === "Left" ? outcome.left._tag : "?" })
          yield* Effect.sleep(yield* Random.nextIntBetween(0, 50))
        }
      }).pipe(Effect.catchAllCause((cause) => Console.error(cause)))
    const holder = Effect.gen(function*() {
      while (true) {
        const command = yield* Queue.take(commands)
        if (command !== "hold") continue
        yield* event("wait", "H")
        let held = false
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Lock.acquire({ id, lease, timeout: "60 seconds" })
          held = true
          yield* event("got", "H")
          while ((yield* Queue.take(commands)) !== "release") { /* only "release" ends the hold */ }
        })).pipe(Effect.either)
        yield* event(held ? "rel" : "gaveup", "H")
      }
    })
    yield* event("ready", 0)
    yield* Effect.all([holder, ...Array.from({ length: fibers }, (_, f) => waiter(f))], { concurrency: "unbounded" })
  })

/** The shortest event-loop stall reported by the `rw` worker (µs). */
const STALL = 150_000

const readWrite = (fibers: number, count: number, lease: number, writeShare: number) =>
  Effect.gen(function*() {
    const client = yield* raw
    // Stalls of this process's event loop (a loaded machine): a waiter stalled long enough drops out of
    // line (it stops looking), so the checker leaves its waits out of the fairness check.
    let last = nowMicros()
    const watch = setInterval(() => {
      const t = nowMicros()
      if (t - last > STALL) process.stdout.write(`${JSON.stringify({ stall: [last, t] })}\n`)
      last = t
    }, 20)
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(watch)))
    // Connected, scripts loaded: a first try is not held back by them (arrivals are read before it).
    yield* ReadWriteLock.withReadLock({ id: `${id}:warm-up` })(Effect.void)
    const section = Effect.gen(function*() {
      const write = (yield* Random.next) < writeShare
      const arrive = yield* micros(client)
      yield* Effect.scoped(Effect.gen(function*() {
        const options = { id, lease, timeout: "60 seconds" } as const
        const lease_ = write ? yield* ReadWriteLock.writeLock(options) : yield* ReadWriteLock.readLock(options)
        const start = yield* micros(client)
        yield* Effect.sleep(yield* Random.nextIntBetween(1, 5))
        const end = yield* micros(client)
        const now = Number(yield* Clock.currentTimeNanos) / 1e6
        const valid = !(yield* lease_.isLost) && now < (yield* lease_.validUntil)
        yield* Console.log(JSON.stringify({ m: write ? "w" : "r", fence: lease_.fence, arrive, start, end, valid }))
      }))
    })
    yield* Effect.all(Array.from({ length: fibers }, () => Effect.repeatN(section, count - 1)), {
      concurrency: "unbounded",
      discard: true
    })
  })

const pairs = (other: string, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* Lock.withLocks({ ids: [id, other], timeout: "30 seconds" })(Effect.void)
    yield* Console.log(JSON.stringify({ done: count }))
  })

const program = mode === "rw"
  ? readWrite(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]))
  : mode === "pairs"
  ? pairs(rest[0]!, Number(rest[1]))
  : mode === "sections"
  ? sections(rest[0]!, Number(rest[1]), Number(rest[2]))
  : mode === "wait"
  ? wait(Number(rest[0]), Number(rest[1]), rest[2] === "calm")
  : hold(Number(rest[0]))

const nodes = clusterNodes(url)
const backend = nodes === undefined ? IoRedis.layer({ url }) : IoRedis.layerCluster({ nodes }).pipe(Layer.orDie)

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(backend)))
