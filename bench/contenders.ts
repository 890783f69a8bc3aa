/**
 * The libraries under comparison, each behind one small interface: a worker with its own connection(s)
 * that runs a loop of acquire → critical section → release, the way a user of that library writes it
 * (Promise libraries: an `await` loop; Effect libraries: ONE fiber looping, as a queue worker does).
 *
 * effect-lock is imported by its package name only (`effect-lock`, `effect-lock/Redis/…`): the bench runs
 * on the build in `dist/` under plain `node`, so it measures the public API as a user gets it.
 *
 * Primary rows use each library's DEFAULT waiting options (plus, for effect-lock's scoped entry points, the
 * `timeout` a user must give to wait at all); effect-lock's documented tuning is a second row.
 */
import { Lock as UpstashLock } from "@upstash/lock"
import { Redis as UpstashRedis } from "@upstash/redis"
import { Effect, Layer, ManagedRuntime, Redacted, Schedule, Supervisor } from "effect"
import { DistributedSemaphore, RedisBacking } from "effect-distributed-lock"
import { Lock, Semaphore } from "effect-lock"
import * as IoRedis from "effect-lock/Redis/IoRedis"
import * as Upstash from "effect-lock/Redis/Upstash"
import { Redis as IORedis } from "ioredis"
import { randomBytes } from "node:crypto"
import { Mutex, Semaphore as RedisSemaphore } from "redis-semaphore"
import Redlock from "./redlock.js"

/** Called by a worker's loop; times are taken by the caller (see measure.ts). */
export interface Hooks {
  readonly asked: (k: number) => void
  readonly acquired: (k: number) => void
  readonly released: (k: number) => void
  /** The library gave up waiting (its default retry ran out); the loop asks again. */
  readonly gaveUp: () => void
}

export interface Worker {
  /** Runs up to `count` acquire → `section` → release cycles; stops early once `stop()` is true. */
  readonly run: (
    count: number,
    hooks: Hooks,
    section: (() => Promise<void>) | undefined,
    stop: () => boolean
  ) => Promise<void>
  readonly close: () => Promise<void>
  /** Fibers forked so far inside this worker's loops (Effect libraries only; Promise ones fork none). */
  readonly forks?: () => number
}

/** `cluster`: a local Redis Cluster (3 masters, 3 replicas), started by the bench when such a row runs. */
export type Backend = "tcp" | "rest" | "cluster"

export interface Contender {
  /** Short, stable name used on the command line and in results.json. */
  readonly id: string
  readonly name: string
  readonly backend: Backend
  readonly settings: string
  readonly makeWorker: (servers: Servers, lockId: string) => Promise<Worker>
}

export interface Servers {
  readonly redisUrl: string
  readonly upstashUrl: string
  readonly upstashToken: string
  /** `host:port` of every node of the local cluster, when a cluster row runs. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quit = (client: IORedis) => client.quit().then(() => undefined, () => undefined)
const token = () => randomBytes(16).toString("hex")

/** The loop of a Promise-based library. */
const promiseWorker = (
  acquire: () => Promise<boolean>,
  release: () => Promise<unknown>,
  close: () => Promise<void>
): Worker => ({
  run: async (count, hooks, section, stop) => {
    for (let k = 0; k < count && !stop(); k++) {
      hooks.asked(k)
      while (!(await acquire())) hooks.gaveUp()
      hooks.acquired(k)
      if (section !== undefined) await section()
      await release()
      hooks.released(k)
    }
  },
  close
})

const gaveUp = (error: unknown) =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "LockNotAcquired"

/** Counts the fibers started under it (every descendant of the supervised region). */
class ForkCounter extends Supervisor.AbstractSupervisor<number> {
  count = 0
  readonly value = Effect.sync(() => this.count)
  override onStart() {
    this.count++
  }
}

/**
 * The loop of an Effect library: one fiber runs every cycle. `cycle(acquired, section)` acquires, runs
 * `acquired` then `section` under the lock and releases; a `LockNotAcquired` (default retries ran out)
 * counts as a give-up and the cycle is tried again.
 */
const effectWorker = <R>(
  runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
  cycle: (acquired: Effect.Effect<void>, section: Effect.Effect<void>) => Effect.Effect<unknown, unknown, R>,
  close: () => Promise<void> = () => Promise.resolve()
): Worker => {
  const forks = new ForkCounter()
  const loop = (
    count: number,
    hooks: Hooks,
    section: (() => Promise<void>) | undefined,
    stop: () => boolean
  ) =>
    Effect.gen(function*() {
      const body = section === undefined ? Effect.void : Effect.promise(section)
      for (let k = 0; k < count && !stop(); k++) {
        hooks.asked(k)
        yield* cycle(Effect.sync(() => hooks.acquired(k)), body).pipe(
          Effect.tapError((e) => Effect.sync(() => gaveUp(e) && hooks.gaveUp())),
          Effect.retry({ while: gaveUp })
        )
        hooks.released(k)
      }
    })
  return {
    run: (count, hooks, section, stop) =>
      runtime.runPromise(Effect.supervised(loop(count, hooks, section, stop), forks)),
    close: async () => {
      await runtime.dispose()
      await close()
    },
    forks: () => forks.count
  }
}

const COMPARE_AND_DELETE =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/** No library: SET NX PX, an owner-checked DEL in Lua (EVALSHA), and a retry every millisecond. */
const floor: Contender = {
  id: "floor",
  name: "raw ioredis (floor)",
  backend: "tcp",
  settings: "SET NX PX 10 s + EVALSHA owner-checked DEL; retry every 1 ms",
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    const sha = String(await client.script("LOAD", COMPARE_AND_DELETE))
    let owner = ""
    return promiseWorker(
      async () => {
        owner = token()
        while ((await client.set(key, owner, "PX", 10_000, "NX")) !== "OK") await sleep(1)
        return true
      },
      () => client.evalsha(sha, 1, key, owner),
      () => quit(client)
    )
  }
}

