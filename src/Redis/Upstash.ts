/**
 * The Redis seam over HTTP, on Upstash's REST API: for serverless and edge runtimes. Nothing here
 * imports from Node.
 *
 * - {@link layer} talks to the REST API itself with `fetch`, from a URL and a token (a string or
 *   `Redacted`); it needs no other package.
 * - {@link layerClient} runs over an `@upstash/redis` client you created (any entry: `@upstash/redis`,
 *   `@upstash/redis/cloudflare`, `@upstash/redis/fastly`; an optional peer dependency).
 * - {@link layerConfig} reads `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN` (or `KV_REST_API_URL`
 *   and `KV_REST_API_TOKEN`), like `Redis.fromEnv()`.
 *
 * Scripts go with EVALSHA and fall back to EVAL on NOSCRIPT, or for good when the user may not run
 * EVALSHA. Every failure becomes one `RedisError` that says what happened, without the REST token and
 * without the command (it would carry owner tokens): Redis's own error (`NOSCRIPT …`), an HTTP status
 * (`HTTP 502 Bad Gateway: <html>…`), a network cause (`connect ECONNREFUSED 127.0.0.1:8080`), a timeout,
 * or `malformed reply from Upstash: …` for a body that is not a reply Redis could have sent (with
 * {@link layer}, the body itself, printable and truncated; an integer beyond 2^53 is one, never a
 * rounded number). With {@link layerClient}, a client's defaults are fine: every script compares tokens
 * inside Lua and replies with integers (Debounce's arguments behind a `=`), so automatic JSON
 * deserialization and base64 response encoding cannot change a result.
 *
 * On first use, a layer reads `maxmemory-policy` (`CONFIG GET`, where the server allows it) and warns
 * once if Redis may evict keys: see {@link Eviction}. Where the server refuses CONFIG (as far as we know
 * Upstash's own REST API does), the check cannot be made and the layer says so at debug level: keep
 * eviction off in the database's settings.
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
import type { RedisConfigNodejs } from "@upstash/redis"
import { Config, type ConfigError, Duration, Effect, Layer, type Redacted, type Scope } from "effect"
import type { InvalidOptions } from "../LockError.js"
import * as Redis from "../Redis.js"
import * as Connection from "./internal/connection.js"
import { makeRun, type Transport } from "./internal/evalsha.js"
import * as EvictionCheck from "./internal/eviction.js"
import { request } from "./internal/request.js"
import * as Sse from "./internal/sse.js"
import * as Timer from "./internal/timer.js"
import * as Rest from "./internal/upstashRest.js"
import * as Streams from "./internal/upstashStreams.js"

/**
 * What this backend needs of a client: `@upstash/redis`'s `eval` and `evalsha`; for wake-ups pushed
 * over Server-Sent Events, its `subscribe` (`@upstash/redis` ≥ 1.35; without it, waiters poll); to read
 * `maxmemory-policy`, its `exec` (without it, that check is not made).
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly eval: (script: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
  readonly evalsha: (sha1: string, keys: Array<string>, args: Array<string>) => Promise<unknown>
  readonly subscribe?: ((channel: string) => Subscription) | undefined
  readonly exec?: ((command: [command: string, ...args: Array<string>]) => Promise<unknown>) | undefined
}

/**
 * One channel's event stream, as `@upstash/redis`'s `redis.subscribe(channel)` returns it.
 *
 * @since 0.1.0
 * @category models
 */
export type Subscription = Streams.Subscription

/**
 * What a layer does, on its first use, about a server whose `maxmemory-policy` is not `noeviction` (Redis
 * may then evict a held lock's key, giving two owners, or a fence counter, whose fences then go back):
 * `"warn"` (the default) logs one warning per layer naming the policy; `"fail"` makes every operation a
 * `RedisError` naming it; `"ignore"` does not look. A server that refuses `CONFIG` is not an error: the
 * layer says once that it could not look.
 *
 * @since 0.1.0
 * @category models
 */
export type Eviction = "warn" | "fail" | "ignore"

