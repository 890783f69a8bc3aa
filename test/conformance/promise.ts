/**
 * The Promise API's contract, the same cases on every backend: the `@upstash/lock` methods, the
 * holdings (`using`, `await using`, the AbortSignal on loss), Semaphore and Debounce, and rejections
 * that are the module's Error classes. Time is the wall clock (the Promise API runs on a live runtime):
 * the cases wait for conditions, with wide margins.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, type ManagedRuntime, Runtime } from "effect"
import { randomToken } from "../../src/internal/token.js"
import * as LockError from "../../src/LockError.js"
import * as P from "../../src/promise.js"
import * as Redis from "../../src/Redis.js"
import { readKey, readList, writeKey } from "../utils/probe.js"

export interface Env {
  /** The client under test, shared by the cases. */
  readonly redis: P.Client
  /** A client of the same kind whose every call fails at the transport. */
  readonly broken: P.Client
  /** Test scripts on the same store, from beside the client under test. */
  readonly probe: ManagedRuntime.ManagedRuntime<Redis.Redis, unknown>
  readonly close: () => Promise<void>
}

export interface Backend {
  readonly name: string
  readonly setup: () => Promise<Env>
}

/** `DEL key`: another process removed the key. */
const remove = Redis.script<number>({
  name: "test.remove",
  numberOfKeys: 1,
  lua: "return redis.call('DEL', KEYS[1])",
  local: (ks, [key]) => ks.del(key!),
  decode: Redis.decodeInteger
})

export const lockKey = (id: string) => `effect-lock:lock:{${id}}`
const semaphoreKey = (id: string) => `effect-lock:semaphore:{${id}}`
export const uniqueId = (label: string) => `${label}-${randomToken().slice(0, 10)}`

/** What `promise` rejects with; fails the test if it resolves. */
export const rejection = (promise: Promise<unknown>): Promise<any> =>
  promise.then((value) => {
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
  }, (error: unknown) => error)

/** The signal's reason, once it aborts. */
export const aborted = (signal: AbortSignal): Promise<unknown> =>
  new Promise((resolve) =>
    signal.aborted ? resolve(signal.reason) : signal.addEventListener("abort", () => resolve(signal.reason))
  )

