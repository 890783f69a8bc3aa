/**
 * The Promise API's contract (test/conformance/promise.ts) on every backend: the embedded store
 * (`redis: <a layer>`), a real redis-server through an ioredis client, and the Upstash REST fixture
 * through a real `@upstash/redis` client.
 */
import { Redis as Upstash } from "@upstash/redis"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { RedisError } from "../src/LockError.js"
import * as P from "../src/promise.js"
import * as Redis from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Memory from "../src/Redis/Memory.js"
import { type Env, promiseContract } from "./conformance/promise.js"
import * as RedisServer from "./utils/RedisServer.js"
import * as UpstashServer from "./utils/UpstashServer.js"

promiseContract({
  name: "Memory",
  setup: async () => {
    const scope = Effect.runSync(Scope.make())
    const store = await Effect.runPromise(Scope.extend(Memory.make, scope))
    const redis = Layer.succeed(Redis.Redis, store)
    const down = Layer.succeed(Redis.Redis, {
      ...store,
      run: (script) => Effect.fail(new RedisError({ operation: `eval ${script.name}`, detail: "connection refused" }))
    })
    const probe = ManagedRuntime.make(redis)
    return {
      redis,
      broken: down,
      probe,
      close: async () => {
        await Promise.all([P.dispose(redis), P.dispose(down), probe.dispose()])
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    } satisfies Env
  }
})

/** A server for the file's suites, and a probe (an owned IoRedis layer) on it. */
const serve = async <R>(layer: Layer.Layer<R | RedisServer.RedisServer, unknown>) => {
  // a port nobody listens on, for the broken client; asked first, so that nothing below can fail
  // once the servers run
  const closed = await Effect.runPromise(RedisServer.freePort)
  const servers = ManagedRuntime.make(layer)
  const server = await servers.runPromise(RedisServer.RedisServer)
  const probe = ManagedRuntime.make(IoRedis.layer({ url: server.url }))
  return { servers, server, probe, closed }
}

promiseContract({
  name: "IoRedis (redis-server)",
  setup: async () => {
    const { closed, probe, server, servers } = await serve(RedisServer.layer)
    const redis = new IORedis(server.url)
    const broken = new IORedis({
      host: "127.0.0.1",
      port: closed,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null
    })
    broken.on("error", () => {}) // refused, as it should be
    return {
      redis,
      broken,
      probe,
      close: async () => {
        await Promise.all([redis.quit(), P.dispose(broken), probe.dispose()])
        broken.disconnect()
        await servers.dispose()
      }
    } satisfies Env
  }
})

promiseContract({
  name: "Upstash (@upstash/redis → REST fixture → redis-server)",
  setup: async () => {
    const { closed, probe, servers } = await serve(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)))
    const fixture = await servers.runPromise(UpstashServer.UpstashServer)
    const redis = new Upstash({ url: fixture.url, token: fixture.token })
    const broken = new Upstash({ url: `http://127.0.0.1:${closed}`, token: fixture.token, retry: false })
    return {
      redis,
      broken,
      probe,
      close: async () => {
        await Promise.all([P.dispose(redis), P.dispose(broken), probe.dispose()])
        await servers.dispose()
      }
    } satisfies Env
  }
})