/**
 * Options of {@link layer} and {@link layerClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The REST URL (`UPSTASH_REDIS_REST_URL`): `https://…` (or `http://…`), else `InvalidOptions`. */
  readonly url: string
  /** The REST token (`UPSTASH_REDIS_REST_TOKEN`), a string or `Redacted`; it never shows in an error or log. */
  readonly token: Redacted.Redacted | string
  /** Longest wait for one operation, retries included; then `RedisError`. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** What to do about a server that may evict keys; see {@link Eviction}. Default `"warn"`. */
  readonly eviction?: Eviction | undefined
  /**
   * `@upstash/redis`'s options that apply to the requests {@link layer} sends: `retry` (network failures
   * tried again: by default 5 times, `exp(n) × 50 ms` apart; `false`: never) and `readYourWrites` (default
   * `true`). The others concern that client's own command layer, which `layer` does not use.
   */
  readonly client?: Omit<RedisConfigNodejs, "url" | "token"> | undefined
}

const DEFAULT_TIMEOUT = Duration.seconds(10)

/** The message of whatever the client threw, minus its echo of the command. */
const describe = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ""
  return `${message.split(", command was:")[0]!}${cause}`
}

/** A backend over the REST API: how scripts are sent, and how `maxmemory-policy` is read. */
interface Backend {
  readonly transport: (timer: Redis.Timer) => Transport & {
    readonly readEviction: () => Promise<EvictionCheck.Reading>
  }
  readonly subscribe?: ((channel: string) => Subscription) | undefined
}

const service = (
  backend: Backend,
  options: { readonly timeout?: Duration.DurationInput | undefined; readonly eviction?: Eviction | undefined }
): Effect.Effect<Redis.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timer = yield* Timer.make
    const subscribe = backend.subscribe
    const subscriber = subscribe === undefined
      ? undefined
      : yield* Streams.make((channel) => subscribe(channel), describe)
    // The timeout is an entry on the service's timer, not a race per call.
    const transport = { ...backend.transport(timer), timeout: Duration.toMillis(options.timeout ?? DEFAULT_TIMEOUT) }
    const bounds = { ...transport, timer }
    return Redis.Redis.of({
      backend: "upstash",
      timer,
      subscriber,
      run: EvictionCheck.guard({
        mode: options.eviction ?? "warn",
        read: transport.readEviction,
        request: (operation, start, deadline) => request(bounds, operation, start, deadline)
      }, makeRun(transport, timer))
    })
  })

/** A reply the client decoded, checked as {@link Rest.malformed} checks a body. */
const checked = (reply: unknown): unknown => {
  const why = Rest.malformed(reply)
  if (why === undefined) return reply
  throw new Error(`malformed reply from Upstash: ${Rest.excerpt(Rest.render(reply))} (${why})`)
}

const isNetworkFailure = (error: unknown) => error instanceof TypeError

