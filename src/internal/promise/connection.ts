/**
 * One runtime per client: the first object given a client (an ioredis or `@upstash/redis` client, or a
 * layer) makes a `ManagedRuntime` over its layer; every other object given the same client shares it.
 * A connection also remembers what was made through it (each object's Effect handle) and the leases
 * held through it, released when it is disposed.
 *
 * The backend modules are imported when a client of theirs first shows up, so an Upstash user never
 * loads ioredis and the other way round.
 */
import { Context, Deferred, Effect, Exit, Fiber, FiberId, Layer, ManagedRuntime, type Scope } from "effect"
import { InvalidOptions } from "../../LockError.js"
import type * as Public from "../../promise.js"
import { Redis } from "../../Redis.js"
import { render } from "../validate.js"
import * as Clock from "./clock.js"
import * as Errors from "./errors.js"

/**
 * The scope that the leases held through a connection are forked from: closed when the connection is
 * disposed, before its Redis service (so the leases are released while it still works).
 */
export class Leases extends Context.Tag("effect-lock/promise/Leases")<Leases, Scope.Scope>() {}

interface Ending {
  readonly once: (event: "end", listener: () => void) => unknown
  readonly off: (event: "end", listener: () => void) => unknown
}

export class Connection {
  private readonly runtime: ManagedRuntime.ManagedRuntime<Redis | Leases, unknown>
  private readonly made = new WeakMap<object, Deferred.Deferred<unknown, unknown>>()
  /** The calls in flight, interrupted by a dispose. */
  private readonly running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()

  constructor(layer: Layer.Layer<Redis, unknown>) {
    const leases = Layer.scoped(Leases, Effect.zipRight(Redis, Effect.scope))
    this.runtime = ManagedRuntime.make(
      Layer.provideMerge(leases, layer).pipe(Layer.provide(Layer.setClock(Clock.clock)))
    )
  }

  /** Runs `effect` on this client; a failure rejects as `Errors.fromCause` says. */
  run<A, E>(operation: string, effect: Effect.Effect<A, E, Redis | Leases>): Promise<A> {
    return Clock.busy(() =>
      new Promise<A>((resolve, reject) => {
        const fiber = this.runtime.runFork(effect)
        this.running.add(fiber)
        fiber.addObserver((exit) => {
          this.running.delete(fiber)
          if (Exit.isSuccess(exit)) resolve(exit.value)
          else reject(Errors.fromCause(exit.cause, operation))
        })
      })
    )
  }

  /** What `make` gives, made once per `owner` on this connection (concurrent first calls share it). */
  once<A, E>(owner: object, make: Effect.Effect<A, E, Redis>): Effect.Effect<A, E, Redis> {
    return Effect.suspend(() => {
      const made = this.made.get(owner) as Deferred.Deferred<A, E> | undefined
      if (made !== undefined) return Deferred.await(made)
      const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
      this.made.set(owner, deferred as Deferred.Deferred<unknown, unknown>)
      return Effect.zipRight(Effect.uninterruptible(Effect.intoDeferred(make, deferred)), Deferred.await(deferred))
    })
  }

  /** Ends the calls in flight (they reject with `RedisError`), then releases the leases and the layer. */
  async dispose(): Promise<void> {
    await Promise.all(Array.from(this.running, (fiber) => Effect.runPromise(Fiber.interrupt(fiber))))
    await this.runtime.dispose()
  }
}

const connections = new WeakMap<object, { readonly connection: Connection; readonly forget: () => void }>()

const isObject = (u: unknown): u is object => (typeof u === "object" && u !== null) || typeof u === "function"

const isIoRedis = (u: object): u is Public.IoRedisClient & Ending => {
  const client = u as Partial<Record<keyof Public.IoRedisClient | keyof Ending, unknown>>
  return typeof client.isCluster === "boolean" && typeof client.duplicate === "function" &&
    typeof client.once === "function" && typeof client.off === "function"
}

const isUpstash = (u: object): u is Public.UpstashClient => {
  const client = u as Partial<Record<keyof Public.UpstashClient, unknown>>
  return typeof client.eval === "function" && typeof client.evalsha === "function"
}

const unknownClient = (redis: unknown) =>
  Layer.fail(
    new InvalidOptions({
      option: "redis",
      expected: "an ioredis client, an @upstash/redis client or a Layer of effect-lock's Redis service",
      received: render(redis)
    })
  )

const layerOf = (redis: object): Layer.Layer<Redis, unknown> => {
  if (Layer.isLayer(redis)) return redis as Layer.Layer<Redis, unknown>
  if (isIoRedis(redis)) {
    return Layer.unwrapEffect(
      Effect.map(
        Effect.promise(() => import("../../Redis/IoRedis.js")),
        // told apart by shape: an ioredis `Redis` or `Cluster`
        (IoRedis) => IoRedis.layerClient(redis as unknown as Parameters<typeof IoRedis.layerClient>[0])
      )
    )
  }
  if (isUpstash(redis)) {
    return Layer.unwrapEffect(
      Effect.map(
        Effect.promise(() => import("../../Redis/Upstash.js")),
        // without `subscribe`: waiters poll. With it, the event stream one wait opens keeps the process
        // alive after the last call (with @upstash/redis 1.39, a program that waited once never ended)
        (Upstash) =>
          Upstash.layerClient({
            eval: (script, keys, args) => redis.eval(script, keys, args),
            evalsha: (sha1, keys, args) => redis.evalsha(sha1, keys, args)
          })
      )
    )
  }
  return unknownClient(redis)
}

/** The connection of `redis`, made on first use. */
export const connect = (redis: unknown): Connection => {
  if (!isObject(redis)) return new Connection(unknownClient(redis))
  const known = connections.get(redis)
  if (known !== undefined) return known.connection
  const connection = new Connection(layerOf(redis))
  let forget = () => {}
  if (isIoRedis(redis)) {
    // the client quit (or gave up reconnecting): close what was opened beside it, e.g. the subscriber
    const onEnd = () => void dispose(redis).catch(() => {})
    redis.once("end", onEnd)
    forget = () => void redis.off("end", onEnd)
  }
  connections.set(redis, { connection, forget })
  return connection
}

/** Disposes of the connection of `redis`, if it has one; the next use makes a new one. */
export const dispose = (redis: unknown): Promise<void> => {
  const known = isObject(redis) ? connections.get(redis) : undefined
  if (known === undefined) return Promise.resolve()
  connections.delete(redis as object)
  known.forget()
  return known.connection.dispose()
}
