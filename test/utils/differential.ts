/**
 * Differential testing of the scripts: the same operation on a real redis-server (the Lua) and on the
 * embedded store (the TypeScript twin), compared by what each replied, what each keyspace holds and what
 * each published. Times (PTTLs, deadlines stored as scores, `remaining`) are compared within a tolerance;
 * fences seeded from the two clocks by each counter's offset ({@link fenceOffsets}); everything else exactly.
 *
 * Both sides run on the live clock, but one after the other, and a busy machine can stall a process for
 * tens of milliseconds between the two: so the store runs each step at the instant its Redis twin was
 * sent ({@link at}), which Redis's own `TIME` follows within the round trip.
 */
import { Clock, Effect, type Scope } from "effect"
import type { Redis as IORedis } from "ioredis"
import type * as Redis from "../../src/Redis.js"
import * as MemoryInspect from "../../src/Redis/internal/memoryInspect.js"
import { raw } from "./live.js"

/** One key as both sides can show it: its type, `PTTL` (-1: none) and value (sorted sets with scores). */
export interface Key {
  readonly type: string
  readonly pttl: number
  readonly value: string | ReadonlyArray<readonly [member: string, score: number]>
}

export type Dump = Readonly<Record<string, Key>>

/**
 * The live clock stopped at `millis` (sleeping still sleeps): what the store reads as now while it runs
 * the twin of a request sent to Redis at `millis`.
 */
export const at = (millis: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => millis,
  currentTimeMillis: Effect.succeed(millis),
  unsafeCurrentTimeNanos: () => BigInt(millis) * 1_000_000n,
  currentTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
  sleep: (duration) => Effect.sleep(duration)
})

/**
 * Every key under `prefix` on a redis-server: SCAN, then TYPE and PTTL, then GET or ZRANGE WITHSCORES;
 * `sent`: the live clock's now when TYPE and PTTL were sent.
 */
export const dumpRedis = (
  client: IORedis,
  prefix: string
): Effect.Effect<{ readonly dump: Dump; readonly sent: number }> =>
  Effect.gen(function*() {
    const names = new Set<string>()
    let cursor = "0"
    do {
      const [next, found] = yield* Effect.promise(() => client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000))
      cursor = next
      for (const name of found) names.add(name)
    } while (cursor !== "0")
    const keys = [...names].sort()
    const sent = yield* Clock.currentTimeMillis
    if (keys.length === 0) return { dump: {}, sent }
    const meta = (yield* Effect.promise(() => client.multi(keys.flatMap((k) => [["type", k], ["pttl", k]])).exec()))!
    const typeOf = (i: number) => String(meta[2 * i]![1])
    const values = (yield* Effect.promise(() =>
      client.multi(keys.map((k, i) =>
        typeOf(i) === "zset"
          ? ["zrange", k, "0", "-1", "WITHSCORES"]
          : typeOf(i) === "string"
          ? ["get", k]
          : ["type", k]
      )).exec()
    ))!
    const dump: Record<string, Key> = {}
    keys.forEach((key, i) => {
      const type = typeOf(i)
      const pttl = Number(meta[2 * i + 1]![1])
      if (type === "none" || pttl === -2) return // expired between SCAN and the look
      const value = values[i]![1]
      dump[key] = {
        type,
        pttl,
        value: type === "zset"
          ? pairs(value as ReadonlyArray<string>)
          : type === "string"
          ? String(value)
          : `<${type}>`
      }
    })
    return { dump, sent }
  })

const pairs = (flat: ReadonlyArray<string>): ReadonlyArray<readonly [string, number]> => {
  const out: Array<readonly [string, number]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])])
  return out
}

/**
 * Every live key of an embedded store (made by `Memory.make`) under `prefix`, read through the store's
 * inspection at the clock's now: sorted sets in Redis's order (by score, then member) with their scores.
 */
