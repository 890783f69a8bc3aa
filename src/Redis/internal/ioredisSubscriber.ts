/**
 * The ioredis backend's subscriber connection: duplicated from the client the first time a channel is
 * subscribed, closed with the scope, and wired to the shared subscriber (`./subscriber.ts`).
 *
 * - Over a `Redis` client: one connection with ioredis's own re-subscription off (the shared
 *   subscriber re-subscribes what is in use, and knows when the server confirmed it).
 * - Over a `Cluster`, classic pub/sub (`SUBSCRIBE`; a `PUBLISH` reaches every node of a cluster), or,
 *   with `sharded`, sharded pub/sub (`SSUBSCRIBE` on the master that owns the channel's slot, through
 *   ioredis's `shardedSubscribers`; moved along when the client's slot map changes): a message then
 *   goes to that shard only, and must be sent with `SPUBLISH`. {@link supportsSharded} tells whether the servers
 *   have it (Redis ≥ 7).
 */
import { Effect, type Scope } from "effect"
import type { Cluster, Redis as IORedis } from "ioredis"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import * as Subscriber from "./subscriber.js"

export interface Options extends Subscriber.Options {
  /** SSUBSCRIBE instead of SUBSCRIBE (a `Cluster` only). */
  readonly sharded?: boolean | undefined
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const call = (operation: string, f: () => Promise<unknown>) =>
  Effect.tryPromise({ try: f, catch: (error) => new RedisError({ operation, detail: describe(error) }) })

export const isCluster = (client: IORedis | Cluster): client is Cluster =>
  "isCluster" in client && client.isCluster === true

/** Whether the server knows `SPUBLISH` (Redis ≥ 7): `COMMAND INFO` answers nil for unknown commands. */
export const supportsSharded = (client: IORedis | Cluster): Effect.Effect<boolean> =>
  call("command info", () => client.call("COMMAND", "INFO", "SPUBLISH")).pipe(
    Effect.map((reply) => Array.isArray(reply) && reply[0] !== null && reply[0] !== undefined),
    Effect.orElseSucceed(() => false)
  )

export const make = (
  client: IORedis | Cluster,
  hooks: {
    readonly close: (connection: IORedis | Cluster) => Effect.Effect<void>
    readonly onError: (error: unknown) => void
  },
  options: Options = {}
): Effect.Effect<Redis.Subscriber, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sharded = options.sharded === true && isCluster(client)
    let connection: IORedis | Cluster | undefined
    let made: Subscriber.Made | undefined
    const connect = () => {
      if (connection === undefined) {
        connection = isCluster(client)
          ? client.duplicate([], sharded ? { shardedSubscribers: true } : {})
          : client.duplicate({ autoResubscribe: false })
        connection.on(sharded ? "smessage" : "message", (channel: string, message: string) =>
          made?.dispatch(channel, message))
        connection.on("close", () =>
          made?.disconnected())
        connection.on("ready", () => made?.connected())
        connection.on("error", hooks.onError)
      }
      return connection
    }
    yield* Effect.addFinalizer(() => (connection === undefined ? Effect.void : hooks.close(connection)))
    if (sharded) {
      // A slot that moves takes its shard channels' subscriptions with it (the old master drops them), and
      // nothing tells the subscriber's own connection. The client learns of the move (a MOVED reply makes
      // it refresh its slot map): the subscriber then refreshes its map too, and ioredis subscribes the
      // channels again on the slot's new master.
      const cluster = client as Cluster
      const follow = () => {
        if (connection !== undefined && connection.status === "ready") (connection as Cluster).refreshSlotsCache()
      }
      cluster.on("refresh", follow)
      yield* Effect.addFinalizer(() => Effect.sync(() => cluster.off("refresh", follow)))
    }
    made = yield* Subscriber.make({
      subscribe: (channel) =>
        Effect.asVoid(call("subscribe", () => sharded ? connect().ssubscribe(channel) : connect().subscribe(channel))),
      unsubscribe: (channel) =>
        Effect.asVoid(call("unsubscribe", () =>
          sharded ? connect().sunsubscribe(channel) : connect().unsubscribe(channel)))
    }, options)
    return made.subscriber
  })