/**
 * The Redis service over a client. `timeout` bounds each operation (one timer shared by all of them,
 * not a race per call). With a client that has `subscribe`, waiters are woken by push: one event
 * stream per lock being waited for, shared by this service's waiters and closed a minute after its
 * last use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  client: Client,
  timeout: Duration.DurationInput = DEFAULT_TIMEOUT,
  options: { readonly eviction?: Eviction | undefined } = {}
): Effect.Effect<Redis.Service, never, Scope.Scope> =>
  service({
    subscribe: client.subscribe,
    transport: () => ({
      source: "Upstash",
      evalsha: (sha, numberOfKeys, keysAndArgs) =>
        client.evalsha(sha, keysAndArgs.slice(0, numberOfKeys), keysAndArgs.slice(numberOfKeys)).then(checked),
      eval: (lua, numberOfKeys, keysAndArgs) =>
        client.eval(lua, keysAndArgs.slice(0, numberOfKeys), keysAndArgs.slice(numberOfKeys)).then(checked),
      describe,
      readEviction: () => {
        const exec = client.exec
        if (exec === undefined) {
          return Promise.resolve({ _tag: "Refused", detail: "the client has no exec to send CONFIG with" } as const)
        }
        return exec(["CONFIG", "GET", "maxmemory*"]).then(
          (reply) => reading(EvictionCheck.parse("the Upstash database", reply)),
          (error: unknown) => {
            if (isNetworkFailure(error)) throw error
            return { _tag: "Refused", detail: describe(error) } as const
          }
        )
      }
    })
  }, { timeout, ...options })

const reading = (setting: EvictionCheck.Setting | undefined): EvictionCheck.Reading =>
  setting === undefined
    ? { _tag: "Refused", detail: "CONFIG GET gave no maxmemory-policy" }
    : { _tag: "Settings", settings: [setting] }

/**
 * Over a client you made; it is never closed (REST clients hold no connection to close). Event streams
 * opened for wake-ups are closed with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  client: Client,
  options: { readonly timeout?: Duration.DurationInput; readonly eviction?: Eviction | undefined } = {}
): Layer.Layer<Redis.Redis> => Layer.scoped(Redis.Redis, make(client, options.timeout, options))

/**
 * Talks to the REST API at `url` with `token`. A URL that is not `http(s)://host…`, or an empty token, is
 * `InvalidOptions` when the layer is built (nothing is sent).
 *
 * @example
 * import { Redacted } from "effect"
 * import * as Upstash from "effect-lock/Redis/Upstash"
 *
 * const RedisLive = Upstash.layer({ url: "https://eu1-example.upstash.io", token: Redacted.make("AX…") })
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Redis.Redis, InvalidOptions> =>
  Layer.scoped(
    Redis.Redis,
    Effect.gen(function*() {
      const url = (yield* Connection.url("url", options.url, ["http:", "https:"])).replace(/\/+$/, "")
      const token = yield* Connection.secret("token", options.token)
      const host = new URL(url).host
      return yield* service({
        // Wake-up streams are read directly too: payloads as sent, and a stream that ends is noticed.
        subscribe: Sse.subscriber(url, token),
        transport: (timer) => {
          const rest = Rest.make({
            url,
            token,
            retry: options.client?.retry,
            readYourWrites: options.client?.readYourWrites
          }, timer)
          return {
            source: "Upstash",
            abortable: true,
            evalsha: (sha, numberOfKeys, keysAndArgs, signal) =>
              rest.send(["EVALSHA", sha, String(numberOfKeys), ...keysAndArgs], signal),
            eval: (lua, numberOfKeys, keysAndArgs, signal) =>
              rest.send(["EVAL", lua, String(numberOfKeys), ...keysAndArgs], signal),
            describe: rest.describe,
            fault: rest.fault,
            redact: rest.redact,
            readEviction: () =>
              rest.send(["CONFIG", "GET", "maxmemory*"]).then(
                (reply) => reading(EvictionCheck.parse(host, reply)),
                (error: unknown) => {
                  if (!(error instanceof Rest.RestError && error.kind === "redis")) throw error
                  return { _tag: "Refused", detail: error.message } as const
                }
              )
          }
        }
      }, options)
    })
  )

/**
 * Reads the URL and token from `Config`, as `Redis.fromEnv()` reads the environment: by default
 * `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`, falling back to `KV_REST_API_URL` and
 * `KV_REST_API_TOKEN` (the names Vercel KV sets); the token as a redacted value. `options`: the rest of
 * {@link Options} (`timeout`, `eviction`, `client`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Pick<Options, "url" | "token">> = {
    url: Config.string("UPSTASH_REDIS_REST_URL").pipe(Config.orElse(() => Config.string("KV_REST_API_URL"))),
    token: Config.redacted("UPSTASH_REDIS_REST_TOKEN").pipe(Config.orElse(() => Config.redacted("KV_REST_API_TOKEN")))
  },
  options: Omit<Options, "url" | "token"> = {}
): Layer.Layer<Redis.Redis, ConfigError.ConfigError | InvalidOptions> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), (read) => layer({ ...options, ...read })))
