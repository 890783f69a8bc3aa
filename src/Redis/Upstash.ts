/**
 * The Redis seam over HTTP, through `@upstash/redis` (an optional peer dependency): for serverless and
 * edge runtimes that reach Redis over Upstash's REST API. Nothing here imports from Node.
 *
 * - {@link layer} creates a client from a URL and a `Redacted` token.
 * - {@link layerClient} runs over a client you created (any entry: `@upstash/redis`,
 *   `@upstash/redis/cloudflare`, `@upstash/redis/fastly`).
 * - {@link layerConfig} reads `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN` (or `KV_REST_API_URL`
 *   and `KV_REST_API_TOKEN`), like `Redis.fromEnv()`.
 *
 * The client's defaults are fine: every script compares tokens inside Lua and replies with integers
 * only, so automatic JSON deserialization and base64 response encoding cannot change a result. Scripts
 * go with EVALSHA and fall back to EVAL on NOSCRIPT. Every failure (HTTP error text, `{ error }` in a
 * 200, a failed pipeline entry, a network `TypeError`, a timeout) becomes one `RedisError`, without the
 * command echo that `@upstash/redis` appends (it would carry owner tokens) and without the REST token.
 *
 * Waiters are woken by push over Server-Sent Events (`POST /subscribe/<channel>`): one stream per lock
 * being waited for, shared by the service's waiters, counted as subscribed once Redis confirmed it,
 * closed a minute after its last use and reopened when it ends or fails. `layer` reads the streams
 * itself with `fetch`; `layerClient` uses the client's `subscribe` if it has one, else waiters poll.
 *
 * @example
 * import { Effect } from "effect"
 * import { Lock } from "effect-lock"
 * import * as Upstash from "effect-lock/Redis/Upstash"
 *
 * // UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN, as Redis.fromEnv() reads them
 * const RedisLive = Upstash.layerConfig()
 * Lock.withLock({ id: "job" })(Effect.log("working")).pipe(Effect.provide(RedisLive), Effect.runPromise)
 *
 * @since 0.1.0
 */
import { Redis as UpstashRedis, type RedisConfigNodejs } from "@upstash/redis"
import { Config, type ConfigError, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { render } from "../internal/validate.js"
import { InvalidOptions } from "../LockError.js"
import * as Redis from "../Redis.js"
import { makeRun } from "./internal/evalsha.js"
import * as Sse from "./internal/sse.js"
import * as Timer from "./internal/timer.js"
import * as Streams from "./internal/upstashStreams.js"

/**
 * What this backend needs of a client: `@upstash/redis`'s `eval` and `evalsha`, and, for wake-ups
 * pushed over Server-Sent Events, its `subscribe` (`@upstash/redis` ≥ 1.35). Without `subscribe`,
 * waiters poll.
 *
 * @since 0.1.0
 */
export interface Client {
  readonly eval: (script: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
  readonly evalsha: (sha1: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
  readonly subscribe?: ((channel: string) => Subscription) | undefined
}

/**
 * One channel's event stream, as `@upstash/redis`'s `redis.subscribe(channel)` returns it.
 *
 * @since 0.1.0
 */
export type Subscription = Streams.Subscription

/**
 * @since 0.1.0
 */
export interface Options {
  /** The REST URL (`UPSTASH_REDIS_REST_URL`). */
  readonly url: string
  /** The REST token (`UPSTASH_REDIS_REST_TOKEN`), unwrapped only when the client is made. */
  readonly token: Redacted.Redacted
  /** Longest wait for one operation, retries included; then `RedisError`. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Any other `@upstash/redis` option (`retry`, `responseEncoding`, `enableAutoPipelining`, …). */
  readonly client?: Omit<RedisConfigNodejs, "url" | "token"> | undefined
}

const DEFAULT_TIMEOUT = Duration.seconds(10)

/** The message of whatever the client threw, minus its echo of the command. */
const describe = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ""
  return `${message.split(", command was:")[0]!}${cause}`
}

/**
 * The Redis service over a client. `timeout` bounds each operation (one timer shared by all of them,
 * not a race per call). With a client that has `subscribe`, waiters are woken by push: one event
 * stream per lock being waited for, shared by this service's waiters and closed a minute after its
 * last use.
 *
 * @since 0.1.0
 */
export const make = (
  client: Client,
  timeout: Duration.DurationInput = DEFAULT_TIMEOUT
): Effect.Effect<Redis.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timer = yield* Timer.make
    const subscribe = client.subscribe
    const subscriber = subscribe === undefined
      ? undefined
      : yield* Streams.make((channel) => subscribe(channel), describe)
    return Redis.Redis.of({
      backend: "upstash",
      timer,
      subscriber,
      // The timeout is an entry on the service's timer, not a race per call.
      run: makeRun({
        evalsha: (sha, numberOfKeys, keysAndArgs) =>
          client.evalsha(sha, keysAndArgs.slice(0, numberOfKeys), keysAndArgs.slice(numberOfKeys)),
        eval: (lua, numberOfKeys, keysAndArgs) =>
          client.eval(lua, keysAndArgs.slice(0, numberOfKeys), keysAndArgs.slice(numberOfKeys)),
        describe,
        timeout: Duration.toMillis(Duration.decode(timeout))
      }, timer)
    })
  })

/**
 * Over a client you made; it is never closed (REST clients hold no connection to close). Event streams
 * opened for wake-ups are closed with the layer.
 *
 * @since 0.1.0
 */
export const layerClient = (client: Client, options: { readonly timeout?: Duration.DurationInput } = {}): Layer.Layer<
  Redis.Redis
> => Layer.scoped(Redis.Redis, make(client, options.timeout))

/**
 * Makes an `@upstash/redis` client from a URL and token.
 *
 * @example
 * import { Redacted } from "effect"
 * import * as Upstash from "effect-lock/Redis/Upstash"
 *
 * const RedisLive = Upstash.layer({ url: "https://eu1-example.upstash.io", token: Redacted.make("AX…") })
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Redis.Redis, InvalidOptions> =>
  Layer.scoped(
    Redis.Redis,
    Effect.try({
      try: () => {
        const config = { ...options.client, url: options.url, token: Redacted.value(options.token) }
        const client = new UpstashRedis(config)
        // Wake-up streams are read directly (same endpoint as `client.subscribe`): payloads as sent, and
        // a stream that ends is noticed and reopened.
        return {
          eval: (script, keys, args) => client.eval(script, keys, args),
          evalsha: (sha1, keys, args) => client.evalsha(sha1, keys, args),
          subscribe: Sse.subscriber(options.url, options.token)
        } satisfies Client
      },
      catch: () => new InvalidOptions({ option: "url", expected: "an http(s) URL", received: render(options.url) })
    }).pipe(Effect.flatMap((client) => make(client, options.timeout)))
  )

/**
 * Reads the URL and token from `Config`, as `Redis.fromEnv()` reads the environment: by default
 * `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`, falling back to `KV_REST_API_URL` and
 * `KV_REST_API_TOKEN` (the names Vercel KV sets); the token as a redacted value.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<Pick<Options, "url" | "token">> = {
    url: Config.string("UPSTASH_REDIS_REST_URL").pipe(Config.orElse(() => Config.string("KV_REST_API_URL"))),
    token: Config.redacted("UPSTASH_REDIS_REST_TOKEN").pipe(Config.orElse(() => Config.redacted("KV_REST_API_TOKEN")))
  }
): Layer.Layer<Redis.Redis, ConfigError.ConfigError | InvalidOptions> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
