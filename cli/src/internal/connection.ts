/**
 * Which Redis the command talks to: `--redis <url>`, else `--redis-file <path>` (the URL in a file),
 * else `REDIS_URL`, else `UPSTASH_REDIS_REST_URL` with `UPSTASH_REDIS_REST_TOKEN`. The backend module is loaded only once chosen, so a run over ioredis
 * never needs `@upstash/redis` and the other way round. URLs and tokens stay `Redacted` and are never
 * printed: a rejected URL is reported without its text.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import type { Redis } from "effect-lock/Redis"
import { CliFailure, ExitCodes } from "./exitCodes.js"

export type Connection =
  | { readonly _tag: "IoRedis"; readonly url: Redacted.Redacted }
  | { readonly _tag: "Upstash"; readonly url: string; readonly token: Redacted.Redacted }

const usage = (message: string) => new CliFailure({ code: ExitCodes.usage, message })

const hasProtocol = (text: string, protocols: ReadonlyArray<string>) => {
  try {
    return protocols.includes(new URL(text).protocol)
  } catch {
    return false
  }
}

const filled = (secret: Redacted.Redacted) => Redacted.value(secret).trim() !== ""

const missing = "no Redis given: pass --redis <url> or --redis-file <path>, or set REDIS_URL, " +
  "or set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"

/** The variables credentials are read from: they are not passed on to the command (unless asked). */
export const credentialVariables = ["REDIS_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"] as const

/** The URL in a file (its first line; surrounding blanks ignored), never printed. */
const readUrlFile = (path: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.map((text) => Redacted.make(text.split("\n")[0]!.trim())),
    Effect.mapError((error) => usage(`cannot read --redis-file: ${error.message}`))
  )

/** Picks the connection from the flags and the environment, checking the URLs' form. */
export const resolve = (
  flag: Option.Option<Redacted.Redacted>,
  file: Option.Option<string> = Option.none()
): Effect.Effect<Connection, CliFailure, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isSome(flag) && Option.isSome(file)) return yield* usage("--redis and --redis-file exclude each other")
    const fromFile = Option.isSome(file) ? Option.some(yield* readUrlFile(file.value)) : Option.none()
    // A variable set to the empty string counts as unset.
    const env = yield* Config.all({
      redis: Config.option(Config.redacted("REDIS_URL")).pipe(Config.map(Option.filter(filled))),
      upstashUrl: Config.option(Config.string("UPSTASH_REDIS_REST_URL")).pipe(
        Config.map(Option.filter((url) => url.trim() !== ""))
      ),
      upstashToken: Config.option(Config.redacted("UPSTASH_REDIS_REST_TOKEN")).pipe(Config.map(Option.filter(filled)))
    }).pipe(Effect.mapError(() => usage(missing)))
    const redis = Option.orElse(Option.orElse(flag, () => fromFile), () => env.redis)
    if (Option.isSome(redis)) {
      if (!hasProtocol(Redacted.value(redis.value), ["redis:", "rediss:"])) {
        const source = Option.isSome(flag) ? "--redis" : Option.isSome(file) ? "the --redis-file" : "REDIS_URL"
        return yield* usage(`${source} is not a redis:// or rediss:// URL`)
      }
      return { _tag: "IoRedis", url: redis.value } as const
    }
    if (Option.isSome(env.upstashUrl) && Option.isSome(env.upstashToken)) {
      if (!hasProtocol(env.upstashUrl.value, ["http:", "https:"])) {
        return yield* usage("UPSTASH_REDIS_REST_URL is not an http:// or https:// URL")
      }
      return { _tag: "Upstash", url: env.upstashUrl.value, token: env.upstashToken.value } as const
    }
    if (Option.isSome(env.upstashUrl) || Option.isSome(env.upstashToken)) {
      return yield* usage("set both UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN")
    }
    return yield* usage(missing)
  })

const load = <A>(backend: string, pkg: string, f: () => Promise<A>) =>
  Effect.tryPromise({
    try: f,
    catch: (error) =>
      (error as { readonly code?: unknown })?.code === "ERR_MODULE_NOT_FOUND"
        ? usage(`${backend} needs the package ${pkg}: install it beside effect-lock (npm install ${pkg})`)
        : new CliFailure({ code: 1, message: `could not load the ${backend} backend: ${String(error)}` })
  })

/**
 * The Redis layer for a connection, tuned for a command line: an unreachable server fails within about
 * a second instead of being retried for long, and no single command waits longer than 5 seconds (the
 * lease's own deadline still governs keep-alive).
 */
export const layer = (connection: Connection): Layer.Layer<Redis, CliFailure> =>
  Layer.unwrapEffect(
    connection._tag === "IoRedis"
      ? Effect.map(
        load("ioredis", "ioredis", () => import("effect-lock/Redis/IoRedis")),
        (IoRedis) =>
          IoRedis.layer({
            url: connection.url,
            client: { maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 5000 }
          }).pipe(Layer.mapError((e) => usage(e.message)))
      )
      : Effect.map(
        load("Upstash", "@upstash/redis", () => import("effect-lock/Redis/Upstash")),
        (Upstash) =>
          Upstash.layer({ url: connection.url, token: connection.token, timeout: "5 seconds" }).pipe(
            Layer.mapError((e) => usage(e.message))
          )
      )
  )
