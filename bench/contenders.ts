/**
 * The libraries under comparison, each behind one small interface: a worker with its own
 * connection(s) that can acquire (true, or false when the library gave up) and release one lock.
 * Every library gets the waiting settings its README recommends; they are printed with the results.
 */
import { Lock as UpstashLock } from "@upstash/lock"
import { Redis as UpstashRedis } from "@upstash/redis"
import { DistributedSemaphore, RedisBacking } from "effect-distributed-lock"
import { Effect, Exit, type Layer, ManagedRuntime, Redacted, Schedule, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { Mutex } from "redis-semaphore"
import { randomToken } from "../src/internal/token.js"
import * as Lock from "../src/Lock.js"
import type { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Upstash from "../src/Redis/Upstash.js"
import Redlock from "./redlock.js"

export interface Worker {
  readonly acquire: () => Promise<boolean>
  readonly release: () => Promise<void>
  readonly close: () => Promise<void>
}

export interface Contender {
  readonly name: string
  readonly settings: string
  readonly makeWorker: (key: string) => Promise<Worker>
}

export interface Servers {
  readonly redisUrl: string
  readonly upstashUrl: string
  readonly upstashToken: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quit = (client: IORedis) => client.quit().then(() => undefined, () => undefined)

const COMPARE_AND_DELETE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/** No library: SET NX PX, a compare-and-delete script, and a retry every millisecond. */
const floor = (servers: Servers): Contender => ({
  name: "raw ioredis (floor)",
  settings: "SET NX PX 10 s + EVALSHA compare-and-delete; retry every 1 ms",
  makeWorker: async (key) => {
    const client = new IORedis(servers.redisUrl)
    const sha = String(await client.script("LOAD", COMPARE_AND_DELETE))
    let token = ""
    return {
      acquire: async () => {
        token = randomToken()
        while ((await client.set(key, token, "PX", 10_000, "NX")) !== "OK") await sleep(1)
        return true
      },
      release: async () => void (await client.evalsha(sha, 1, key, token)),
      close: () => quit(client)
    }
  }
})

/** An Effect library's scoped acquisition, driven from Promises: acquire into a scope, release by closing it. */
const scoped = (
  runtime: ManagedRuntime.ManagedRuntime<any, any>,
  acquire: Effect.Effect<unknown, unknown, any>,
  close: () => Promise<void> = () => Promise.resolve()
): Worker => {
  let scope: Scope.CloseableScope | undefined
  return {
    acquire: async () => {
      const fresh = await runtime.runPromise(Scope.make())
      const exit = await runtime.runPromiseExit(Scope.extend(acquire, fresh))
      if (Exit.isFailure(exit)) {
        await runtime.runPromise(Scope.close(fresh, Exit.void))
        return false
      }
      scope = fresh
      return true
    },
    release: () => runtime.runPromise(Scope.close(scope!, Exit.void)),
    close: async () => {
      await runtime.dispose()
      await close()
    }
  }
}

const effectLock = (
  name: string,
  settings: string,
  layer: () => Layer.Layer<Redis, unknown>,
  options: Omit<Lock.AcquireOptions, "id">
): Contender => ({
  name,
  settings,
  makeWorker: async (key) => scoped(ManagedRuntime.make(layer()), Lock.acquire({ id: key, ...options }))
})

export const contenders = (servers: Servers): ReadonlyArray<Contender> => [
  floor(servers),
  effectLock(
    "effect-lock (ioredis)",
    "fair (default): FIFO hand-off, pub/sub wake-up; timeout 120 s",
    () => IoRedis.layer({ url: servers.redisUrl }),
    { lease: 10_000, timeout: "120 seconds" }
  ),
  effectLock(
    "effect-lock (ioredis, fair: false)",
    "plain SET NX, retry every 100 ms (default with a timeout)",
    () => IoRedis.layer({ url: servers.redisUrl }),
    { lease: 10_000, timeout: "120 seconds", fair: false }
  ),
  effectLock(
    "effect-lock (Upstash REST)",
    "fair, no pub/sub over REST: jittered 10 ms polling bounded by the holder's lease",
    () => Upstash.layer({ url: servers.upstashUrl, token: Redacted.make(servers.upstashToken) }),
    { lease: 10_000, timeout: "120 seconds", retry: Schedule.jittered(Schedule.spaced("10 millis")) }
  ),
  {
    name: "@upstash/lock 0.2.1 (Upstash REST)",
    settings: "defaults: retry 3 attempts × 100 ms (a give-up counts as a failed acquisition)",
    makeWorker: async (key) => {
      const redis = new UpstashRedis({ url: servers.upstashUrl, token: servers.upstashToken })
      let lock: UpstashLock | undefined
      return {
        acquire: () => {
          // @upstash/lock's types name its own copy of @upstash/redis's class; the client is the same.
          lock = new UpstashLock({ id: key, redis: redis as never, lease: 10_000 })
          return lock.acquire()
        },
        release: async () => void (await lock!.release()),
        close: () => Promise.resolve()
      }
    }
  },
  {
    name: "redlock 4.2.0 (one node)",
    settings: "README: retryCount 10, retryDelay 200 ms, retryJitter 200 ms",
    makeWorker: async (key) => {
      const client = new IORedis(servers.redisUrl)
      const redlock = new Redlock([client], { driftFactor: 0.01, retryCount: 10, retryDelay: 200, retryJitter: 200 })
      redlock.on("clientError", () => {})
      let lock: { unlock: () => Promise<unknown> } | undefined
      return {
        acquire: () => redlock.lock(key, 10_000).then((l) => ((lock = l), true), () => false),
        release: async () => void (await lock!.unlock().catch(() => undefined)),
        close: () => quit(client)
      }
    }
  },
  {
    name: "redis-semaphore 5 Mutex",
    settings: "defaults: retryInterval 10 ms, acquireTimeout 10 s, lockTimeout 10 s",
    makeWorker: async (key) => {
      const client = new IORedis(servers.redisUrl)
      let mutex: Mutex | undefined
      return {
        acquire: () => {
          mutex = new Mutex(client, key)
          return mutex.acquire().then(() => true, () => false)
        },
        release: () => mutex!.release(),
        close: () => quit(client)
      }
    }
  },
  {
    name: "effect-distributed-lock 0.0.11",
    settings: "limit 1, ttl 10 s; push-based acquire (pub/sub) on, 100 ms polling fallback",
    makeWorker: async (key) => {
      const client = new IORedis(servers.redisUrl)
      const runtime = ManagedRuntime.make(RedisBacking.layer(client))
      const semaphore = await runtime.runPromise(DistributedSemaphore.make(key, { limit: 1, ttl: "10 seconds" }))
      return scoped(runtime, semaphore.take(1), () => quit(client))
    }
  }
]
