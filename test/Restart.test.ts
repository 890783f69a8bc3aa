/**
 * Redis restarted without persistence (issue 23 §4): the server comes back empty, so another process
 * can take the lock at once. The holder's client hears the restart in the first reply of its new
 * connection (the server's `run_id` changed) and loses its lease then, not at its next keep-alive; the
 * next fence is still above the holder's (the counter starts again at Redis TIME in µs). A reconnection
 * to the same server (a dropped connection) loses nothing.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Exit, Layer, Scope } from "effect"
import * as Lock from "../src/Lock.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import { eventually, raw } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

describe("a Redis restart", () => {
  it.scopedLive(
    "the holder loses its lease on the first reply from the restarted server, and the next fence is above its own",
    () =>
      Effect.gen(function*() {
        const port = yield* RedisServer.freePort
        const url = `redis://127.0.0.1:${port}`
        const first = yield* Scope.make()
        yield* Scope.extend(RedisServer.start({ port }), first)
        const holder = yield* Layer.build(IoRedis.layer({ url, client: { retryStrategy: () => 50 } }))
        const id = yield* uniqueId("restart")
        // a 9 s lease: its next keep-alive is 3 s away
        const held = yield* Lock.acquire({ id, lease: 9000 }).pipe(Effect.provide(holder))

        // a dropped connection to the same server loses nothing
        const admin = yield* raw(url)
        yield* Effect.promise(() => admin.client("KILL", "TYPE", "normal", "SKIPME", "yes"))
        const probe = Lock.make({ id: `${id}-probe` }).pipe(
          Effect.flatMap((lock) => lock.status),
          Effect.provide(holder)
        )
        yield* eventually(Effect.either(probe), Either.isRight)
        expect(yield* held.isLost).toBe(false)

        const restartedAt = yield* Clock.currentTimeMillis
        yield* Scope.close(first, Exit.void)
        yield* RedisServer.start({ port })
        // the first reply the holder's client gets from the restarted server…
        yield* eventually(Effect.either(probe), Either.isRight)
        // …and the lease is already lost, seconds before its next keep-alive would have told
        expect(yield* held.isLost).toBe(true)
        expect((yield* Effect.flip(held.lost)).reason).toBe("expired")
        expect((yield* Clock.currentTimeMillis) - restartedAt).toBeLessThan(3000)

        const other = yield* Layer.build(IoRedis.layer({ url }))
        const next = yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence)).pipe(
          Effect.provide(other)
        )
        expect(next).toBeGreaterThan(held.fence)
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )
})
