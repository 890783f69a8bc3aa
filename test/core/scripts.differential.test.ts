/**
 * The Lua scripts against their TypeScript twins: random sequences of operations go through a lock's,
 * a semaphore's, a read-write lock's and several lock ids' operations on a real redis-server (the Lua, over the IoRedis backend) and on the
 * embedded store (the twins, `Memory.make` on the live clock), side by side. After every step both
 * sides must have given the same reply, hold the same keyspace and have published the same wake-ups.
 *
 * The store runs each step at the instant (of the live clock) its Redis twin was sent, so a stall of
 * the process between the two sides moves no time apart; times (PTTLs, `remaining`, deadlines kept as
 * scores) agree within {@link TOLERANCE}. And no step may land near a deadline, where both could rightly
 * differ:
 * - a try with the short lease is followed by a settle, so it has lapsed on both sides before anything
 *   looks again (and the long lease never lapses);
 * - a waiter's place and a reservation (one second) are crossed only by a wait-out, which is longer; an
 *   epoch between wait-outs that has lasted {@link EPOCH} ms gets one before its next step.
 * The sequences of one run go concurrently, each with its own prefix and store, so their sleeps overlap.
 */
import { describe, layer } from "@effect/vitest"
import { Clock, Effect, FastCheck as fc, Layer } from "effect"
import { DEFAULT_FENCE_TTL } from "../../src/internal/core/lua.js"
import { ALIVE, RESERVATION } from "../../src/internal/core/wake.js"
import { type LockKeys, lockKeys, readWriteKeys, semaphoreKeys } from "../../src/internal/keys.js"
import * as manyScripts from "../../src/internal/lock/manyScripts.js"
import * as LockOperations from "../../src/internal/lock/operations.js"
import * as lockScripts from "../../src/internal/lock/scripts.js"
import * as RwOperations from "../../src/internal/rwlock/operations.js"
import * as SemaphoreOperations from "../../src/internal/semaphore/operations.js"
import { randomToken } from "../../src/internal/token.js"
import { Redis } from "../../src/Redis.js"
import type * as RedisSeam from "../../src/Redis.js"
import * as Memory from "../../src/Redis/Memory.js"
import {
  at,
  diffDumps,
  type Dump,
  dumpMemory,
  dumpRedis,
  fenceOffsets,
  type Inbox,
  memoryMessages,
  redisMessages,
  sameReply
} from "../utils/differential.js"
import { raw } from "../utils/live.js"
import * as RedisServer from "../utils/RedisServer.js"

const TOKENS = ["t1", "t2", "t3", "t4"] as const
type Token = typeof TOKENS[number]
/** Lapses within a settle; the long one never lapses within a sequence. */
const SHORT = 5
/** The fence counter's default TTL. */
const WEEK = DEFAULT_FENCE_TTL
const LONG = 60_000
/** The sleep after a try with the short lease, and the `sleep` step. */
const SETTLE = 25
/** Longer than a waiter's place in line and a reservation: both lapse on both sides. */
const WAIT_OUT = Math.max(ALIVE, RESERVATION) + 100
/** The longest an epoch may last before a wait-out: far from the one second it must stay under. */
const EPOCH = 600
/**
 * How far apart two times read on the two sides may be. The times compared are lease-scale (5 ms
 * against 60 s, present against absent), so this still tells every wrong expiry apart, while a loaded
 * 2-core machine can hold one side's read back by a couple of hundred milliseconds (seen: 194 ms).
 */
const TOLERANCE = 400
const MAX_STEPS = 25
/** Sequences run concurrently in one property run. */
const BATCH = 8
const PREFIX = "differential:"

type Timing = { readonly op: "sleep" } | { readonly op: "waitOut" }

type LockStep =
  | Timing
  | { readonly op: "tryAcquire" | "tryAcquireFair"; readonly token: Token; readonly lease: number }
  | { readonly op: "release" | "leave" | "status"; readonly token: Token }
  | { readonly op: "extend"; readonly token: Token; readonly ms: number; readonly mode: "add" | "set" }
  | { readonly op: "inspect" }

/** `other`: the step uses `permits + 1`, which the stored permits of a busy semaphore refuse. */
type SemaphoreStep =
  | Timing
  | {
    readonly op: "tryAcquire" | "tryAcquireFair"
    readonly token: Token
    readonly n: number
    readonly lease: number
    readonly other: boolean
  }
  | { readonly op: "release" | "leave"; readonly token: Token; readonly other: boolean }
  | { readonly op: "extend"; readonly token: Token; readonly ms: number; readonly mode: "add" | "set" }
  | { readonly op: "available"; readonly other: boolean }

