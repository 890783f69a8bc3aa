/**
 * The Promise API's runtimes: one per client, shared by every object given it; what `dispose` and an
 * ioredis `quit` close (and never the client itself); programs that end on their own after their last
 * `await`; and, on the embedded store's test kit, a stolen lock, an expired lease, a fault, a timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { execFile } from "node:child_process"
import * as path from "node:path"
import * as LockError from "../src/LockError.js"
import * as P from "../src/promise.js"
import * as Redis from "../src/Redis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as MemoryTest from "../src/Redis/MemoryTest.js"
import { aborted, lockKey, rejection, uniqueId, until } from "./conformance/promise.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

/** A fresh embedded store with its test kit, as a layer to pass as `redis`. */
const memoryTest = async () => {
  const scope = Effect.runSync(Scope.make())
  const { kit, redis: store } = await Effect.runPromise(Scope.extend(MemoryTest.make, scope))
  const redis = Layer.succeed(Redis.Redis, store)
  const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(effect)
  return {
    redis,
    kit,
    run,
    close: async () => {
      await P.dispose(redis)
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

describe("the embedded store (redis: a layer)", () => {
  it("objects given the same layer share one store; another layer is another store", async () => {
    const id = uniqueId("shared-layer")
    const other = Layer.fresh(Memory.layer)
    expect(await new P.Lock({ id, redis: Memory.layer }).acquire()).toBe(true)
    expect(await new P.Lock({ id, redis: Memory.layer, retry: { attempts: 1 } }).acquire()).toBe(false)
    expect(await new P.Lock({ id, redis: other }).acquire()).toBe(true)
    await Promise.all([P.dispose(Memory.layer), P.dispose(other)])
  })

  it("a stolen lock aborts the holder's signal with LockLost; the thief's fence is higher", async () => {
    const store = await memoryTest()
    const id = uniqueId("stolen")
    const lease = await new P.Lock({ id, redis: store.redis, lease: 600 }).acquireOrThrow()
    const thief = await store.run(store.kit.steal(id))
    const reason = await aborted(lease.signal)
    expect(reason).toBeInstanceOf(P.LockLost)
    expect(reason).toMatchObject({ id, fence: lease.fence, reason: "expired" })
    expect(thief).toBeGreaterThan(lease.fence)
    await lease.release()
    await store.close()
  })

  it("an expired lease makes using reject with LockLost, after the function has seen the signal abort", async () => {
    const store = await memoryTest()
    const id = uniqueId("expired")
    const seen: Array<string> = []
    const error = await rejection(
      new P.Lock({ id, redis: store.redis, lease: 600 }).using(async (signal) => {
        await store.run(store.kit.expire(id))
        await aborted(signal)
        seen.push("aborted")
      })
    )
    expect(seen).toEqual(["aborted"])
    expect(error).toBeInstanceOf(P.LockLost)
    expect(await store.run(store.kit.keyspace)).not.toHaveProperty(lockKey(id))
    await store.close()
  })

  it("an injected fault rejects that call with RedisError, and the next call works", async () => {
    const store = await memoryTest()
    const lock = new P.Lock({ id: uniqueId("fault"), redis: store.redis })
    await store.run(store.kit.failNext(1))
    const error = await rejection(lock.acquire())
    expect(error).toBeInstanceOf(P.RedisError)
    expect(error.detail).toBe("fault injected by MemoryTest")
    expect(await lock.acquire()).toBe(true)
    await store.close()
  })

  it("a timeout while another owner holds the lock rejects with LockNotAcquired, reason \"timeout\", once it has passed", async () => {
    const store = await memoryTest()
    const id = uniqueId("timeout")
    expect(await new P.Lock({ id, redis: store.redis }).acquire()).toBe(true)
    const started = performance.now()
    const error = await rejection(new P.Lock({ id, redis: store.redis }).acquireOrThrow({ timeout: 300 }))
    expect(error).toBeInstanceOf(P.LockNotAcquired)
    expect(error).toMatchObject({ id, reason: "timeout" })
    expect(error.cause).toBeInstanceOf(LockError.LockNotAcquired)
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    await store.close()
  })

  it("dispose ends calls in flight with RedisError and releases the leases still held, aborting their signals", async () => {
    const store = await memoryTest()
    const id = uniqueId("dispose")
    const lease = await new P.Lock({ id, redis: store.redis }).acquireOrThrow()
    const waiting = rejection(new P.Lock({ id, redis: store.redis }).acquireOrThrow({ timeout: 20_000 }))
    await until(
      async () => ((await store.run(store.kit.keyspace))[`${lockKey(id)}:queue`]?.value.length ?? 0) === 1,
      "the second waits in line"
    )
    await P.dispose(store.redis)
    expect(await waiting).toBeInstanceOf(P.RedisError)
    expect(lease.lost).toBe(true)
    expect(lease.signal.reason).toBeInstanceOf(P.RedisError)
    expect(await store.run(store.kit.keyspace)).not.toHaveProperty(lockKey(id))
    // the next call starts a new runtime on the same client
    expect(await new P.Lock({ id, redis: store.redis }).acquire()).toBe(true)
    await store.close()
  })

  it("a value that is no client rejects every call with InvalidOptions (option \"redis\"); the constructor does not throw", async () => {
    for (const redis of [{}, 42, null]) {
      const lock = new P.Lock({ id: "no-client", redis: redis as unknown as P.Client })
      const error = await rejection(lock.acquire())
      expect(error).toBeInstanceOf(P.InvalidOptions)
      expect(error.option).toBe("redis")
    }
  })
})

describe("over real servers", () => {
  const servers = ManagedRuntime.make(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)))
  let server: RedisServer.Server
  let fixture: UpstashServer.Upstash
  let raw: IORedis
  beforeAll(async () => {
    server = await servers.runPromise(RedisServer.RedisServer)
    fixture = await servers.runPromise(UpstashServer.UpstashServer)
    raw = new IORedis(server.url)
  })
  afterAll(async () => {
    await raw?.quit()
    await servers.dispose()
  })

  /** How many connections the server has with `name` (ioredis's `connectionName`, which `duplicate` keeps). */
  const connections = async (name: string) =>
    String(await raw.client("LIST")).split("\n").filter((line) => line.includes(` name=${name} `)).length
  const inLine = (id: string) => raw.zcard(`${lockKey(id)}:queue`)

  it("objects on one ioredis client share one subscriber connection; dispose closes it, never the client; quit closes it too", async () => {
    const name = uniqueId("client")
    const client = new IORedis(server.url, { connectionName: name })
    await client.ping()
    expect(await connections(name)).toBe(1)
    const id = uniqueId("shared")
    const holder = new P.Lock({ id, redis: client })
    expect(await holder.acquire()).toBe(true)
    const waiters = [1, 2].map(() => new P.Lock({ id, redis: client }).using(() => "ran", { timeout: 20_000 }))
    await until(async () => (await inLine(id)) === 2, "both wait in line")
    expect(await holder.release()).toBe(true)
    expect(await Promise.all(waiters)).toEqual(["ran", "ran"])
    // the client and one subscriber, for both objects
    expect(await connections(name)).toBe(2)
    await P.dispose(client)
    await until(async () => (await connections(name)) === 1, "the subscriber closed")
    expect(client.status).toBe("ready")
    expect(await client.ping()).toBe("PONG")
    // a new runtime on the same client, whose subscriber goes when the client quits
    const again = new P.Lock({ id, redis: client })
    expect(await again.acquire()).toBe(true)
    const waiter = new P.Lock({ id, redis: client }).using(() => "ran again", { timeout: 20_000 })
    await until(async () => (await inLine(id)) === 1, "a waiter in line")
    expect(await again.release()).toBe(true)
    expect(await waiter).toBe("ran again")
    expect(await connections(name)).toBe(2)
    await client.quit()
    await until(async () => (await connections(name)) === 0, "the subscriber closed with the client")
  })

  /** Runs the child program; resolves with its output once it has exited by itself (30 s at most). */
  const child = (...args: Array<string>) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", path.join(import.meta.dirname, "fixtures/promise-child.ts"), ...args],
        { timeout: 30_000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stderr}`)))
      )
    )
  const expected = [
    "acquired true",
    "contended false",
    "waited",
    "fenced true",
    JSON.stringify({ _tag: "Ran", edge: "trailing", result: 42 }),
    "done",
    ""
  ].join("\n")

  it("a program on the embedded store ends on its own after its last await", async () => {
    expect(await child("memory")).toBe(expected)
  })

  it("a program on an ioredis client ends on its own once it has quit the client", async () => {
    expect(await child("ioredis", server.url)).toBe(expected)
  })

  it("a program on an @upstash/redis client ends on its own after its last await", async () => {
    expect(await child("upstash", fixture.url, fixture.token)).toBe(expected)
  })
})
