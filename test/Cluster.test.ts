/**
 * Redis Cluster: a real 3-master/3-replica cluster started by the harness (test/utils/RedisCluster.ts),
 * shared by the file. The Lock, Semaphore, Debounce and Election conformance suites run on it through `IoRedis.layerCluster`,
 * and locks whose slots are on each of the three masters hand off across the cluster.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, Option, Scope } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"
import * as Debounce from "../src/Debounce.js"
import { DEFAULT_PREFIX, hashTag, lockKeys, semaphoreKeys } from "../src/internal/keys.js"
import { slotOf } from "../src/internal/slot.js"
import * as Lock from "../src/Lock.js"
import { Redis } from "../src/Redis.js"
import * as IoRedisSubscriber from "../src/Redis/internal/ioredisSubscriber.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Semaphore from "../src/Semaphore.js"
import { onCluster } from "./conformance/backends.js"
import { debounceConformance } from "./conformance/debounce.js"
import { electionConformance } from "./conformance/election.js"
import { lockConformance } from "./conformance/lock.js"
import { manyConformance } from "./conformance/many.js"
import { readWriteLockConformance } from "./conformance/readWriteLock.js"
import { semaphoreConformance } from "./conformance/semaphore.js"
import * as Checker from "./safety/checker.js"
import { commandCalls, eventually, scriptCalls } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisCluster from "./utils/RedisCluster.js"

const backend = RedisCluster.ioredis

/** A plain ioredis Cluster client, outside the library. */
const rawCluster = Effect.flatMap(RedisCluster.RedisCluster, (cluster) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Cluster(cluster.addresses.map((a) => ({ host: a.split(":")[0]!, port: Number(a.split(":")[1]) })))
    ),
    (c) => Effect.promise(() => c.quit().catch(() => ""))
  ))

/** Which master (by port) owns each slot range, as CLUSTER SLOTS tells. */
const masterOfSlot = (client: Cluster) =>
  Effect.promise(() => client.cluster("SLOTS")).pipe(
    Effect.map((ranges) => (slot: number) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1])
  )

/** A plain connection to one node. */
const rawNode = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => new IORedis(port, "127.0.0.1")),
    (c) => Effect.promise(() => c.quit().catch(() => ""))
  )

/** Moves one slot from the master on `from` to the master on `to`, keys and all (as `redis-cli --cluster reshard` does). */
const migrateSlot = (slot: number, from: number, to: number, masters: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const source = yield* rawNode(from)
    const target = yield* rawNode(to)
    const sourceId = (yield* Effect.promise(() => source.cluster("MYID"))) as string
    const targetId = (yield* Effect.promise(() => target.cluster("MYID"))) as string
    yield* Effect.promise(() => target.cluster("SETSLOT", slot, "IMPORTING", sourceId))
    yield* Effect.promise(() => source.cluster("SETSLOT", slot, "MIGRATING", targetId))
    while (true) {
      const keys = (yield* Effect.promise(() => source.cluster("GETKEYSINSLOT", slot, 100))) as Array<string>
      if (keys.length === 0) break
      yield* Effect.promise(() => source.migrate("127.0.0.1", to, "", 0, 5000, "KEYS", ...keys))
    }
    for (const port of masters) {
      const node = yield* rawNode(port)
      yield* Effect.promise(() => node.cluster("SETSLOT", slot, "NODE", targetId))
    }
  }).pipe(Effect.scoped)