type RwStep =
  | Timing
  | {
    readonly op: "tryAcquire" | "tryAcquireFair"
    readonly token: Token
    readonly write: boolean
    readonly lease: number
  }
  | { readonly op: "release" | "leave" | "downgrade"; readonly token: Token }
  | { readonly op: "extend"; readonly token: Token; readonly ms: number; readonly mode: "add" | "set" }
  | { readonly op: "inspect" }

/** Steps on several lock ids at once (`ids`: which of three), or on one of them alone (the lock's own scripts). */
type ManyStep =
  | Timing
  | {
    readonly op: "tryAcquire" | "tryAcquireFair"
    readonly token: Token
    readonly ids: ReadonlyArray<number>
    readonly lease: number
  }
  | { readonly op: "release" | "leave"; readonly token: Token; readonly ids: ReadonlyArray<number> }
  | {
    readonly op: "extend"
    readonly token: Token
    readonly ids: ReadonlyArray<number>
    readonly ms: number
    readonly mode: "add" | "set"
  }

type Step = LockStep | SemaphoreStep | RwStep | ManyStep

// --- generators ---------------------------------------------------------------------------------

const token = fc.constantFrom(...TOKENS)
const lease = fc.constantFrom(SHORT, LONG)
const mode = fc.constantFrom("add" as const, "set" as const)
const other = fc.oneof({ arbitrary: fc.constant(false), weight: 5 }, { arbitrary: fc.constant(true), weight: 1 })
const sleep = fc.constant({ op: "sleep" } as const)

const lockStep: fc.Arbitrary<LockStep> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant("tryAcquire" as const), token, lease }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("tryAcquireFair" as const), token, lease }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constantFrom("release" as const, "leave" as const), token }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("extend" as const), token, ms: lease, mode }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("status" as const), token }), weight: 1 },
  { arbitrary: fc.constant({ op: "inspect" } as const), weight: 1 },
  { arbitrary: sleep, weight: 1 }
)

const semaphoreStep: fc.Arbitrary<SemaphoreStep> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constantFrom("tryAcquire" as const, "tryAcquireFair" as const, "tryAcquireFair" as const),
      token,
      n: fc.integer({ min: 1, max: 3 }),
      lease,
      other
    }),
    weight: 7
  },
  { arbitrary: fc.record({ op: fc.constantFrom("release" as const, "leave" as const), token, other }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("extend" as const), token, ms: lease, mode }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("available" as const), other }), weight: 1 },
  { arbitrary: sleep, weight: 1 }
)

const rwStep: fc.Arbitrary<RwStep> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constantFrom("tryAcquire" as const, "tryAcquireFair" as const, "tryAcquireFair" as const),
      token,
      write: fc.boolean(),
      lease
    }),
    weight: 7
  },
  {
    arbitrary: fc.record({ op: fc.constantFrom("release" as const, "leave" as const, "downgrade" as const), token }),
    weight: 4
  },
  { arbitrary: fc.record({ op: fc.constant("extend" as const), token, ms: lease, mode }), weight: 2 },
  { arbitrary: fc.constant({ op: "inspect" } as const), weight: 1 },
  { arbitrary: sleep, weight: 1 }
)

const ids = fc.subarray([0, 1, 2], { minLength: 1 })
const manyStep: fc.Arbitrary<ManyStep> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constantFrom("tryAcquire" as const, "tryAcquireFair" as const, "tryAcquireFair" as const),
      token,
      ids,
      lease
    }),
    weight: 7
  },
  { arbitrary: fc.record({ op: fc.constantFrom("release" as const, "leave" as const), token, ids }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("extend" as const), token, ids, ms: lease, mode }), weight: 2 },
  { arbitrary: sleep, weight: 1 }
)

interface Sequence<S, P> {
  /** The fence TTL (a lock's, several ids'), or the semaphore's permits. */
  readonly param: P
  readonly steps: ReadonlyArray<S>
  /** Where the wait-out goes, in a run that has them: a fraction of the steps (some before, some after). */
  readonly at: number
}

/** One property run: up to {@link BATCH} sequences, each with one wait-out when `waitOut` is on. */
interface Batch<S, P> {
  readonly waitOut: boolean
  readonly sequences: ReadonlyArray<Sequence<S, P>>
}

