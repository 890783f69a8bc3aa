/**
 * The ioredis backend's shared subscriber against real redis-server processes: what only a real
 * server and a real socket show — a SUBSCRIBE whose reply is still on the wire when its waiter is
 * interrupted, and a subscriber connection that drops and comes back. Waits are for conditions.
 */
import { NodeContext } from "@effect/platform-node"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import type { Redis as IORedis } from "ioredis"
import { DEFAULT_PREFIX, lockKeys } from "../../src/internal/keys.js"
import * as Lock from "../../src/Lock.js"
import { Redis } from "../../src/Redis.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import { handOffDelays, median } from "../utils/handOff.js"
import { eventually, raw } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as Proxy from "../utils/Proxy.js"
import * as RedisServer from "../utils/RedisServer.js"

const live = (name: string, body: Effect.Effect<void, unknown, Scope.Scope | CommandExecutor>, timeout = 60_000) =>
  it.scopedLive(name, () => body.pipe(Effect.provide(NodeContext.layer)), timeout)

const subscribers = (client: IORedis, channel: string) =>
  Effect.promise(() => client.pubsub("NUMSUB", channel)).pipe(Effect.map((reply) => Number(reply[1])))

describe("IoRedis subscriber on real redis-server processes", () => {
  live(
    "a subscribe interrupted while the server's confirmation is on the wire leaves the channel usable",
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh()
      const client = yield* raw(server.url)
      const proxy = yield* Proxy.start(server)
      const channel = yield* uniqueId("wire")
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        const messages: Array<string> = []
        yield* subscriber.listen(channel, (m) => messages.push(m))
        yield* proxy.setLatency(150)
        const first = yield* Effect.fork(subscriber.subscribe(channel))
        yield* eventually(subscribers(client, channel), (n) => n === 1) // the reply takes another 150 ms
        yield* Fiber.interrupt(first)
        const second = yield* subscriber.subscribe(channel).pipe(Effect.timeout("5 seconds"), Effect.exit)
        expect(Exit.isSuccess(second)).toBe(true)
        expect(subscriber.isActive(channel)).toBe(true)
        expect(yield* Effect.promise(() => client.publish(channel, "hello"))).toBe(1)
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
        expect(messages).toEqual(["hello"])
      }).pipe(Effect.provide(IoRedis.layer({ url: proxy.url })))
    })
  )

  // Issue 23 §5. Was: 1,002–1,006 ms per hand-off (each waiter waited a reservation for the subscription).
  live(
    "a subscriber connection refused by maxclients: waiters poll, and hand-offs take a poll, not a second",
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh()
      const admin = yield* raw(server.url)
      const id = yield* uniqueId("maxclients")
      const { channel } = lockKeys(DEFAULT_PREFIX, id)
      yield* Effect.gen(function*() {
        yield* Effect.scoped(Lock.acquire({ id })) // the layer's client is connected
        const info = yield* Effect.promise(() => admin.info("clients"))
        const connected = Number(/connected_clients:(\d+)/.exec(info)![1])
        yield* Effect.promise(() => admin.config("SET", "maxclients", String(connected)))
        const delays = yield* handOffDelays(id, 6, admin)
        expect((yield* Redis).subscriber!.isActive(channel)).toBe(false)
        expect(yield* subscribers(admin, channel)).toBe(0)
        // polling speed (tens of ms; one slow round on a loaded machine is allowed), not a second each
        expect(median(delays)).toBeLessThan(400)
      }).pipe(Effect.provide(IoRedis.layer({ url: server.url })))
    })
  )

  live(
    "a waiter stopped while its channel is being subscribed does not strand the next waiter",
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh()
      const client = yield* raw(server.url)
      const proxy = yield* Proxy.start(server)
      const id = yield* uniqueId("stranded")
      const { channel } = lockKeys(DEFAULT_PREFIX, id)
      yield* Effect.gen(function*() {
        const holder = yield* Lock.make({ id, lease: 30_000 })
        expect(yield* holder.acquire()).toBe(true)
        yield* proxy.setLatency(150)
        const first = yield* Effect.fork(Effect.scoped(Lock.acquire({ id, timeout: "20 seconds" })))
        yield* eventually(subscribers(client, channel), (n) => n === 1)
        yield* Fiber.interrupt(first)
        const second = yield* Effect.fork(
          Effect.scoped(Effect.map(Lock.acquire({ id, timeout: "20 seconds" }), (lease) => lease.fence))
        )
        yield* proxy.setLatency(0)
        expect(yield* holder.release).toBe(true)
        // before the fix it waited for a confirmation that never came, until its 20 s timeout
        const fence = yield* Fiber.join(second).pipe(Effect.timeout("5 seconds"))
        expect(fence).toBeGreaterThan(1)
      }).pipe(Effect.provide(IoRedis.layer({ url: proxy.url })))
    })
  )

  live(
    "a subscriber connection killed by the server (CLIENT KILL TYPE pubsub) comes back with its channels in use",
    Effect.gen(function*() {
      const server = yield* RedisServer.startFresh()
      const client = yield* raw(server.url)
      const busy = yield* uniqueId("killed-busy")
      const idle = yield* uniqueId("killed-idle")
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        const messages: Array<string> = []
        yield* subscriber.listen(busy, (m) => messages.push(m))
        yield* subscriber.subscribe(busy)
        yield* subscriber.subscribe(idle) // subscribed, but nobody listens
        expect(yield* Effect.promise(() => client.client("KILL", "TYPE", "pubsub"))).toBe(1)
        yield* eventually(subscribers(client, busy), (n) => n === 1)
        yield* eventually(Effect.sync(() => subscriber.isActive(busy)), (active) => active)
        expect(subscriber.isActive(idle)).toBe(false) // not re-subscribed: nobody listens
        expect(yield* subscribers(client, idle)).toBe(0)
        expect(yield* Effect.promise(() => client.publish(busy, "again"))).toBe(1)
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
        expect(messages).toEqual(["again"])
      }).pipe(Effect.provide(IoRedis.layer({ url: server.url })))
    })
  )

  live(
    "when the subscriber's server goes away isActive turns false; when it is back channels in use are subscribed again",
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const first = yield* Scope.make()
      const server = yield* RedisServer.start({ port }).pipe(Scope.extend(first))
      const channel = yield* uniqueId("restart")
      yield* Effect.gen(function*() {
        const subscriber = (yield* Redis).subscriber!
        const messages: Array<string> = []
        yield* subscriber.listen(channel, (m) => messages.push(m))
        yield* subscriber.subscribe(channel)
        expect(subscriber.isActive(channel)).toBe(true)
        yield* Scope.close(first, Exit.void) // redis-server is stopped
        yield* eventually(Effect.sync(() => subscriber.isActive(channel)), (active) => !active, "10 seconds")
        yield* RedisServer.start({ port })
        const client = yield* raw(server.url)
        yield* eventually(Effect.sync(() => subscriber.isActive(channel)), (active) => active, "20 seconds")
        expect(yield* subscribers(client, channel)).toBe(1)
        expect(yield* Effect.promise(() => client.publish(channel, "back"))).toBe(1)
        yield* eventually(Effect.sync(() => messages), (m) => m.length === 1)
        expect(messages).toEqual(["back"])
      }).pipe(Effect.provide(IoRedis.layer({ url: server.url })))
    })
  )
})