type LockOptions = Omit<Parameters<typeof Lock.acquire>[0], "id">

/** What a user passes to wait at all: effect-lock's defaults otherwise. */
export const DEFAULTS: LockOptions = { timeout: "120 seconds" }
/**
 * effect-lock's documented tuning for a busy lock (README, "Lock.acquire"): the retry `Schedule` bounds how
 * long a waiter sleeps between tries where nothing pushes a wake-up. Keep in step with the README.
 */
export const TUNED: LockOptions = { timeout: "120 seconds", retry: Schedule.jittered(Schedule.spaced("10 millis")) }

const tcpLayer = (servers: Servers) => IoRedis.layer({ url: Redacted.make(servers.redisUrl) })
const clusterLayer = (servers: Servers) => IoRedis.layerCluster({ nodes: servers.clusterNodes ?? [] })
const restLayer = (servers: Servers) =>
  Upstash.layer({ url: servers.upstashUrl, token: Redacted.make(servers.upstashToken) })

const scopedAcquire = (
  id: string,
  name: string,
  backend: Backend,
  layer: (servers: Servers) => Layer.Layer<any, any>,
  options: LockOptions,
  settings: string
): Contender => ({
  id,
  name,
  backend,
  settings,
  makeWorker: async (servers, lockId) =>
    effectWorker(
      ManagedRuntime.make(layer(servers)),
      (acquired, section) =>
        Effect.scoped(Effect.zipRight(Lock.acquire({ id: lockId, ...options }), Effect.zipRight(acquired, section)))
    )
})

const withLock: Contender = {
  id: "el-withlock",
  name: "effect-lock withLock",
  backend: "tcp",
  settings: "defaults + timeout 120 s: `effect.pipe(Lock.withLock({ id, timeout }))`",
  makeWorker: async (servers, lockId) =>
    effectWorker(
      ManagedRuntime.make(tcpLayer(servers)),
      (acquired, section) => Effect.zipRight(acquired, section).pipe(Lock.withLock({ id: lockId, ...DEFAULTS }))
    )
}

const parity: Contender = {
  id: "el-parity",
  name: "effect-lock Lock.make handle",
  backend: "tcp",
  settings: "defaults: `Lock.make({ id })`, acquire() retries 3 × 100 ms, then release",
  makeWorker: async (servers, lockId) => {
    const runtime = ManagedRuntime.make(tcpLayer(servers))
    const lock = await runtime.runPromise(Lock.make({ id: lockId }))
    const gaveUp: Effect.Effect<never, { readonly _tag: "LockNotAcquired" }> = Effect.fail({ _tag: "LockNotAcquired" })
    return effectWorker(
      runtime,
      (acquired, section) =>
        Effect.flatMap(
          lock.acquire(),
          (ok): Effect.Effect<unknown, unknown> =>
            ok ? Effect.zipRight(Effect.zipRight(acquired, section), lock.release) : gaveUp
        )
    )
  }
}

