/**
 * `npm run demo`: effect-lock in a few seconds, on the embedded store (nothing to install).
 * With REDIS_URL set, the contention runs in four OS processes against that Redis instead.
 */
import { Command } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Deferred, Duration, Effect, Option, Ref, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import { Election, Lock, ReadWriteLock, Semaphore } from "../src/index.js"
import { randomToken } from "../src/internal/token.js"
import * as Memory from "../src/Redis/Memory.js"
import { contend } from "./contend.js"

const title = (text: string) => Console.log(`\n── ${text}`)

const describeState = Lock.State.$match({
  Free: () => "free",
  HeldByMe: ({ remaining }) => `held by me, ${Duration.toMillis(remaining)} ms left`,
  HeldByOther: ({ remaining }) => `held by another owner, ${Duration.toMillis(remaining)} ms left`
})

/** 1. The @upstash/lock contract, as Effects. */
const parity = Effect.gen(function*() {
  yield* title("1. The @upstash/lock API: acquire / extend / status / release")
  const mine = yield* Lock.make({ id: "invoice-42", lease: 5000 })
  const theirs = yield* Lock.make({ id: "invoice-42", retry: { attempts: 1 } })
  yield* Console.log(`  mine.acquire()       → ${yield* mine.acquire()}`)
  yield* Console.log(`  theirs.acquire()     → ${yield* theirs.acquire()}  (mine holds it)`)
  yield* Console.log(`  theirs.state         → ${describeState(yield* theirs.state)}`)
  yield* Console.log(`  mine.extend(250)     → ${yield* mine.extend(250)}   (milliseconds, owner-checked)`)
  yield* Console.log(`  theirs.release       → ${yield* theirs.release}  (only the owner can release)`)
  yield* Console.log(`  mine.status          → ${yield* mine.status}`)
  yield* Console.log(`  mine.release         → ${yield* mine.release}`)
})

/** 2. Workers contending: one at a time, fences strictly increasing. */
const contention = Effect.gen(function*() {
  yield* title("2. Four workers contend for one lock; every acquisition gets a larger fence")
  const fences = yield* Effect.all(
    [1, 2, 3, 4].map((n) => contend({ worker: `worker-${n}`, id: "report", rounds: 2 })),
    { concurrency: "unbounded" }
  )
  // A fresh counter starts at the store's clock in microseconds (so it never goes back, even once it
  // expired): shown relative to the first.
  const sorted = fences.flat().sort((a, b) => a - b)
  yield* Console.log(
    `  ${sorted.length} critical sections, fences ${sorted[0]} + ${sorted.map((f) => f - sorted[0]!).join(", ")}`
  )
})

/** 3. A lost lease interrupts the work, and fencing keeps a stale writer out. */
const lostLease = Effect.gen(function*() {
  yield* title("3. A lost lease interrupts the work; a fenced store rejects stale writes")
  // The resource we protect remembers the highest fence it has accepted and rejects older ones.
  const highest = yield* Ref.make(0)
  const write = (who: string, fence: number) =>
    Effect.flatMap(Ref.get(highest), (seen) =>
      fence < seen
        ? Console.log(`  store: rejected ${who}'s write with fence ${fence} (it has seen ${seen})`)
        : Effect.zipRight(Ref.set(highest, fence), Console.log(`  store: accepted ${who}'s write with fence ${fence}`)))

  // "slow" holds a 300 ms lease without keep-alive (think: a stalled process) and works for a second.
  const slowHolds = yield* Deferred.make<number>()
  const slow = Lock.withLease(
    { id: "ledger", lease: 300, keepAlive: false },
    (lease) =>
      Console.log(`  slow: acquired with fence ${lease.fence}, then stalls`).pipe(
        Effect.zipRight(Deferred.succeed(slowHolds, lease.fence)),
        Effect.zipRight(Effect.sleep(1000)),
        Effect.zipRight(Console.log("  slow: finished (should not happen)"))
      )
  ).pipe(Effect.catchTag("LockLost", (e) => Console.log(`  slow: interrupted with ${e._tag}: ${e.message}`)))
  const slowFiber = yield* Effect.fork(slow)
  const slowFence = yield* Deferred.await(slowHolds)

  yield* Effect.scoped(Effect.gen(function*() {
    const lease = yield* Lock.acquire({ id: "ledger", timeout: "2 seconds" })
    yield* Console.log(`  fast: acquired once slow's lease ran out, fence ${lease.fence}`)
    yield* write("fast", lease.fence)
  }))
  yield* slowFiber.await
  // A holder that cannot detect loss would write late with its old fence: the store says no.
  yield* write("a stale holder", slowFence)
})

/** 4. A semaphore: at most 2 of 5 exports at a time. */
const semaphore = Effect.gen(function*() {
  yield* title("4. A Semaphore with 2 permits: 5 exports, never more than 2 at a time")
  const exports = yield* Semaphore.make({ id: "heavy-exports", permits: 2 })
  const inside = yield* Ref.make({ now: 0, most: 0 })
  const job = Ref.update(inside, ({ most, now }) => ({ now: now + 1, most: Math.max(most, now + 1) })).pipe(
    Effect.zipRight(Effect.sleep(20)),
    Effect.ensuring(Ref.update(inside, (s) => ({ ...s, now: s.now - 1 }))),
    exports.withPermits(1, { timeout: "5 seconds" })
  )
  yield* Effect.all([1, 2, 3, 4, 5].map(() => job), { concurrency: "unbounded" })
  yield* Console.log(`  5 exports done, at most ${(yield* Ref.get(inside)).most} at once`)
})