const batch = <S, P>(step: fc.Arbitrary<S>, param: fc.Arbitrary<P>): fc.Arbitrary<Batch<S, P>> =>
  fc.record({
    waitOut: fc.boolean(),
    sequences: fc.array(
      fc.record({
        param,
        steps: fc.array(step, { minLength: 1, maxLength: MAX_STEPS, size: "max" }),
        at: fc.double({ min: 0.25, max: 0.75, noNaN: true })
      }),
      { minLength: 1, maxLength: BATCH, size: "max" }
    )
  })

const withWaitOut = <S, P>(waitOut: boolean, { at, steps }: Sequence<S, P>): ReadonlyArray<S | Timing> => {
  const i = Math.round(at * steps.length)
  return waitOut ? [...steps.slice(0, i), { op: "waitOut" }, ...steps.slice(i)] : steps
}

// --- one sequence, step by step ----------------------------------------------------------------

/** One side of the comparison: how it runs a step, and what it holds and published afterwards. */
interface Side<S, D> {
  readonly run: (step: S) => Effect.Effect<unknown>
  readonly dump: D
  readonly inbox: Inbox
}

/** Redis's keys, read at `sent`. */
type RedisSide<S> = Side<S, Effect.Effect<{ readonly dump: Dump; readonly sent: number }>>
/** The store, run at the instants its Redis twin saw (see `at`). */
type MemorySide<S> = Side<S, Effect.Effect<Dump>>

const show = (value: unknown) => JSON.stringify(value)

const describeStep = (step: Step): string =>
  Object.entries(step).map(([k, v]) => k === "op" ? v : k === "token" ? v : `${k}=${v}`).join(" ")

/** A try with the short lease: settled before anything looks again. */
const settles = (step: Step) => (step.op === "tryAcquire" || step.op === "tryAcquireFair") && step.lease === SHORT

/**
 * Runs `steps` on both sides, comparing after each; fails with the whole trace at the first difference.
 * Returns how many steps were compared.
 */
const compare = <S extends Step>(
  label: string,
  steps: ReadonlyArray<S>,
  redis: RedisSide<S>,
  memory: MemorySide<S>,
  timeScored: (key: string) => boolean
): Effect.Effect<number, Error> =>
  Effect.gen(function*() {
    const trace: Array<string> = []
    const fences = fenceOffsets(TOLERANCE)
    let epoch = yield* Clock.currentTimeMillis
    for (const [i, step] of steps.entries()) {
      const lasted = (yield* Clock.currentTimeMillis) - epoch
      if (step.op !== "waitOut" && lasted > EPOCH) {
        trace.push(`    (the epoch had lasted ${lasted} ms: a wait-out first)`)
        yield* Effect.sleep(WAIT_OUT)
        epoch = yield* Clock.currentTimeMillis
      }
      let replies: readonly [unknown, unknown] = [null, null]
      if (step.op === "sleep") yield* Effect.sleep(SETTLE)
      else if (step.op === "waitOut") yield* Effect.sleep(WAIT_OUT)
      else {
        const sent = yield* Clock.currentTimeMillis
        const reply = yield* redis.run(step)
        replies = [reply, yield* Effect.withClock(memory.run(step), at(sent))]
      }
      if (step.op === "waitOut") epoch = yield* Clock.currentTimeMillis
      if (settles(step)) yield* Effect.sleep(SETTLE)
      const { dump: redisKeys, sent } = yield* redis.dump
      const memoryKeys = yield* Effect.withClock(memory.dump, at(sent))
      const [redisSent, memorySent] = [yield* redis.inbox.take, yield* memory.inbox.take]
      const [r, m] = replies
      // The counters first: a fence seeded by this step is known before its reply is compared.
      const counted = fences.learn(redisKeys, memoryKeys)
      const alike = sameReply(r, m, TOLERANCE, fences.same)
      trace.push(
        `${String(i + 1).padStart(2)}. ${describeStep(step)} → ${
          alike ? show(r) : `redis ${show(r)} | memory ${show(m)}`
        }${redisSent.length > 0 ? `, published ${show(redisSent)}` : ""}`
      )
      const problems = [
        ...(alike ? [] : [`replies: redis ${show(r)}, memory ${show(m)}`]),
        ...(show(redisSent) === show(memorySent)
          ? []
          : [`published: redis ${show(redisSent)}, memory ${show(memorySent)}`]),
        ...counted,
        ...diffDumps(redisKeys, memoryKeys, { ms: TOLERANCE, timeScored, fence: fences.same })
      ]
      if (problems.length > 0) {
        return yield* Effect.fail(
          new Error(
            [
              `${label}: Lua and twin differ after step ${i + 1}`,
              ...trace,
              "differences:",
              ...problems.map((p) => `  ${p}`),
              `redis keyspace: ${show(redisKeys)}`,
              `memory keyspace: ${show(memoryKeys)}`
            ].join("\n")
          )
        )
      }
    }
    return steps.length
  })