const upstashLock = (backend: Backend): Contender => ({
  id: "upstash-lock",
  name: "@upstash/lock",
  backend,
  settings: "defaults: retry 3 attempts × 100 ms, lease 10 s (a give-up is counted and the loop asks again)",
  makeWorker: async (servers, key) => {
    const redis = new UpstashRedis({ url: servers.upstashUrl, token: servers.upstashToken })
    let lock: UpstashLock | undefined
    return promiseWorker(
      () => {
        // @upstash/lock's types name its own copy of @upstash/redis's class; the client is the same.
        lock = new UpstashLock({ id: key, redis: redis as never })
        return lock.acquire()
      },
      () => lock!.release(),
      () => Promise.resolve()
    )
  }
})

const redlock: Contender = {
  id: "redlock",
  name: "redlock 4 (one node)",
  backend: "tcp",
  settings: "defaults: retryCount 10, retryDelay 200 ms, retryJitter 200 ms; ttl 10 s",
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    const instance = new Redlock([client])
    instance.on("clientError", () => {})
    let lock: { unlock: () => Promise<unknown> } | undefined
    return promiseWorker(
      () => instance.lock(key, 10_000).then((l) => ((lock = l), true), () => false),
      () => lock!.unlock().catch(() => undefined),
      () => quit(client)
    )
  }
}

const redisSemaphore: Contender = {
  id: "redis-semaphore",
  name: "redis-semaphore Mutex",
  backend: "tcp",
  settings: "defaults: retryInterval 10 ms, acquireTimeout 10 s, lockTimeout 10 s",
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    let mutex: Mutex | undefined
    return promiseWorker(
      () => {
        mutex = new Mutex(client, key)
        return mutex.acquire().then(() => true, () => false)
      },
      () => mutex!.release(),
      () => quit(client)
    )
  }
}

const effectDistributedLock: Contender = {
  id: "effect-distributed-lock",
  name: "effect-distributed-lock",
  backend: "tcp",
  settings: "defaults: limit 1, ttl 30 s, retry every 100 ms (push-based acquire off)",
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    const runtime = ManagedRuntime.make(RedisBacking.layer(client))
    const semaphore = await runtime.runPromise(DistributedSemaphore.make(key, {}))
    return effectWorker(
      runtime,
      (acquired, section) => Effect.scoped(Effect.zipRight(semaphore.take(1), Effect.zipRight(acquired, section))),
      () => quit(client)
    )
  }
}

/**
 * Effect's own floors: the raw floor's two commands (and its retry) as `Effect.tryPromise` steps, in one
 * `Effect.gen` per cycle (`effect-floor`), and as a resource, `Effect.scoped(Effect.acquireRelease(…))`
 * (`effect-resource-floor`): the least an Effect API of each shape can cost, measured beside the rest.
 */
const effectFloor = (scoped: boolean): Contender => ({
  id: scoped ? "effect-resource-floor" : "effect-floor",
  name: scoped ? "Effect resource floor (acquireRelease + Scope)" : "Effect floor (Effect.gen)",
  backend: "tcp",
  settings: scoped
    ? "the floor's commands as `Effect.scoped(Effect.acquireRelease(SET NX PX, EVALSHA DEL) *> section)`"
    : "the floor's commands as `Effect.tryPromise` steps in one `Effect.gen`",
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    const sha = String(await client.script("LOAD", COMPARE_AND_DELETE))
    const take = Effect.gen(function*() {
      const owner = token()
      while ((yield* Effect.tryPromise(() => client.set(key, owner, "PX", 10_000, "NX"))) !== "OK") {
        yield* Effect.sleep(1)
      }
      return owner
    })
    const give = (owner: string) => Effect.tryPromise(() => client.evalsha(sha, 1, key, owner))
    return effectWorker(
      ManagedRuntime.make(Layer.empty),
      scoped
        ? (acquired, section) =>
          Effect.scoped(
            Effect.zipRight(
              Effect.acquireRelease(take, (owner) => Effect.orDie(give(owner))),
              Effect.zipRight(acquired, section)
            )
          )
        : (acquired, section) =>
          Effect.gen(function*() {
            const owner = yield* take
            yield* acquired
            yield* section
            yield* give(owner)
          }),
      () => quit(client)
    )
  }
})

