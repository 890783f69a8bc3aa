/**
 * Issue 23 §8 (second half): a Redis user whose ACL denies EVALSHA but allows EVAL. Scripts fall back to
 * EVAL, and after the first refusal go straight to EVAL (one refused EVALSHA per service, not one per
 * call). A real ACL user on a private redis-server, over TCP and over the REST fixture.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import type { Layer } from "effect"
import { Effect, Exit, Fiber, Logger, Option, Redacted, Scope } from "effect"
import type { Redis as IORedisClient } from "ioredis"
import { DEFAULT_PREFIX, lockKeys, semaphoreKeys } from "../../src/internal/keys.js"
import * as Lock from "../../src/Lock.js"
import type { Redis } from "../../src/Redis.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import * as Semaphore from "../../src/Semaphore.js"
import { eventually, raw } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const USER = "no-evalsha"
const PASSWORD = "acl-pw-4b1d"

/** `calls` and `rejected_calls` of one command, from INFO commandstats. */
const stats = (info: string, command: string) => {
  const line = new RegExp(`cmdstat_${command}:([^\\r\\n]*)`).exec(info)?.[1] ?? ""
  const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0)
  return { calls: field("calls"), rejected: field("rejected_calls") }
}

/** Takes, checks and gives back a lock several times, as the user would. */
const exercise = (layer: Layer.Layer<Redis, unknown>) =>
  Effect.gen(function*() {
    const id = yield* uniqueId("acl")
    const lock = yield* Lock.make({ id })
    let first = 0
    for (let i = 0; i < 3; i++) {
      expect(yield* lock.acquire()).toBe(true)
      if (i === 0) first = Option.getOrThrow(yield* lock.fence)
      expect(yield* lock.status).toBe("ACQUIRED")
      expect(yield* lock.release).toBe(true)
    }
    // the fourth acquisition's fence, counted from the first (which starts at Redis TIME in µs)
    return yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence - first + 1))
  }).pipe(Effect.provide(layer))

describe("a user with EVALSHA denied and EVAL allowed (issue 23 §8)", () => {
  it.scopedLive(
    "gets an EVAL fallback over ioredis and over Upstash, with one refused EVALSHA per service",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.startFresh()
        const admin = yield* raw(server.url)
        yield* Effect.promise(() =>
          admin.call("ACL", "SETUSER", USER, "on", `>${PASSWORD}`, "~*", "&*", "+@all", "-evalsha")
        )
        const url = `redis://${USER}:${PASSWORD}@127.0.0.1:${server.port}`
        const denied = yield* Effect.promise(() => admin.call("ACL", "DRYRUN", USER, "EVALSHA", "x", "0"))
        expect(String(denied)).toMatch(/no permissions to run the 'evalsha' command/)

        const before = stats(yield* Effect.promise(() => admin.info("commandstats")), "evalsha")
        // was: RedisError "NOPERM User no-evalsha has no permissions to run the 'evalsha' command"
        expect(yield* exercise(IoRedis.layer({ url }))).toBe(4)
        const afterTcp = stats(yield* Effect.promise(() => admin.info("commandstats")), "evalsha")
        expect(afterTcp.rejected - before.rejected).toBe(1)
        expect(afterTcp.calls).toBe(before.calls)

        const rest = yield* UpstashServer.start({ redisUrl: url, token: "acl-token" })
        expect(yield* exercise(Upstash.layer({ url: rest.url, token: Redacted.make(rest.token) }))).toBe(4)
        const afterRest = stats(yield* Effect.promise(() => admin.info("commandstats")), "evalsha")
        expect(afterRest.rejected - afterTcp.rejected).toBe(1)
        expect(stats(yield* Effect.promise(() => admin.info("commandstats")), "eval").calls).toBeGreaterThanOrEqual(20)
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )
})

const NO_PUBLISH = "no-publish"

/** A hand-off from a holder to a waiter, by the parity handle and then by a scoped lease; the waiter's fences. */
const handOffs = (layer: Layer.Layer<Redis, unknown>, admin: IORedisClient) =>
  Effect.gen(function*() {
    const id = yield* uniqueId("acl-publish")
    const keys = lockKeys(DEFAULT_PREFIX, id)
    const waitFor = (n: number) =>
      Effect.fork(Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), (lease) => lease.fence))).pipe(
        Effect.tap(() => eventually(Effect.promise(() => admin.zcard(keys.queue)), (size) => size === n, "10 seconds"))
      )
    const holder = yield* Lock.make({ id })
    expect(yield* holder.acquire()).toBe(true)
    // fences counted from the holder's (a fresh counter starts at Redis TIME in µs)
    const base = Option.getOrThrow(yield* holder.fence) - 1
    const first = yield* waitFor(1)
    // was: RedisError "NOPERM … publish" although the lock had been handed over
    const released = yield* holder.release
    const fences = [yield* Fiber.join(first)]
    const holding = yield* Scope.make()
    yield* Scope.extend(Lock.acquire({ id }), holding)
    const second = yield* waitFor(1)
    yield* Scope.close(holding, Exit.void)
    fences.push(yield* Fiber.join(second))
    // a semaphore's release wakes its head the same way (the publish sits in a Lua function of its own)
    const semaphore = yield* Semaphore.make({ id, permits: 1 })
    const taking = yield* Scope.make()
    yield* Scope.extend(semaphore.take(1), taking)
    const taker = yield* Effect.fork(
      Effect.scoped(Effect.map(semaphore.take(1, { timeout: "10 seconds" }), () => "taken"))
    )
    const { queue } = semaphoreKeys(DEFAULT_PREFIX, id)
    yield* eventually(Effect.promise(() => admin.zcard(queue)), (size) => size === 1, "10 seconds")
    yield* Scope.close(taking, Exit.void)
    expect(yield* Fiber.join(taker)).toBe("taken")
    return { released, fences: fences.map((fence) => fence - base) }
  }).pipe(Effect.provide(layer), Effect.scoped)

describe("a user without PUBLISH (issue 23 §8)", () => {
  it.scopedLive(
    "a release that hands the lock over reports success, the waiter takes it by looking, and one warning says why",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.startFresh()
        const admin = yield* raw(server.url)
        yield* Effect.promise(() =>
          admin.call("ACL", "SETUSER", NO_PUBLISH, "on", `>${PASSWORD}`, "~*", "&*", "+@all", "-publish", "-spublish")
        )
        const url = `redis://${NO_PUBLISH}:${PASSWORD}@127.0.0.1:${server.port}`
        const logs: Array<string> = []
        const logger = Logger.make(({ message }) => void logs.push(String(message)))
        const withLogs = <A, E>(effect: Effect.Effect<A, E>) =>
          effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))

        expect(yield* withLogs(handOffs(IoRedis.layer({ url }), admin))).toEqual({ released: true, fences: [2, 4] })
        const rest = yield* UpstashServer.start({ redisUrl: url, token: "acl-token" })
        expect(yield* withLogs(handOffs(Upstash.layer({ url: rest.url, token: Redacted.make(rest.token) }), admin)))
          .toEqual({ released: true, fences: [2, 4] })

        // once per service, never "release not answered … retrying until the lease ends"
        const refused = logs.filter((line) => line.includes("Redis refused PUBLISH"))
        expect(refused.length).toBe(2)
        expect(refused[0]).toContain("in lock.release")
        expect(refused[0]).toContain("a release released")
        expect(logs.filter((line) => /release not answered|lease extension failed/.test(line))).toEqual([])
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )
})