/** The file's redis-server, the IoRedis backend on it, and what the test itself needs there. */
class Server extends Effect.Service<Server>()("test/differential/Server", {
  scoped: Effect.gen(function*() {
    const server = yield* RedisServer.RedisServer
    return {
      redis: yield* Redis,
      client: yield* raw(server.url),
      messages: yield* redisMessages(server.url, `${PREFIX}*`)
    }
  })
}) {}

const ServerLive = Server.Default.pipe(
  Layer.provide(RedisServer.ioredis),
  Layer.provideMerge(RedisServer.layer)
)

/** Both sides of one sequence: a fresh store, a fresh prefix on the server. */
const sides = <S>(
  channel: (prefix: string) => string | ReadonlyArray<string>,
  ops: (redis: RedisSeam.Service, prefix: string) => (step: S) => Effect.Effect<unknown>
) =>
  Effect.gen(function*() {
    const { client, messages, redis } = yield* Server
    const memory = yield* Memory.make
    const prefix = `${PREFIX}${randomToken().slice(0, 12)}:`
    // the fence lives a week: leave nothing behind on a server the tests may share (REDIS_URL)
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const left = await client.keys(`${prefix}*`)
        if (left.length > 0) await client.del(...left)
      })
    )
    const channels = ([] as ReadonlyArray<string>).concat(channel(prefix))
    const merged = (inboxes: ReadonlyArray<Inbox>): Inbox => ({
      take: Effect.map(
        Effect.forEach(inboxes, (inbox) => inbox.take),
        (lists) =>
          lists.flatMap((list, i) => list.map((message) => channels.length === 1 ? message : `${i}:${message}`))
      )
    })
    const redisSide: RedisSide<S> = {
      run: ops(redis, prefix),
      dump: dumpRedis(client, prefix),
      inbox: merged(channels.map((c) => messages.inbox(c)))
    }
    const memorySide: MemorySide<S> = {
      run: ops(memory, prefix),
      dump: dumpMemory(memory, prefix),
      inbox: merged(yield* Effect.forEach(channels, (c) => memoryMessages(memory, c)))
    }
    return { prefix, redis: redisSide, memory: memorySide }
  })

// --- the lock ----------------------------------------------------------------------------------

/** The lock's read-only look: the one script this test runs by itself (the rest go through operations). */
const inspectLock = (redis: RedisSeam.Service, keys: LockKeys) =>
  lockScripts.inspect.run(redis, lockScripts.inspect.keysOf(keys), {})

const lockOps = (fenceTtl: number) => (redis: RedisSeam.Service, prefix: string) => {
  const keys = lockKeys(prefix, "L")
  const ops = LockOperations.make(redis, keys, fenceTtl)
  return (step: LockStep): Effect.Effect<unknown> => {
    switch (step.op) {
      case "tryAcquire":
      case "tryAcquireFair":
        return Effect.orDie(ops[step.op](step.token, step.lease))
      case "release":
      case "leave":
        return Effect.orDie(ops[step.op](step.token))
      case "status":
        return Effect.orDie(ops.status(step.token))
      case "extend":
        return Effect.orDie(Effect.map(ops.extend(step.token, step.ms, step.mode), (ttl) => ({ ttl })))
      case "inspect":
        return Effect.orDie(inspectLock(redis, keys))
      default:
        return Effect.void
    }
  }
}

const runLock = (run: Batch<LockStep, number>) =>
  Effect.forEach(run.sequences, (sequence) =>
    Effect.scoped(Effect.gen(function*() {
      const { memory, prefix, redis } = yield* sides((prefix) => lockKeys(prefix, "L").channel, lockOps(sequence.param))
      const keys = lockKeys(prefix, "L")
      return yield* compare(
        `lock (fence TTL ${sequence.param})`,
        withWaitOut(run.waitOut, sequence),
        redis,
        memory,
        (key) => key === keys.alive
      )
    })), { concurrency: "unbounded", discard: true })