/** Every contender; the floor first, then effect-lock's rows, then the peers. */
export const contenders: ReadonlyArray<Contender> = [
  floor,
  effectFloor(false),
  effectFloor(true),
  scopedAcquire(
    "el-acquire",
    "effect-lock Lock.acquire",
    "tcp",
    tcpLayer,
    DEFAULTS,
    "defaults + timeout 120 s: `Effect.scoped(Lock.acquire({ id, timeout }) *> section)`"
  ),
  withLock,
  parity,
  scopedAcquire(
    "el-acquire-tuned",
    "effect-lock Lock.acquire, tuned",
    "tcp",
    tcpLayer,
    TUNED,
    "documented tuning: timeout 120 s, retry jittered every 10 ms"
  ),
  redisSemaphore,
  redlock,
  effectDistributedLock,
  scopedAcquire(
    "el-upstash",
    "effect-lock Lock.acquire (Upstash)",
    "rest",
    restLayer,
    DEFAULTS,
    "defaults + timeout 120 s, Upstash layer over the REST fixture"
  ),
  scopedAcquire(
    "el-upstash-tuned",
    "effect-lock Lock.acquire (Upstash), tuned",
    "rest",
    restLayer,
    TUNED,
    "documented tuning: timeout 120 s, retry jittered every 10 ms"
  ),
  upstashLock("rest"),
  scopedAcquire(
    "el-cluster",
    "effect-lock Lock.acquire (Cluster)",
    "cluster",
    clusterLayer,
    DEFAULTS,
    "defaults + timeout 120 s, `IoRedis.layerCluster` on a local 3-master, 3-replica cluster (sharded wake-ups)"
  ),
  scopedAcquire(
    "el-cluster-replicas",
    "effect-lock Lock.acquire (Cluster), replicas: 1",
    "cluster",
    clusterLayer,
    { ...DEFAULTS, replicas: 1 },
    "as the Cluster row, plus `replicas: 1`: WAIT for the slot's replica after each winning try"
  )
]

/** Permits of the semaphore rows: W workers share them. */
export const SEMAPHORE_PERMITS = 4

const elSemaphore: Contender = {
  id: "el-semaphore",
  name: "effect-lock Semaphore",
  backend: "tcp",
  settings: `permits ${SEMAPHORE_PERMITS}; defaults + timeout 120 s: \`effect.pipe(sem.withPermits(1, { timeout }))\``,
  makeWorker: async (servers, id) => {
    const runtime = ManagedRuntime.make(tcpLayer(servers))
    const sem = await runtime.runPromise(Semaphore.make({ id, permits: SEMAPHORE_PERMITS }))
    return effectWorker(
      runtime,
      (acquired, section) => Effect.zipRight(acquired, section).pipe(sem.withPermits(1, { timeout: "120 seconds" }))
    )
  }
}

const redisSemaphoreSemaphore: Contender = {
  id: "redis-semaphore-semaphore",
  name: "redis-semaphore Semaphore",
  backend: "tcp",
  settings: `limit ${SEMAPHORE_PERMITS}; defaults: retryInterval 10 ms, acquireTimeout 10 s, lockTimeout 10 s`,
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    let semaphore: RedisSemaphore | undefined
    return promiseWorker(
      () => {
        semaphore = new RedisSemaphore(client, key, SEMAPHORE_PERMITS)
        return semaphore.acquire().then(() => true, () => false)
      },
      () => semaphore!.release(),
      () => quit(client)
    )
  }
}

const effectDistributedSemaphore: Contender = {
  id: "effect-distributed-lock-semaphore",
  name: "effect-distributed-lock (limit 4)",
  backend: "tcp",
  settings: `limit ${SEMAPHORE_PERMITS}; defaults: ttl 30 s, retry every 100 ms (push-based acquire off)`,
  makeWorker: async (servers, key) => {
    const client = new IORedis(servers.redisUrl)
    const runtime = ManagedRuntime.make(RedisBacking.layer(client))
    const semaphore = await runtime.runPromise(DistributedSemaphore.make(key, { limit: SEMAPHORE_PERMITS }))
    return effectWorker(
      runtime,
      (acquired, section) => Effect.scoped(Effect.zipRight(semaphore.take(1), Effect.zipRight(acquired, section))),
      () => quit(client)
    )
  }
}

/** The semaphore rows: `permits = SEMAPHORE_PERMITS`, one permit per section. */
export const semaphoreContenders: ReadonlyArray<Contender> = [
  elSemaphore,
  redisSemaphoreSemaphore,
  effectDistributedSemaphore
]

export const byId = (id: string): Contender => {
  const found = contenders.find((c) => c.id === id) ?? semaphoreContenders.find((c) => c.id === id)
  if (found === undefined) throw new Error(`no contender ${id}`)
  return found
}