/** Polls `check` every 10 ms until it holds (20 s at most). */
export const until = async (check: () => Promise<boolean>, what: string): Promise<void> => {
  const deadline = performance.now() + 20_000
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within 20 s: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export const promiseContract = (backend: Backend) =>
  describe(`Promise API: ${backend.name}`, () => {
    let env: Env
    beforeAll(async () => {
      env = await backend.setup()
    })
    afterAll(() => env?.close())

    const probe = <A>(effect: Effect.Effect<A, unknown, Redis.Redis>) => env.probe.runPromise(effect)
    const pttl = (key: string) => probe(Effect.map(readKey(key), (raw) => raw.pttl))
    const lock = (id: string, options: Partial<P.LockOptions> = {}) => new P.Lock({ id, redis: env.redis, ...options })

    it("acquire: true on a free lock, false for another Lock while it is held; the lease is the key's PX", async () => {
      const id = uniqueId("acquire")
      const a = lock(id, { lease: 5000 })
      const b = lock(id, { retry: { attempts: 1 } })
      expect(await a.acquire()).toBe(true)
      expect(await b.acquire()).toBe(false)
      expect(await a.getStatus()).toBe("ACQUIRED")
      expect(await b.getStatus()).toBe("FREE")
      const seen = await b.getState()
      expect(seen._tag).toBe("HeldByOther")
      expect(seen._tag !== "Free" && seen.remaining).toBeGreaterThan(3000)
      expect(await pttl(lockKey(id))).toBeGreaterThan(3000)
      expect(await pttl(lockKey(id))).toBeLessThanOrEqual(5000)
      expect(await a.getFence()).toBeGreaterThan(0)
      expect(await b.getFence()).toBeUndefined()
      expect(await a.release()).toBe(true)
    })

    it("release: only the holder's frees the lock, and the next holder's fence is higher", async () => {
      const id = uniqueId("release")
      const a = lock(id)
      const b = lock(id, { retry: { attempts: 1 } })
      expect(await a.acquire()).toBe(true)
      const first = await a.getFence()
      expect(await b.release()).toBe(false)
      expect(await pttl(lockKey(id))).toBeGreaterThan(0)
      expect(await a.release()).toBe(true)
      expect(await pttl(lockKey(id))).toBe(-2)
      expect((await a.getState())._tag).toBe("Free")
      expect(await b.acquire()).toBe(true)
      expect(await b.getFence()).toBeGreaterThan(first!)
      expect(await a.release()).toBe(false)
      expect(await b.release()).toBe(true)
    })

    it("extend adds milliseconds to the holder's lease, also with under a second left; others get false", async () => {
      const id = uniqueId("extend")
      const a = lock(id, { lease: 800 })
      expect(await a.acquire()).toBe(true)
      expect(await lock(id).extend(5000)).toBe(false)
      expect(await a.extend(1500)).toBe(true)
      const after = await pttl(lockKey(id))
      expect(after).toBeGreaterThan(1500)
      expect(after).toBeLessThanOrEqual(2300)
      expect(await a.release()).toBe(true)
    })

    it("acquire on the holder renews its lease with the same fence, and never loses the token it holds", async () => {
      const id = uniqueId("renew")
      const a = lock(id, { lease: 3000 })
      expect(await a.acquire()).toBe(true)
      const fence = await a.getFence()
      expect(await a.acquire({ lease: 8000, retry: { attempts: 1 } })).toBe(true)
      expect(await a.getFence()).toBe(fence)
      expect(await pttl(lockKey(id))).toBeGreaterThan(3000)
      expect(await a.release()).toBe(true)
      expect(await pttl(lockKey(id))).toBe(-2)
    })

    it("acquire tries retry.attempts times, retry.delay apart, and wins when the holder releases meanwhile", async () => {
      const id = uniqueId("retry")
      const a = lock(id)
      const b = lock(id)
      expect(await a.acquire()).toBe(true)
      const started = performance.now()
      expect(await b.acquire({ retry: { attempts: 3, delay: 150 } })).toBe(false)
      // two delays between three tries (none after the last)
      expect(performance.now() - started).toBeGreaterThanOrEqual(295)
      const waiting = b.acquire({ retry: { attempts: 1000, delay: 20 } })
      expect((await b.getState())._tag).toBe("HeldByOther")
      expect(await a.release()).toBe(true)
      expect(await waiting).toBe(true)
      expect(await b.release()).toBe(true)
    })

    it("acquireOrThrow rejects with LockNotAcquired (instanceof, _tag, fields, the Effect error as cause)", async () => {
      const id = uniqueId("throw")
      const a = lock(id)
      expect(await a.acquire()).toBe(true)
      const held = await rejection(lock(id).acquireOrThrow({ retry: { attempts: 1 } }))
      expect(held).toBeInstanceOf(P.LockNotAcquired)
      expect(held).toBeInstanceOf(Error)
      expect(held).toMatchObject({ _tag: "LockNotAcquired", name: "LockNotAcquired", id, reason: "held" })
      expect(held.remaining).toBeGreaterThan(0)
      expect(held.cause).toBeInstanceOf(LockError.LockNotAcquired)
      expect(held.message).toBe(held.cause.message)
      expect(await a.release()).toBe(true)
    })

    it("await using: the lease holds in the block and is released at its end; each holding's fence is higher", async () => {
      const id = uniqueId("using-block")
      const holder = lock(id)
      const observer = lock(id)
      let first: number
      {
        await using lease = await holder.acquireOrThrow()
        first = lease.fence
        expect(lease.id).toBe(id)
        expect(lease.lost).toBe(false)
        expect((await observer.getState())._tag).toBe("HeldByOther")
      }
      expect((await observer.getState())._tag).toBe("Free")
      {
        await using lease = await holder.acquireOrThrow()
        expect(lease.fence).toBeGreaterThan(first)
      }
      expect(await pttl(lockKey(id))).toBe(-2)
    })

    it("using resolves with the function's value and releases; the function's own rejection comes back as it is", async () => {
      const id = uniqueId("using")
      const holder = lock(id)
      const observer = lock(id)
      const value = await holder.using(async (signal) => {
        expect(signal.aborted).toBe(false)
        expect((await observer.getState())._tag).toBe("HeldByOther")
        return 42
      })
      expect(value).toBe(42)
      expect((await observer.getState())._tag).toBe("Free")
      const boom = new Error("boom")
      expect(
        await rejection(holder.using(() => {
          throw boom
        }))
      ).toBe(boom)
      expect((await observer.getState())._tag).toBe("Free")
    })

    it("using with a timeout waits in line: the second runs after the first has released", async () => {
      const id = uniqueId("line")
      const observer = lock(id)
      const order: Array<string> = []
      let open!: () => void
      const gate = new Promise<void>((resolve) => (open = resolve))
      const first = lock(id).using(async () => {
        order.push("first")
        await gate
        order.push("first done")
      })
      await until(async () => (await observer.getState())._tag === "HeldByOther", "the first holds the lock")
      const second = lock(id).using(async () => void order.push("second"), { timeout: 20_000 })
      await until(
        () => probe(Effect.map(readList(`${lockKey(id)}:queue`), (line) => line.length === 1)),
        "the second waits in line"
      )
      open()
      await Promise.all([first, second])
      expect(order).toEqual(["first", "first done", "second"])
    })

    it("the signal aborts with LockLost the moment the lease is lost; using rejects with it once the function settled", async () => {
      const id = uniqueId("lost")
      let reason: unknown
      let settled = false
      const result = lock(id, { lease: 600 }).using(async (signal) => {
        await probe(Effect.flatMap(Redis.Redis, (redis) => redis.run(remove, [lockKey(id)], [])))
        reason = await aborted(signal)
        expect(signal.aborted).toBe(true)
        settled = true
        return "finished anyway"
      })
      const error = await rejection(result)
      expect(settled).toBe(true)
      expect(error).toBe(reason)
      expect(error).toBeInstanceOf(P.LockLost)
      expect(error).toMatchObject({ _tag: "LockLost", id, reason: "expired" })
      expect(error.fence).toBeGreaterThan(0)
      expect(error.cause).toBeInstanceOf(LockError.LockLost)
    })

    it("a held lease's signal aborts when another owner takes the key; extend is false, release leaves its key", async () => {
      const id = uniqueId("taken")
      const lease = await lock(id).acquireOrThrow({ lease: 600 })
      await probe(writeKey(lockKey(id), "another-owner", 10_000))
      const reason = await aborted(lease.signal)
      expect(reason).toBeInstanceOf(P.LockLost)
      expect(reason).toMatchObject({ id, fence: lease.fence })
      expect(lease.lost).toBe(true)
      expect(await lease.extend(1000)).toBe(false)
      await lease.release()
      expect((await probe(readKey(lockKey(id)))).value).toBe("another-owner")
    })

    it("lease.extend adds milliseconds to a held lease", async () => {
      const id = uniqueId("lease-extend")
      await using lease = await lock(id).acquireOrThrow({ lease: 2000 })
      expect(await lease.extend(6000)).toBe(true)
      expect(await pttl(lockKey(id))).toBeGreaterThan(6000)
    })

    it("Semaphore: at most `permits` at once, n taken all at once; available counts; a full one rejects", async () => {
      const id = uniqueId("semaphore")
      const semaphore = new P.Semaphore({ id, redis: env.redis, permits: 3 })
      expect(await semaphore.available()).toBe(3)
      await using one = await semaphore.acquireOrThrow()
      await using two = await semaphore.acquireOrThrow({ permits: 2 })
      expect(two.fence).toBeGreaterThan(one.fence)
      expect(await semaphore.available()).toBe(0)
      expect(await rejection(semaphore.acquireOrThrow({ retry: { attempts: 1 } }))).toBeInstanceOf(P.LockNotAcquired)
      await one.release()
      expect(await semaphore.available()).toBe(1)
      expect(await semaphore.using(() => semaphore.available())).toBe(0)
      expect(await semaphore.available()).toBe(1)
      const tooMany = await rejection(semaphore.acquireOrThrow({ permits: 4 }))
      expect(tooMany).toBeInstanceOf(P.InvalidOptions)
    })

    it("Semaphore: a holding's signal aborts with LockLost when its permits are taken away", async () => {
      const id = uniqueId("semaphore-lost")
      const semaphore = new P.Semaphore({ id, redis: env.redis, permits: 2, lease: 600 })
      const error = await rejection(semaphore.using(async (signal) => {
        await probe(Effect.flatMap(Redis.Redis, (redis) => redis.run(remove, [semaphoreKey(id)], [])))
        return aborted(signal)
      }))
      expect(error).toBeInstanceOf(P.LockLost)
      expect(error.id).toBe(id)
    })

    it("Debounce: calls within wait collapse into one run, with the last call's arguments; the others are Superseded", async () => {
      const id = uniqueId("debounce")
      const runs: Array<number> = []
      const debounce = new P.Debounce({
        id,
        redis: env.redis,
        wait: 300,
        callback: async (n: number) => {
          runs.push(n)
          return n * 10
        }
      })
      const outcomes = await Promise.all([debounce.call(1), debounce.call(2), debounce.call(3)])
      expect(runs).toHaveLength(1)
      // the call that ran is the last one recorded, with its own arguments
      expect(outcomes[runs[0]! - 1]).toEqual({ _tag: "Ran", edge: "trailing", result: runs[0]! * 10 })
      expect(outcomes.filter((outcome) => outcome._tag === "Superseded")).toHaveLength(2)
    })

    it("Debounce: a callback's rejection rejects the call that ran it with that very error", async () => {
      const boom = new Error("boom")
      const debounce = new P.Debounce({
        id: uniqueId("debounce-fail"),
        redis: env.redis,
        wait: 50,
        callback: () => Promise.reject(boom)
      })
      expect(await rejection(debounce.call())).toBe(boom)
    })

    it("bad options reject with InvalidOptions (fields kept, the Effect error as cause) and reach no key", async () => {
      const id = uniqueId("invalid")
      const cases: Array<readonly [string, () => Promise<unknown>]> = [
        ["id", () => new P.Lock({ id: "", redis: env.redis }).acquire()],
        ["lease", () => lock(id, { lease: -1 }).acquire()],
        ["extend", () => lock(id).extend(0)],
        ["retry.attempts", () => lock(id).acquire({ retry: { attempts: 0 } })],
        ["timeout", () => lock(id).acquireOrThrow({ timeout: -5 })],
        ["permits", () => new P.Semaphore({ id, redis: env.redis, permits: 0 }).available()],
        ["wait", () => new P.Debounce({ id, redis: env.redis, wait: 0, callback: () => 1 }).call()]
      ]
      for (const [option, call] of cases) {
        const error = await rejection(call())
        expect(error, option).toBeInstanceOf(P.InvalidOptions)
        expect(error).toMatchObject({ _tag: "InvalidOptions", name: "InvalidOptions", option })
        expect(error.cause).toBeInstanceOf(LockError.InvalidOptions)
      }
      expect(await pttl(lockKey(id))).toBe(-2)
    })

    it("a Redis fault rejects with RedisError: never false, never a FiberFailure", async () => {
      const id = uniqueId("fault")
      const broken = new P.Lock({ id, redis: env.broken, retry: { attempts: 1 } })
      const calls = [() => broken.acquire(), () => broken.getStatus(), () => broken.acquireOrThrow()]
      for (const call of calls) {
        const error = await rejection(call())
        expect(error).toBeInstanceOf(P.RedisError)
        expect(error).toMatchObject({ _tag: "RedisError", name: "RedisError" })
        expect(typeof error.operation).toBe("string")
        expect(error.detail).not.toBe("")
        expect(error.cause).toBeInstanceOf(LockError.RedisError)
        expect(Runtime.isFiberFailure(error)).toBe(false)
      }
    })
  })