// --- the semaphore -----------------------------------------------------------------------------

const semaphoreOps = (permits: number) => (redis: RedisSeam.Service, prefix: string) => {
  const keys = semaphoreKeys(prefix, "S")
  const [ours, others] = [permits, permits + 1].map((p) => SemaphoreOperations.make(redis, keys, p))
  const opsOf = (other: boolean) => other ? others! : ours!
  return (step: SemaphoreStep): Effect.Effect<unknown> => {
    switch (step.op) {
      case "tryAcquire":
      case "tryAcquireFair":
        return opsOf(step.other).holding(step.n)[step.op](step.token, step.lease).pipe(
          Effect.catchTag(
            "InvalidOptions",
            ({ expected, option, received }) => Effect.succeed({ _tag: "InvalidOptions", option, expected, received })
          ),
          Effect.orDie
        )
      case "release":
      case "leave":
        return Effect.orDie(opsOf(step.other).holding(1)[step.op](step.token))
      case "extend":
        return Effect.orDie(Effect.map(ours!.holding(1).extend(step.token, step.ms, step.mode), (ttl) => ({ ttl })))
      case "available":
        return Effect.orDie(opsOf(step.other).available)
      default:
        return Effect.void
    }
  }
}

const runSemaphore = (run: Batch<SemaphoreStep, number>) =>
  Effect.forEach(run.sequences, (sequence) =>
    Effect.scoped(Effect.gen(function*() {
      const { memory, prefix, redis } = yield* sides(
        (prefix) => semaphoreKeys(prefix, "S").channel,
        semaphoreOps(sequence.param)
      )
      const keys = semaphoreKeys(prefix, "S")
      return yield* compare(
        `semaphore (permits ${sequence.param})`,
        withWaitOut(run.waitOut, sequence),
        redis,
        memory,
        (key) => key === keys.holders || key === keys.alive
      )
    })), { concurrency: "unbounded", discard: true })

// --- the read-write lock ----------------------------------------------------------------------

const rwOps = () => (redis: RedisSeam.Service, prefix: string) => {
  const ops = RwOperations.make(redis, readWriteKeys(prefix, "RW"))
  return (step: RwStep): Effect.Effect<unknown> => {
    switch (step.op) {
      case "tryAcquire":
      case "tryAcquireFair":
        return Effect.orDie(ops[step.write ? "write" : "read"][step.op](step.token, step.lease))
      case "release":
      case "leave":
        return Effect.orDie(ops.read[step.op](step.token))
      case "downgrade":
        return Effect.orDie(Effect.map(ops.downgrade(step.token, LONG), (reply) => ({ downgraded: reply ?? null })))
      case "extend":
        return Effect.orDie(Effect.map(ops.read.extend(step.token, step.ms, step.mode), (ttl) => ({ ttl })))
      case "inspect":
        return Effect.orDie(ops.inspect)
      default:
        return Effect.void
    }
  }
}

const runRw = (run: Batch<RwStep, number>) =>
  Effect.forEach(run.sequences, (sequence) =>
    Effect.scoped(Effect.gen(function*() {
      const { memory, prefix, redis } = yield* sides((prefix) => readWriteKeys(prefix, "RW").channel, rwOps())
      const keys = readWriteKeys(prefix, "RW")
      return yield* compare(
        "read-write lock",
        withWaitOut(run.waitOut, sequence),
        redis,
        memory,
        (key) => key === keys.readers || key === keys.alive
      )
    })), { concurrency: "unbounded", discard: true })

// --- several lock ids at once --------------------------------------------------------------------

const MANY = ["M0", "M1", "M2"] as const

