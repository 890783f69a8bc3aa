/**
 * Failover on a real Redis Cluster (its own, since a master is killed): the master that owns a held
 * lock's slot is killed with SIGKILL, its replica is promoted (cluster-node-timeout 1 s), and the app
 * recovers without a restart. Without `WAIT`, what the replica had is what survives: the holder either
 * keeps a lease it can confirm or is told `LockLost`, never left believing in a lease nobody can confirm.
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import { eventually, scriptCalls } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisCluster from "./utils/RedisCluster.js"

const backend = RedisCluster.ioredis

const rawCluster = Effect.flatMap(RedisCluster.RedisCluster, (cluster) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Cluster(cluster.addresses.map((a) => ({ host: "127.0.0.1", port: Number(a.split(":")[1]) }))).on(
        "error",
        () => {}
      )
    ),
    (c) => Effect.sync(() => c.disconnect())
  ))

const slotOwner = (client: Cluster, slot: number) =>
  Effect.promise(() => client.cluster("SLOTS")).pipe(
    Effect.map((ranges) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1])
  )

layer(RedisCluster.layer, { timeout: 120_000, excludeTestServices: true })("Redis Cluster failover", (it) => {
  it.effect(
    "the master of a held lock's slot is killed: the replica takes over, the holder keeps a confirmed lease or gets LockLost, and locks work again",
    () =>
      Effect.gen(function*() {
        const cluster = yield* RedisCluster.RedisCluster
        const client = yield* rawCluster
        const id = yield* uniqueId("failover")
        const keys = lockKeys(DEFAULT_PREFIX, id)
        const slot = (yield* Effect.promise(() => client.cluster("KEYSLOT", keys.lock))) as number
        const master = (yield* slotOwner(client, slot))!
        const done = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          Lock.withLock({ id, lease: 3000 })(Effect.as(Deferred.await(done), "finished"))
        )
        yield* eventually(Effect.promise(() => client.exists(keys.lock)), (n) => n === 1, "10 seconds")
        // the replica has the key (WAIT on the master), then the master crashes
        const onMaster = yield* Effect.acquireRelease(
          Effect.sync(() => new IORedis(master, "127.0.0.1", { retryStrategy: () => null }).on("error", () => {})),
          (c) => Effect.sync(() => c.disconnect())
        )
        expect(yield* Effect.promise(() => onMaster.call("WAIT", 1, 5000))).toBe(1)
        const node = cluster.nodes.find((n) => n.port === master)!
        yield* node.kill("SIGKILL")
        // a replica is promoted for the slot
        const survivor = yield* Effect.acquireRelease(
          Effect.sync(() =>
            new IORedis(cluster.nodes.find((n) => n.port !== master)!.port, "127.0.0.1").on("error", () => {})
          ),
          (c) => Effect.sync(() => c.disconnect())
        )
        yield* eventually(
          Effect.promise(() =>
            survivor.cluster("SLOTS").then(
              (ranges) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1],
              () => undefined
            )
          ),
          (port) => port !== undefined && port !== master,
          "30 seconds"
        )
        yield* Deferred.succeed(done, undefined)
        const exit = yield* Fiber.await(holder).pipe(Effect.timeout("30 seconds"))
        if (Exit.isFailure(exit)) {
          const error = yield* Effect.flip(exit)
          expect(error._tag).toBe("LockLost")
        } else {
          expect(exit.value).toBe("finished")
        }
        // the app recovers: the lock can be taken again through the same layer
        const fence = yield* Effect.scoped(
          Effect.map(Lock.acquire({ id, timeout: "30 seconds" }), (lease) => lease.fence)
        ).pipe(
          Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds")))
        )
        expect(fence).toBeGreaterThan(0)
      }).pipe(Effect.provide(backend), Effect.scoped),
    120_000
  )

  it.effect(
    "with replicas: 1 the lock and its fence survive a kill -9 of the master: the promoted replica has them, and a new owner's fence is higher",
    () =>
      Effect.gen(function*() {
        const cluster = yield* RedisCluster.RedisCluster
        const client = yield* rawCluster
        // a lock whose slot's master still has a live replica (the test above left one master without)
        let id = ""
        let master = 0
        let replica = 0
        while (master === 0) {
          const candidate = yield* uniqueId("failover-replicas")
          const slot = (yield* Effect.promise(() =>
            client.cluster("KEYSLOT", lockKeys(DEFAULT_PREFIX, candidate).lock)
          )) as number
          const port = (yield* slotOwner(client, slot))!
          const replication = yield* Effect.acquireUseRelease(
            Effect.sync(() => new IORedis(port, "127.0.0.1").on("error", () => {})),
            (c) => Effect.promise(() => c.info("replication")),
            (c) => Effect.sync(() => c.disconnect())
          )
          const online = /slave0:ip=[^,]*,port=(\d+),state=online/.exec(replication)
          if (online !== null) [id, master, replica] = [candidate, port, Number(online[1])]
        }
        const keys = lockKeys(DEFAULT_PREFIX, id)
        const slot = (yield* Effect.promise(() => client.cluster("KEYSLOT", keys.lock))) as number
        const done = yield* Deferred.make<void>()
        const won = yield* Deferred.make<number>()
        const holder = yield* Effect.fork(
          Lock.withLease(
            { id, lease: 20_000, replicas: 1, replicaTimeout: "2 seconds" },
            (lease) => Effect.zipRight(Deferred.succeed(won, lease.fence), Effect.as(Deferred.await(done), lease.fence))
          )
        )
        // told it holds the lock only once the replica has it: the master dies right after, no WAIT of ours
        const fence = yield* Deferred.await(won)
        yield* cluster.nodes.find((n) => n.port === master)!.kill("SIGKILL")
        // asked on its replica (a node the test above killed may be the first of the list)
        const survivor = yield* Effect.acquireRelease(
          Effect.sync(() => new IORedis(replica, "127.0.0.1").on("error", () => {})),
          (c) => Effect.sync(() => c.disconnect())
        )
        const promoted = yield* eventually(
          Effect.promise(() =>
            survivor.cluster("SLOTS").then(
              (ranges) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1],
              () => undefined
            )
          ),
          (port) => port !== undefined && port !== master,
          "30 seconds"
        )
        // the promoted replica has the lock (still the holder's) and the fence it was granted
        const onPromoted = yield* Effect.acquireRelease(
          Effect.sync(() => new IORedis(promoted!, "127.0.0.1").on("error", () => {})),
          (c) => Effect.sync(() => c.disconnect())
        )
        expect(yield* Effect.promise(() => onPromoted.exists(keys.lock))).toBe(1)
        expect(Number(yield* Effect.promise(() => onPromoted.get(keys.fence)))).toBe(fence)
        // a new owner, waiting in line while the old one finishes, gets a higher fence
        const next = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "30 seconds" }), (lease) => lease.fence)).pipe(
            Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds")))
          )
        )
        yield* Deferred.succeed(done, undefined)
        const exit = yield* Fiber.await(holder).pipe(Effect.timeout("30 seconds"))
        if (Exit.isFailure(exit)) expect((yield* Effect.flip(exit))._tag).toBe("LockLost")
        else expect(exit.value).toBe(fence)
        expect(yield* Fiber.join(next)).toBeGreaterThan(fence)
        // and waiters are woken on the promoted master: hand-offs are prompt again
        const delays: Array<number> = []
        const holderAgain = yield* Lock.make({ id })
        const scripts = scriptCalls(onPromoted)
        for (let round = 0; round < 3; round++) {
          expect(yield* holderAgain.acquire()).toBe(true)
          const before = yield* scripts
          const waiter = yield* Effect.fork(
            Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "10 seconds" }), () => Date.now()))
          )
          // in line, and past its look after subscribing (its first try and that look are two scripts on
          // the promoted master), so a wake-up is what ends its wait
          yield* eventually(
            Effect.all([Effect.promise(() => onPromoted.zcard(keys.queue)), scripts]),
            ([waiting, looks]) => waiting === 1 && looks >= before + 2,
            "10 seconds"
          )
          const releasedAt = Date.now()
          expect(yield* holderAgain.release).toBe(true)
          delays.push((yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))) - releasedAt)
        }
        expect(Math.max(...delays.slice(1))).toBeLessThan(150)
      }).pipe(Effect.provide(backend), Effect.scoped),
    120_000
  )
})