export const dumpMemory = (service: Redis.Service, prefix: string): Effect.Effect<Dump> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      const store = MemoryInspect.inspect(service)
      if (store === undefined) throw new Error("dumpMemory: not a store made by Memory.make")
      const entries = store.entries(now).filter((entry) => entry.key.startsWith(prefix))
      return store.atomically(now, (keyspace) => {
        const dump: Record<string, Key> = {}
        for (const { key, pttl, value } of [...entries].sort((a, b) => a.key < b.key ? -1 : 1)) {
          dump[key] = typeof value === "string"
            ? { type: "string", pttl, value }
            : {
              type: "zset",
              pttl,
              value: keyspace.zrange(key, 0, -1).map((m) => [m, keyspace.zscore(key, m)!] as const)
            }
        }
        return dump
      })
    }))

export interface Tolerance {
  /** The widest gap between two times that count as the same (ms). */
  readonly ms: number
  /** Keys whose scores are instants (deadlines, expiries): compared as member → time, within `ms`. */
  readonly timeScored: (key: string) => boolean
  /** Whether two fences are the same (default: {@link sameFence} within `ms`). */
  readonly fence?: (a: number, b: number) => boolean
}

/** Two times are the same when both are ≤ 0 (passed, or none left) or within `ms` of each other. */
export const closeEnough = (a: number, b: number, ms: number): boolean => (a <= 0 && b <= 0) || Math.abs(a - b) <= ms

/**
 * Fences seeded from the clock (Redis `TIME` in µs, the store's ms × 1000 + 1) are instants too: two
 * numbers from 10¹⁴ up are the same within the tolerance's microseconds. Counted on from the seed, both
 * sides' fences still differ by exactly what they counted.
 */
const MICROS = 1e14
export const sameFence = (a: number, b: number, ms: number): boolean =>
  a === b || (a >= MICROS && b >= MICROS && Math.abs(a - b) <= ms * 1000)

/** A fence counter's key (a lock id's, a read-write lock's): `…:fence`. */
const isCounter = (key: string) => key.endsWith(":fence")

/**
 * What makes clock-seeded fences exact again, along one sequence: each counter's offset, the redis
 * side's value less the store's, taken when both seed it. From then on, while it lives on both sides,
 * the offset must stay what it was (both counted alike, one by one), and every fence the two sides
 * give (in a reply, in a stored holding) must differ by the offset of one of the sequence's counters,
 * besides being within the tolerance ({@link sameFence}). Two counters seeded apart have offsets apart
 * by the gap between the two clocks' readings, so an off-by-one fence still shows.
 */
export const fenceOffsets = (ms: number) => {
  const byKey = new Map<string, number>()
  const seen = new Set<number>([0])
  return {
    /** Takes in the counters of both sides' keyspaces after a step; what broke an offset (empty: none). */
    learn: (redis: Dump, memory: Dump): ReadonlyArray<string> => {
      const out: Array<string> = []
      for (const key of byKey.keys()) if (redis[key] === undefined || memory[key] === undefined) byKey.delete(key)
      for (const key of Object.keys(redis).filter(isCounter)) {
        const [r, m] = [redis[key]!.value, memory[key]?.value]
        if (typeof r !== "string" || typeof m !== "string") continue
        const offset = Number(r) - Number(m)
        const before = byKey.get(key)
        if (before === undefined) {
          byKey.set(key, offset)
          seen.add(offset)
        } else if (before !== offset) {
          out.push(`${key}: counted apart: ${r} on redis, ${m} on memory (the offset was ${before}, now ${offset})`)
        }
      }
      return out
    },
    /** Whether two fences are the same: within the tolerance, and apart by a counter's offset. */
    same: (a: number, b: number): boolean => sameFence(a, b, ms) && seen.has(a - b)
  }
}

const show = (value: unknown) => JSON.stringify(value)