const manyOps = (fenceTtl: number) => (redis: RedisSeam.Service, prefix: string) => {
  const all = MANY.map((id) => lockKeys(prefix, id))
  const keysOf = (ids: ReadonlyArray<number>) => manyScripts.acquireAll.keysOf(ids.map((i) => all[i]!))
  const sharded = "0"
  const reservation = String(RESERVATION)
  return (step: ManyStep): Effect.Effect<unknown> => {
    switch (step.op) {
      case "tryAcquire":
      case "tryAcquireFair":
        return Effect.orDie(manyScripts.acquireAll.run(redis, keysOf(step.ids), {
          token: step.token,
          lease: String(step.lease),
          reservation,
          lineTtl: "60000",
          aliveMs: String(ALIVE),
          fenceTtl: String(fenceTtl),
          fair: step.op === "tryAcquireFair" ? "1" : "0",
          sharded
        }))
      case "release":
        return Effect.orDie(
          manyScripts.releaseAll.run(redis, keysOf(step.ids), { token: step.token, reservation, sharded })
        )
      case "leave":
        return Effect.orDie(
          manyScripts.leaveAll.run(redis, keysOf(step.ids), { token: step.token, reservation, sharded })
        )
      case "extend":
        return Effect.orDie(
          Effect.map(
            manyScripts.extendAll.run(redis, keysOf(step.ids), {
              token: step.token,
              ms: String(step.ms),
              mode: step.mode
            }),
            (ttl) => ({ ttl })
          )
        )
      default:
        return Effect.void
    }
  }
}

const runMany = (run: Batch<ManyStep, number>) =>
  Effect.forEach(run.sequences, (sequence) =>
    Effect.scoped(Effect.gen(function*() {
      const { memory, prefix, redis } = yield* sides(
        (prefix) => MANY.map((id) => lockKeys(prefix, id).channel),
        manyOps(sequence.param)
      )
      const alive = new Set(MANY.map((id) => lockKeys(prefix, id).alive))
      return yield* compare(
        `several lock ids (fence TTL ${sequence.param})`,
        withWaitOut(run.waitOut, sequence),
        redis,
        memory,
        (key) => alive.has(key)
      )
    })), { concurrency: "unbounded", discard: true })

// --- hand-written runs, tried first: the paths a random run may miss --------------------------

const fair = (token: Token, lease = LONG) => ({ op: "tryAcquireFair", token, lease }) as const
const plain = (token: Token, lease = LONG) => ({ op: "tryAcquire", token, lease }) as const
const take = (token: Token, n: number, { lease = LONG, op = "tryAcquireFair", other = false }: {
  readonly lease?: number
  readonly op?: "tryAcquire" | "tryAcquireFair"
  readonly other?: boolean
} = {}) => ({ op, token, n, lease, other }) as const
const one = <S>(param: number, steps: ReadonlyArray<S>, waitOutAfter = 0): Sequence<S, number> => ({
  param,
  steps,
  at: waitOutAfter / steps.length
})

const lockExamples: ReadonlyArray<Batch<LockStep, number>> = [
  {
    waitOut: false,
    sequences: [
      // a hand-off: reserved for the first waiter, claimed by it, passed on by its leave
      one(WEEK, [
        fair("t1"),
        fair("t2"),
        fair("t3"),
        { op: "release", token: "t1" },
        fair("t3"),
        plain("t3"),
        { op: "status", token: "t2" },
        { op: "inspect" },
        fair("t2"),
        { op: "extend", token: "t2", ms: LONG, mode: "add" },
        { op: "extend", token: "t2", ms: SHORT, mode: "set" },
        { op: "leave", token: "t2" },
        { op: "inspect" },
        fair("t3", SHORT),
        fair("t1")
      ]),
      // the holder renews with a shorter lease: the lock lapses on that lease
      one(60_000, [plain("t1"), plain("t1", SHORT), plain("t2"), { op: "status", token: "t2" }]),
      // a holder's lease ends while others wait: reserved for the head, then the head takes it from the line
      one(WEEK, [
        fair("t1"),
        fair("t2"),
        fair("t3"),
        fair("t1", SHORT),
        { op: "status", token: "t2" },
        fair("t3"),
        fair("t2"),
        fair("t2", SHORT),
        fair("t3"),
        { op: "inspect" }
      ])
    ]
  },
  {
    waitOut: true,
    sequences: [
      // waiters that stopped looking are dropped, and a reservation for one of them lapses
      one(WEEK, [fair("t1"), fair("t2"), fair("t3"), { op: "release", token: "t1" }], 3),
      one(WEEK, [fair("t1", SHORT), fair("t2"), fair("t3"), fair("t4"), { op: "inspect" }], 4)
    ]
  }
]