layer(RedisCluster.layer, { timeout: 120_000, excludeTestServices: true })("Redis Cluster", (it) => {
  it.effect("the harness runs three masters with one replica each, and the cluster is ok", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisCluster.RedisCluster
      expect(cluster.nodes.length).toBe(6)
      const client = yield* rawCluster
      const nodes = (yield* Effect.promise(() => client.cluster("NODES") as Promise<string>)).trim().split("\n")
      expect(nodes.filter((line) => line.includes("master")).length).toBe(3)
      expect(nodes.filter((line) => line.includes("slave")).length).toBe(3)
      expect(yield* Effect.promise(() => client.cluster("INFO") as Promise<string>)).toContain("cluster_state:ok")
    }).pipe(Effect.scoped))

  it.effect("locks on each of the three masters are acquired, handed off to a waiter and released", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const masterOf = yield* masterOfSlot(client)
      // ids until every master owns at least one, checked with CLUSTER KEYSLOT
      const byMaster = new Map<number, string>()
      while (byMaster.size < 3) {
        const id = yield* uniqueId("slot")
        const slot = yield* Effect.promise(() =>
          client.cluster("KEYSLOT", lockKeys(DEFAULT_PREFIX, id).lock) as Promise<number>
        )
        const master = masterOf(slot)!
        if (!byMaster.has(master)) byMaster.set(master, id)
      }
      for (const id of byMaster.values()) {
        const keys = lockKeys(DEFAULT_PREFIX, id)
        const holder = yield* Lock.make({ id, lease: 10_000 })
        expect(yield* holder.acquire()).toBe(true)
        const first = Option.getOrThrow(yield* holder.fence)
        const waiter = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), (l) => l.fence))
        )
        yield* eventually(Effect.promise(() => client.zcard(keys.queue)), (n) => n === 1, "10 seconds")
        expect(yield* holder.release).toBe(true)
        expect(yield* Fiber.join(waiter).pipe(Effect.timeout("5 seconds"))).toBe(first + 1)
        expect(yield* Effect.promise(() => client.exists(keys.lock))).toBe(0)
      }
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect("keep-alive of leases on many slots goes one script per slot: every lease is kept across ticks", () =>
    Effect.scoped(Effect.gen(function*() {
      const ids = yield* Effect.forEach(Array.from({ length: 12 }, (_, i) => i), (i) => uniqueId(`keep-${i}`))
      const leases = yield* Effect.forEach(ids, (id) => Lock.acquire({ id, lease: 900 }))
      yield* Effect.sleep("2 seconds") // several ticks of 300 ms, more than two leases long
      expect(yield* Effect.forEach(leases, (lease) => lease.isLost)).toEqual(ids.map(() => false))
    })).pipe(Effect.provide(backend)))

  it.effect("layerClient runs over a Cluster the user made and never closes it", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const id = yield* uniqueId("user-cluster")
      const fence = yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence)).pipe(
        Effect.provide(IoRedis.layerClient(client))
      )
      expect(fence).toBe(Number(yield* Effect.promise(() => client.get(lockKeys(DEFAULT_PREFIX, id).fence))))
      expect(client.status).toBe("ready")
      expect(yield* Effect.promise(() => client.exists(lockKeys(DEFAULT_PREFIX, id).lock))).toBe(0)
    }).pipe(Effect.scoped))

  it.effect("layerClusterConfig reads REDIS_CLUSTER_NODES; bad nodes are InvalidOptions", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisCluster.RedisCluster
      const provider = ConfigProvider.fromMap(
        new Map([["REDIS_CLUSTER_NODES", cluster.addresses.slice(0, 2).join(",")]])
      )
      const acquired = yield* Effect.flatMap(Lock.make({ id: yield* uniqueId("config") }), (l) => l.acquire()).pipe(
        Effect.provide(IoRedis.layerClusterConfig()),
        Effect.withConfigProvider(provider)
      )
      expect(acquired).toBe(true)
      for (const nodes of [[], ["nohost"], ["h:0"], ["h:99999"], [{ host: "", port: 1 }]]) {
        const error = yield* Effect.flip(Effect.provide(Redis, IoRedis.layerCluster({ nodes: nodes as Array<string> })))
        expect(error._tag).toBe("InvalidOptions")
      }
    }).pipe(Effect.scoped))

  it.effect("with sharded pub/sub a wake-up travels by SPUBLISH to the shard's own subscriber, on the master of its slot", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisCluster.RedisCluster
      const client = yield* rawCluster
      const masterOf = yield* masterOfSlot(client)
      expect(yield* IoRedisSubscriber.supportsSharded(client)).toBe(cluster.version >= "7")
      const subscriber = yield* IoRedisSubscriber.make(client, {
        close: (c) => Effect.promise(() => c.quit().catch(() => "")),
        onError: () => {}
      }, { sharded: true })
      const { channel } = lockKeys(DEFAULT_PREFIX, yield* uniqueId("sharded"))
      const messages: Array<string> = []
      yield* subscriber.listen(channel, (m) => messages.push(m))
      yield* subscriber.subscribe(channel)
      expect(subscriber.isActive(channel)).toBe(true)
      // the subscription is on the master that owns the channel's slot, and only there
      const owner = masterOf(yield* Effect.promise(() => client.cluster("KEYSLOT", channel) as Promise<number>))
      const counts = yield* Effect.forEach(
        client.nodes("master"),
        (node) =>
          Effect.promise(() => node.call("PUBSUB", "SHARDNUMSUB", channel) as Promise<[string, number]>).pipe(
            Effect.map((reply) => [node.options.port, Number(reply[1])] as const)
          )
      )
      expect(counts.filter(([, n]) => n === 1).map(([port]) => port)).toEqual([owner])
      expect(counts.filter(([, n]) => n === 0).length).toBe(2)
      // a classic PUBLISH does not reach it; SPUBLISH does
      yield* Effect.promise(() => client.publish(channel, "classic"))
      yield* Effect.promise(() => client.spublish(channel, "sharded"))
      yield* eventually(Effect.sync(() => messages.length), (n) => n >= 1, "10 seconds")
      expect(messages).toEqual(["sharded"])
    }).pipe(Effect.scoped))

  it.effect("a script can SPUBLISH its lock's channel from Lua, passed in ARGV, since it shares the keys' hash tag", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const subscriber = yield* IoRedisSubscriber.make(client, {
        close: (c) => Effect.promise(() => c.quit().catch(() => "")),
        onError: () => {}
      }, { sharded: true })
      const keys = lockKeys(DEFAULT_PREFIX, yield* uniqueId("lua-spublish"))
      const messages: Array<string> = []
      yield* subscriber.listen(keys.channel, (m) => messages.push(m))
      yield* subscriber.subscribe(keys.channel)
      const receivers = yield* Effect.promise(() =>
        client.eval("return redis.call('SPUBLISH', ARGV[1], ARGV[2])", 1, keys.lock, keys.channel, "token-1")
      )
      expect(receivers).toBe(1)
      yield* eventually(Effect.sync(() => messages.length), (n) => n >= 1, "10 seconds")
      expect(messages).toEqual(["token-1"])
    }).pipe(Effect.scoped))

  it.effect("a hand-off on the cluster wakes its waiter by SPUBLISH on the slot's master, never PUBLISH, well under the heartbeat", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisCluster.RedisCluster
      const redis = yield* Redis
      expect(redis.sharded).toBe(cluster.version >= "7")
      const client = yield* rawCluster
      const masterOf = yield* masterOfSlot(client)
      const id = yield* uniqueId("spublish")
      const keys = lockKeys(DEFAULT_PREFIX, id)
      const master = yield* rawNode(
        masterOf(yield* Effect.promise(() => client.cluster("KEYSLOT", keys.lock) as Promise<number>))!
      )
      const calls = commandCalls(master)
      const [spublishBefore, publishBefore] = [yield* calls("spublish"), yield* calls("publish")]
      const holder = yield* Lock.make({ id, lease: 10_000 })
      const rounds = 5
      const delays: Array<number> = []
      for (let round = 0; round < rounds; round++) {
        expect(yield* holder.acquire()).toBe(true)
        const waiter = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), () => Date.now()))
        )
        // in line, and the shard's subscriber has the channel
        yield* eventually(
          Effect.promise(() =>
            Promise.all([
              client.zcard(keys.queue),
              master.call("PUBSUB", "SHARDNUMSUB", keys.channel) as Promise<[string, number]>
            ])
          ),
          ([waiting, [, subscribers]]) => waiting === 1 && Number(subscribers) === 1,
          "10 seconds"
        )
        const releasedAt = Date.now()
        expect(yield* holder.release).toBe(true)
        const acquiredAt = yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))
        delays.push(acquiredAt - releasedAt)
      }
      expect(yield* calls("spublish")).toBe(spublishBefore + rounds)
      expect(yield* calls("publish")).toBe(publishBefore)
      // a wake-up, not the waiter's next look (every 400 ms)
      expect(Math.max(...delays)).toBeLessThan(150)
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect("a semaphore's hand-off on the cluster wakes its waiter by SPUBLISH on the slot's master too", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const masterOf = yield* masterOfSlot(client)
      const id = yield* uniqueId("semaphore-spublish")
      const keys = semaphoreKeys(DEFAULT_PREFIX, id)
      const master = yield* rawNode(
        masterOf(yield* Effect.promise(() => client.cluster("KEYSLOT", keys.holders) as Promise<number>))!
      )
      const calls = commandCalls(master)
      const [spublishBefore, publishBefore] = [yield* calls("spublish"), yield* calls("publish")]
      const semaphore = yield* Semaphore.make({ id, permits: 1 })
      const rounds = 3
      const delays: Array<number> = []
      for (let round = 0; round < rounds; round++) {
        const holding = yield* Scope.make()
        yield* Scope.extend(semaphore.take(1), holding)
        const waiter = yield* Effect.fork(
          Effect.scoped(Effect.map(semaphore.take(1, { timeout: "10 seconds" }), () => Date.now()))
        )
        yield* eventually(
          Effect.promise(() =>
            Promise.all([
              client.zcard(keys.queue),
              master.call("PUBSUB", "SHARDNUMSUB", keys.channel) as Promise<[string, number]>
            ])
          ),
          ([waiting, [, subscribers]]) => waiting === 1 && Number(subscribers) === 1,
          "10 seconds"
        )
        const releasedAt = Date.now()
        yield* Scope.close(holding, Exit.void)
        delays.push((yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))) - releasedAt)
      }
      expect(yield* calls("spublish")).toBe(spublishBefore + rounds)
      expect(yield* calls("publish")).toBe(publishBefore)
      expect(Math.max(...delays)).toBeLessThan(150)
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect("waitForReplicas runs WAIT on the master of the key's slot: the one replica acknowledges, a second never comes", () =>
    Effect.gen(function*() {
      const redis = yield* Redis
      const id = yield* uniqueId("replicas")
      const lock = yield* Lock.make({ id })
      expect(yield* lock.acquire()).toBe(true)
      const { lock: key } = lockKeys(DEFAULT_PREFIX, id)
      expect(yield* redis.waitForReplicas!(key, 1, 5000)).toBe(1)
      const started = Date.now()
      expect(yield* redis.waitForReplicas!(key, 2, 200)).toBe(1)
      expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect("replicas: 1 is confirmed by the slot's replica before the lock counts as held; replicas: 2 is given back with a RedisError", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const id = yield* uniqueId("replicas")
      const keys = lockKeys(DEFAULT_PREFIX, id)
      const fence = yield* Lock.withLease(
        { id, replicas: 1, replicaTimeout: "2 seconds" },
        (lease) => Effect.succeed(lease.fence)
      )
      expect(fence).toBeGreaterThan(0)
      const error = yield* Effect.flip(Lock.withLock({ id, replicas: 2, replicaTimeout: "50 millis" })(Effect.void))
      expect(error._tag === "RedisError" && error.message).toBe(
        `Redis wait failed: lock "${id}" was confirmed by 1 of 2 replica(s) within 50 ms; it was given back`
      )
      expect(yield* Effect.promise(() => client.exists(keys.lock))).toBe(0)
      expect(yield* Effect.promise(() => client.get(keys.fence))).toBe(String(fence + 1))
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect("resharding: the slot of a held and waited-for lock moves to another master; no overlap, the waiter is still woken", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const masterOf = yield* masterOfSlot(client)
      const masters = client.nodes("master").map((node) => node.options.port!)
      const id = yield* uniqueId("reshard")
      const keys = lockKeys(DEFAULT_PREFIX, id)
      const slot = (yield* Effect.promise(() => client.cluster("KEYSLOT", keys.lock))) as number
      const from = masterOf(slot)!
      const to = masters.find((port) => port !== from)!
      const holder = yield* Lock.make({ id, lease: 20_000 })
      expect(yield* holder.acquire()).toBe(true)
      const first = Option.getOrThrow(yield* holder.fence)
      const waiter = yield* Effect.fork(
        Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "20 seconds" }), (l) => l.fence))
      )
      yield* eventually(Effect.promise(() => client.zcard(keys.queue)), (n) => n === 1, "10 seconds")
      yield* migrateSlot(slot, from, to, masters)
      const moved = yield* masterOfSlot(client)
      expect(moved(slot)).toBe(to)
      expect(yield* holder.status).toBe("ACQUIRED")
      const other = yield* Lock.make({ id, retry: { attempts: 1 } })
      expect(yield* other.acquire()).toBe(false)
      expect(yield* holder.release).toBe(true)
      expect(yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))).toBe(first + 1)
      // later hand-offs still wake their waiter at once: the sharded subscription followed the slot
      const scripts = scriptCalls(yield* rawNode(to))
      const delays: Array<number> = []
      for (let round = 0; round < 3; round++) {
        expect(yield* holder.acquire()).toBe(true)
        const before = yield* scripts
        const next = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), () => Date.now()))
        )
        // in line, and past its look after subscribing (its first try and that look are two scripts on
        // the slot's master): a wake-up is what ends its wait
        yield* eventually(
          Effect.all([Effect.promise(() => client.zcard(keys.queue)), scripts]),
          ([waiting, looks]) => waiting === 1 && looks >= before + 2,
          "10 seconds"
        )
        const releasedAt = Date.now()
        expect(yield* holder.release).toBe(true)
        delays.push((yield* Fiber.join(next).pipe(Effect.timeout("10 seconds"))) - releasedAt)
      }
      expect(Math.max(...delays)).toBeLessThan(150)
    }).pipe(Effect.provide(backend), Effect.scoped))

  // Issue 23 §7. Was: every primitive failed with CROSSSLOT for these ids (the tag `{}` is empty).
  it.effect("ids that start with } (}, }x, }}, }%7D) keep every key of the id on one slot: Lock, Semaphore, Debounce", () =>
    Effect.gen(function*() {
      const client = yield* rawCluster
      const slotOf = (key: string) => Effect.promise(() => client.cluster("KEYSLOT", key) as Promise<number>)
      for (const id of ["}", "}x", "}}", "}%7D"]) {
        const lk = lockKeys(DEFAULT_PREFIX, id)
        const sk = semaphoreKeys(DEFAULT_PREFIX, id)
        for (const keys of [Object.values(lk), Object.values(sk)]) {
          const slots = yield* Effect.forEach(keys, slotOf)
          expect(new Set(slots).size).toBe(1)
        }
        // a lock handed off to a waiter (every lock key and the channel)
        const holder = yield* Lock.make({ id, lease: 10_000 })
        expect(yield* holder.acquire()).toBe(true)
        const first = Option.getOrThrow(yield* holder.fence)
        const waiter = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), (l) => l.fence))
        )
        yield* eventually(Effect.promise(() => client.zcard(lk.queue)), (n) => n === 1, "10 seconds")
        expect(yield* holder.release).toBe(true)
        expect(yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))).toBe(first + 1)
        // a semaphore with a waiter
        const semaphore = yield* Semaphore.make({ id, permits: 1 })
        const holding = yield* Scope.make()
        yield* Scope.extend(semaphore.take(1), holding)
        const taker = yield* Effect.fork(
          Effect.scoped(Effect.map(semaphore.take(1, { timeout: "10 seconds" }), () => 1))
        )
        yield* eventually(Effect.promise(() => client.zcard(sk.queue)), (n) => n === 1, "10 seconds")
        yield* Scope.close(holding, Exit.void)
        expect(yield* Fiber.join(taker).pipe(Effect.timeout("10 seconds"))).toBe(1)
        // a debounce burst of two calls, run once with the last arguments
        // (the second call goes once the first is in Redis: its window is a second long, wide on a busy machine)
        const debounce = yield* Debounce.make({ id, wait: 1000, callback: (n: number) => n })
        const earlier = yield* Effect.fork(debounce.call(1))
        const seq = `${DEFAULT_PREFIX}debounce:${hashTag(id)}::seq`
        yield* eventually(Effect.promise(() => client.exists(seq)), (n) => n === 1, "10 seconds")
        const later = yield* debounce.call(2)
        expect([yield* Fiber.join(earlier), later]).toEqual([{ _tag: "Superseded" }, {
          _tag: "Ran",
          edge: "trailing",
          result: 2
        }])
      }
    }).pipe(Effect.provide(backend), Effect.scoped))

  it.effect(
    "mutual exclusion across OS processes on the cluster: no lost update, no overlap, fences increase",
    () =>
      Effect.gen(function*() {
        const cluster = yield* RedisCluster.RedisCluster
        const report = yield* Checker.run({
          redisUrl: `redis+cluster://${cluster.addresses.join(",")}`,
          processes: 3,
          sections: 10
        })
        expect(report.exitCodes).toEqual([0, 0, 0])
        expect(report.sections.length).toBe(30)
        expect(report.counter).toBe(30)
        expect(report.overlaps).toEqual([])
        expect(report.fenceInversions).toEqual([])
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )

  it.effect(
    "two processes calling withLocks on [a, b] and [b, a] (two slots, taken one by one in slot order) 1,000 times never deadlock",
    () =>
      Effect.gen(function*() {
        const cluster = yield* RedisCluster.RedisCluster
        const a = yield* uniqueId("pair-a")
        const b = yield* uniqueId("pair-b")
        expect(slotOf(lockKeys(DEFAULT_PREFIX, a).lock)).not.toBe(slotOf(lockKeys(DEFAULT_PREFIX, b).lock))
        const results = yield* Checker.runPairs({
          redisUrl: `redis+cluster://${cluster.addresses.join(",")}`,
          ids: [a, b],
          count: 1000
        })
        expect(results).toEqual([{ done: 1000, code: 0 }, { done: 1000, code: 0 }])
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )

  describe("conformance", () => {
    const backend = onCluster(it)
    lockConformance(backend)
    semaphoreConformance(backend)
    debounceConformance(backend)
    readWriteLockConformance(backend)
    manyConformance(backend)
    electionConformance(backend)
  })
})