/** What differs between the two keyspaces (empty when they agree). */
export const diffDumps = (redis: Dump, memory: Dump, tolerance: Tolerance): ReadonlyArray<string> => {
  const out: Array<string> = []
  const fence = tolerance.fence ?? ((a: number, b: number) => sameFence(a, b, tolerance.ms))
  for (const key of new Set([...Object.keys(redis), ...Object.keys(memory)])) {
    const r = redis[key]
    const m = memory[key]
    if (r === undefined || m === undefined) {
      out.push(`${key}: only on ${r === undefined ? "memory" : "redis"} ${show(r ?? m)}`)
      continue
    }
    if (r.type !== m.type) {
      out.push(`${key}: type ${r.type} on redis, ${m.type} on memory`)
      continue
    }
    // PTTL: none (-1) vs some exactly; the time left within the tolerance
    if ((r.pttl === -1) !== (m.pttl === -1) || (r.pttl >= 0 && !closeEnough(r.pttl, m.pttl, tolerance.ms))) {
      out.push(`${key}: PTTL ${r.pttl} on redis, ${m.pttl} on memory`)
    }
    if (typeof r.value === "string" || typeof m.value === "string") {
      const fences = typeof r.value === "string" && typeof m.value === "string" &&
        fence(Number(r.value), Number(m.value))
      if (r.value !== m.value && !fences) out.push(`${key}: ${show(r.value)} on redis, ${show(m.value)} on memory`)
      continue
    }
    if (tolerance.timeScored(key)) {
      // Members whose times are a millisecond apart may sort either way: compare as member → time.
      const times = new Map(m.value)
      const same = r.value.length === m.value.length &&
        r.value.every(([member, at]) => times.has(member) && closeEnough(at, times.get(member)!, tolerance.ms))
      if (!same) out.push(`${key}: ${show(r.value)} on redis, ${show(m.value)} on memory`)
    } else if (
      r.value.length !== m.value.length ||
      !r.value.every(([member, score], i) => member === m.value[i]![0] && fence(score, m.value[i]![1] as number))
    ) {
      out.push(`${key}: ${show(r.value)} on redis, ${show(m.value)} on memory`)
    }
  }
  return out
}

/**
 * Whether two decoded replies agree: exactly, except times: a `remaining` field (ms left) within the
 * tolerance (see {@link closeEnough}), a `ttl` field too, but its 0 (the caller holds nothing) exactly;
 * and fences (a `fence` field, each of a `fences` list) by `fence` (default: {@link sameFence}).
 */
export const sameReply = (
  a: unknown,
  b: unknown,
  ms: number,
  fence: (a: number, b: number) => boolean = (a, b) => sameFence(a, b, ms),
  field?: string
): boolean => {
  if (typeof a === "number" && typeof b === "number" && (field === "fence" || field === "fences")) return fence(a, b)
  if (typeof a === "number" && typeof b === "number" && (field === "remaining" || field === "ttl")) {
    return field === "ttl" && (a === 0 || b === 0) ? a === b : closeEnough(a, b, ms)
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return Object.is(a, b)
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  // The items of a list are what the list's field names (`fences: [..]`: each a fence).
  return show(ka) === show(kb) &&
    ka.every((k) =>
      sameReply(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        ms,
        fence,
        Array.isArray(a) ? field : k
      )
    )
}

/** Messages published on one channel, taken (and forgotten) step by step. */
export interface Inbox {
  readonly take: Effect.Effect<ReadonlyArray<string>>
}

/**
 * Everything a redis-server publishes on channels matching `pattern`, over one subscriber connection.
 * `inbox(channel).take` first PINGs that connection: every message published before (by a script whose
 * reply has come) is delivered ahead of the PONG.
 */
export const redisMessages = (url: string, pattern: string) =>
  Effect.gen(function*() {
    const client = yield* raw(url)
    const received = new Map<string, Array<string>>()
    client.on("pmessage", (_pattern: string, channel: string, message: string) => {
      let list = received.get(channel)
      if (list === undefined) received.set(channel, list = [])
      list.push(message)
    })
    yield* Effect.promise(() => client.psubscribe(pattern))
    return {
      inbox: (channel: string): Inbox => ({
        take: Effect.promise(() => client.ping()).pipe(
          Effect.map(() => {
            const list = received.get(channel) ?? []
            received.delete(channel)
            return list
          })
        )
      })
    }
  })

/** Everything the embedded store publishes on `channel`, heard through its own subscriber. */
export const memoryMessages = (service: Redis.Service, channel: string): Effect.Effect<Inbox, never, Scope.Scope> =>
  Effect.gen(function*() {
    const received: Array<string> = []
    const { remove } = yield* service.subscriber!.listen(channel, (message) => void received.push(message))
    yield* Effect.addFinalizer(() => remove)
    yield* Effect.orDie(service.subscriber!.subscribe(channel))
    return { take: Effect.sync(() => received.splice(0, received.length)) }
  })