const semaphoreExamples: ReadonlyArray<Batch<SemaphoreStep, number>> = [
  {
    waitOut: false,
    sequences: [
      one(2, [
        take("t1", 1, { op: "tryAcquire" }),
        take("t2", 2),
        take("t3", 1),
        { op: "available", other: false },
        take("t4", 1, { op: "tryAcquire", other: true }),
        { op: "release", token: "t1", other: false },
        take("t2", 2),
        { op: "extend", token: "t2", ms: LONG, mode: "add" },
        { op: "leave", token: "t2", other: false },
        take("t3", 1, { lease: SHORT }),
        take("t4", 2, { op: "tryAcquire" })
      ])
    ]
  },
  {
    waitOut: true,
    sequences: [
      one(1, [
        take("t1", 1, { op: "tryAcquire" }),
        take("t2", 1),
        take("t3", 1),
        { op: "release", token: "t1", other: false },
        take("t3", 1),
        { op: "available", other: true }
      ], 3)
    ]
  }
]

const rw = (token: Token, write: boolean, lease = LONG) => ({ op: "tryAcquireFair", token, write, lease }) as const

const rwExamples: ReadonlyArray<Batch<RwStep, number>> = [
  {
    waitOut: false,
    sequences: [
      // readers share, a writer waits, a later reader waits behind it; a downgrade lets the reader in
      one(0, [
        rw("t1", false),
        rw("t2", false),
        rw("t3", true),
        rw("t4", false),
        { op: "inspect" },
        { op: "release", token: "t1" },
        { op: "leave", token: "t2" },
        rw("t3", true),
        rw("t4", false),
        { op: "extend", token: "t3", ms: LONG, mode: "add" },
        { op: "downgrade", token: "t3" },
        rw("t4", false),
        { op: "inspect" },
        { op: "extend", token: "t4", ms: SHORT, mode: "set" },
        { op: "release", token: "t3" }
      ])
    ]
  }
]

const all = (token: Token, ids: ReadonlyArray<number>, lease = LONG) =>
  ({ op: "tryAcquireFair", token, ids, lease }) as const

const manyExamples: ReadonlyArray<Batch<ManyStep, number>> = [
  {
    waitOut: false,
    sequences: [
      // t2 waits for [0, 1] behind t1's 1; t1 releases: 1 is reserved for t2, which takes both
      one(WEEK, [
        all("t1", [1]),
        all("t2", [0, 1]),
        all("t3", [0]),
        { op: "release", token: "t1", ids: [1] },
        all("t3", [0]),
        all("t2", [0, 1]),
        { op: "extend", token: "t2", ids: [0, 1], ms: LONG, mode: "add" },
        { op: "leave", token: "t2", ids: [0, 1] },
        all("t3", [0, 2])
      ])
    ]
  }
]

// --- the properties ----------------------------------------------------------------------------

/** Random runs per primitive, after its hand-written ones. */
const RUNS = 12

/**
 * The hand-written runs first, then {@link RUNS} random ones. A failure is shrunk for at most 40 s (a
 * run takes up to a second or so), then reported as it stands, before the test's timeout could hide it.
 */
const options = <T>(examples: ReadonlyArray<T>) => ({
  timeout: 60_000,
  concurrent: true,
  fastCheck: {
    numRuns: examples.length + RUNS,
    examples: examples.map((example): [T] => [example]),
    interruptAfterTimeLimit: 40_000,
    markInterruptAsFailure: true
  }
})

layer(ServerLive, { timeout: 30_000, excludeTestServices: true })("scripts and their twins (differential)", (it) => {
  describe("on a real redis-server and on the embedded store, step by step", () => {
    it.effect.prop(
      "the lock's scripts reply alike, leave the same keys and publish the same wake-ups",
      [batch(lockStep, fc.constantFrom(WEEK, 60_000))],
      ([run]) => runLock(run),
      options(lockExamples)
    )

    it.effect.prop(
      "the read-write lock's scripts reply alike, leave the same keys and publish the same wake-ups",
      [batch(rwStep, fc.constant(0))],
      ([run]) => runRw(run),
      options(rwExamples)
    )

    it.effect.prop(
      "the scripts of several lock ids reply alike, leave the same keys and publish the same wake-ups",
      [batch(manyStep, fc.constantFrom(WEEK, 60_000))],
      ([run]) => runMany(run),
      options(manyExamples)
    )

    it.effect.prop(
      "the semaphore's scripts reply alike, leave the same keys and publish the same wake-ups",
      [batch(semaphoreStep, fc.integer({ min: 1, max: 3 }))],
      ([run]) => runSemaphore(run),
      options(semaphoreExamples)
    )
  })
})