/** 5. A read-write lock: readers together, a writer alone; then several locks at once. */
const readWrite = Effect.gen(function*() {
  yield* title("5. A ReadWriteLock: readers share, a writer is alone; Lock.withLocks takes several ids at once")
  const inside = yield* Ref.make({ readers: 0, most: 0, writerBeside: 0 })
  const read = Ref.update(inside, (s) => ({ ...s, readers: s.readers + 1, most: Math.max(s.most, s.readers + 1) }))
    .pipe(
      Effect.zipRight(Effect.sleep(20)),
      Effect.ensuring(Ref.update(inside, (s) => ({ ...s, readers: s.readers - 1 }))),
      ReadWriteLock.withReadLock({ id: "price-list", timeout: "5 seconds" })
    )
  const write = Ref.get(inside).pipe(
    Effect.flatMap((s) =>
      s.readers > 0 ? Ref.update(inside, (t) => ({ ...t, writerBeside: t.writerBeside + 1 })) : Effect.void
    ),
    Effect.zipRight(Effect.sleep(20)),
    ReadWriteLock.withWriteLock({ id: "price-list", timeout: "5 seconds" })
  )
  yield* Effect.all([read, read, read, write, read, read], { concurrency: "unbounded" })
  const { most, writerBeside } = yield* Ref.get(inside)
  yield* Console.log(
    `  5 readers and 1 writer: up to ${most} readers at once, the writer beside a reader ${writerBeside} times`
  )
  const fences = yield* Effect.scoped(Effect.gen(function*() {
    const write = yield* ReadWriteLock.writeLock({ id: "price-list" })
    const read = yield* write.downgrade
    return [write.fence, read.fence]
  }))
  yield* Console.log(`  a writer with fence ${fences[0]} downgraded to a reader of version ${fences[1]}`)
  const moves = yield* Ref.make(0)
  const move = Ref.update(moves, (n) => n + 1)
  yield* Effect.all([
    Effect.repeatN(Lock.withLocks({ ids: ["account-1", "account-2"], timeout: "5 seconds" })(move), 9),
    Effect.repeatN(Lock.withLocks({ ids: ["account-2", "account-1"], timeout: "5 seconds" })(move), 9)
  ], { concurrency: "unbounded" })
  yield* Console.log(
    `  withLocks on [account-1, account-2] and [account-2, account-1]: ${yield* Ref.get(moves)} transfers, no deadlock`
  )
})

/** 6. Leader election: one of three workers leads at a time; each term is higher; everyone sees who leads. */
const election = Effect.gen(function*() {
  yield* title("6. Leader election: three workers, one leader at a time, terms increasing, observed")
  const seen = yield* Ref.make<ReadonlyArray<string>>([])
  const watching = yield* Deferred.make<void>()
  const name = Option.match({ onNone: () => "nobody", onSome: (l: Election.Leader) => `${l.identity}#${l.term}` })
  const observer = yield* Effect.fork(
    Election.observe({ id: "scheduler" }).pipe(
      Stream.take(7),
      Stream.runForEach((leader) =>
        Effect.zipRight(Ref.update(seen, (s) => [...s, name(leader)]), Deferred.succeed(watching, undefined))
      )
    )
  )
  yield* Deferred.await(watching) // the observer has seen who leads now: nobody yet
  // Each worker leads for one term (20 ms of scheduling), then resigns: the next in line leads at once.
  const worker = (name: string) =>
    Election.whileLeader({ id: "scheduler", identity: name })((leadership) =>
      Console.log(`  ${name}: leading, term ${leadership.term}`).pipe(Effect.zipRight(Effect.sleep(20)))
    )
  yield* Effect.all(["worker-a", "worker-b", "worker-c"].map(worker), { concurrency: "unbounded" })
  yield* observer.await
  yield* Console.log(`  observed: ${(yield* Ref.get(seen)).join(" → ")}`)
})

const local = Effect.gen(function*() {
  yield* Console.log("effect-lock demo on the embedded Memory store (set REDIS_URL to run on a real Redis)")
  yield* parity
  yield* contention
  yield* lostLease
  yield* semaphore
  yield* readWrite
  yield* election
}).pipe(Effect.provide(Memory.layer))

/** With REDIS_URL: four OS processes increment one counter under the lock. */
const distributed = (url: string) =>
  Effect.gen(function*() {
    yield* Console.log(`effect-lock demo: 4 OS processes contend for one lock on ${new URL(url).host}`)
    const counter = `effect-lock-demo:counter:${randomToken().slice(0, 8)}`
    const run = (n: number) =>
      Command.make(process.execPath, "--import", "tsx", "demo/worker.ts", `process-${n}`, counter).pipe(
        Command.env({ REDIS_URL: url }),
        Command.start,
        Effect.flatMap((proc) =>
          Effect.zipRight(
            proc.stdout.pipe(Stream.decodeText(), Stream.splitLines, Stream.runForEach(Console.log)),
            proc.exitCode
          )
        )
      )
    const codes = yield* Effect.all([1, 2, 3, 4].map(run), { concurrency: "unbounded" })
    const raw = yield* Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit()))
    const total = yield* Effect.promise(() => raw.get(counter))
    yield* Console.log(
      `\nexit codes ${
        codes.join(", ")
      }; counter = ${total} (4 processes × 3 non-atomic increments: 12 means no lost update)`
    )
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const main: Effect.Effect<void, unknown> = Option.match(Option.fromNullable(process.env.REDIS_URL), {
  onNone: () => local,
  onSome: distributed
})

NodeRuntime.runMain(main)
