/**
 * Failover on a real Redis Cluster (its own, since a master is killed): the master that owns a held
 * lock's slot is killed with SIGKILL, its replica is promoted (cluster-node-timeout 1 s), and the app
 * recovers without a restart. Without `WAIT`, what the replica had is what survives: the holder either
 * keeps a lease it can confirm or is told `LockLost`, never left believing in a lease nobody can confirm.
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../src/internal/keys.js"
import * as Lock from "../src/Lock.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisCluster from "./utils/RedisCluster.js"

const backend = Layer.unwrapEffect(
  Effect.map(RedisCluster.RedisCluster, (cluster) => IoRedis.layerCluster({ nodes: cluster.addresses }).pipe(Layer.orDie))
)

const rawCluster = Effect.flatMap(RedisCluster.RedisCluster, (cluster) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Cluster(cluster.addresses.map((a) => ({ host: "127.0.0.1", port: Number(a.split(":")[1]) }))).on("error", () => {})
    ),
    (c) => Effect.sync(() => c.disconnect())
  ))

const slotOwner = (client: Cluster, slot: number) =>
  Effect.promise(() => client.cluster("SLOTS")).pipe(
    Effect.map((ranges) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1])
  )

const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, check: (a: A) => boolean, within: Duration.DurationInput) =>
  Effect.filterOrFail(self, check, () => new Error("not yet")).pipe(
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutFail({ duration: within, onTimeout: () => new Error(`condition not met within ${Duration.format(within)}`) })
  )

layer(RedisCluster.layer, { timeout: 120_000, excludeTestServices: true })("Redis Cluster failover", (it) => {
  it.effect("the master of a held lock's slot is killed: the replica takes over, the holder keeps a confirmed lease or gets LockLost, and locks work again", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisCluster.RedisCluster
      const client = yield* rawCluster
      const id = yield* uniqueId("failover")
      const keys = lockKeys(DEFAULT_PREFIX, id)
      const slot = (yield* Effect.promise(() => client.cluster("KEYSLOT", keys.lock))) as number
      const master = (yield* slotOwner(client, slot))!
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Lock.withLock({ id, lease: 3000 })(Effect.as(Deferred.await(done), "finished")))
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
        Effect.sync(() => new IORedis(cluster.nodes.find((n) => n.port !== master)!.port, "127.0.0.1").on("error", () => {})),
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
      const fence = yield* Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "30 seconds" }), (lease) => lease.fence)).pipe(
        Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds")))
      )
      expect(fence).toBeGreaterThan(0)
    }).pipe(Effect.provide(backend), Effect.scoped), 120_000)
})
