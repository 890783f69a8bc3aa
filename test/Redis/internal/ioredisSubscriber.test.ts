/** Detection of sharded pub/sub, without a server: what `COMMAND INFO SPUBLISH` answers decides it. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Redis as IORedis } from "ioredis"
import * as IoRedisSubscriber from "../../../src/Redis/internal/ioredisSubscriber.js"

const answering = (reply: () => Promise<unknown>) => ({ call: reply, isCluster: true }) as unknown as IORedis

describe("supportsSharded", () => {
  it.effect("Redis ≥ 7 describes SPUBLISH: sharded pub/sub", () =>
    Effect.gen(function*() {
      const reply = [["spublish", 3, ["pubsub", "loading", "stale", "fast"], 1, 1, 1]]
      expect(yield* IoRedisSubscriber.supportsSharded(answering(() => Promise.resolve(reply)))).toBe(true)
    }))

  it.effect("Redis 6 answers nil for an unknown command: classic pub/sub", () =>
    Effect.gen(function*() {
      expect(yield* IoRedisSubscriber.supportsSharded(answering(() => Promise.resolve([null])))).toBe(false)
    }))

  it.effect("a server that refuses COMMAND (renamed, ACL): classic pub/sub", () =>
    Effect.gen(function*() {
      const refused = answering(() => Promise.reject(new Error("NOPERM this user has no permissions")))
      expect(yield* IoRedisSubscriber.supportsSharded(refused)).toBe(false)
    }))
})
