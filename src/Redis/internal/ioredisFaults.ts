/**
 * Failures of an ioredis client in words that name their cause. ioredis reports why a connection failed
 * only in its `error` events (`connect ECONNREFUSED 127.0.0.1:6379`, `getaddrinfo ENOTFOUND …`, TLS
 * errors, `WRONGPASS …`); a command waiting for the connection fails later with a text that does not say
 * it (`Reached the max retries per request limit …`, `Connection is closed.`), or not at all before the
 * caller's deadline. This module remembers the last connection error until the connection is ready
 * again, and adds it to such failures. Every text is scrubbed of the client's password.
 */
import { Effect, type Scope } from "effect"
import type { Cluster, Redis as IORedis } from "ioredis"
import { describeCause } from "./cause.js"
import { redactor } from "./connection.js"
import { isCluster } from "./ioredisSubscriber.js"

export interface Faults {
  /** The last connection error, while the connection has not been ready since. */
  readonly fault: () => string | undefined
  /** A failure's text for `RedisError.detail`: ioredis's message, with the connection's fault if it has one. */
  readonly describe: (error: unknown) => string
  /** Cuts the client's password out of a text. */
  readonly redact: (text: string) => string
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The passwords the client knows (from its URL or options), to keep out of every text. */
const secrets = (client: IORedis | Cluster): ReadonlyArray<string> => {
  const password = isCluster(client) ? client.options.redisOptions?.password : client.options.password
  return typeof password === "string" && password !== "" ? [password, encodeURIComponent(password)] : []
}

/** Follows the client's connection errors for the scope's life (listeners removed when it closes). */
export const track = (client: IORedis | Cluster): Effect.Effect<Faults, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scrub = redactor(secrets(client), "***")
    let last: string | undefined
    const onError = (error: unknown) => {
      last = scrub(describeCause(error))
    }
    const onNodeError = (error: unknown, address: unknown) => {
      last = scrub(`${describeCause(error)}${typeof address === "string" ? ` (node ${address})` : ""}`)
    }
    const onReady = () => {
      last = undefined
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        client.on("error", onError)
        client.on("ready", onReady)
        if (isCluster(client)) client.on("node error", onNodeError)
      }),
      () =>
        Effect.sync(() => {
          client.off("error", onError)
          client.off("ready", onReady)
          client.off("node error", onNodeError)
        })
    )
    const fault = () => last
    const describe = (error: unknown): string => {
      const text = scrub(message(error))
      const name = error instanceof Error ? error.name : ""
      // A reply from Redis says what it means; so does a failure that already names the fault.
      if (name === "ReplyError" || last === undefined || text.includes(last)) return text
      if (name === "MaxRetriesPerRequestError") {
        const tries = /which is (\d+)/.exec(text)?.[1]
        return `${last} (no connection after ${tries ?? "its"} retries: ioredis's maxRetriesPerRequest)`
      }
      return `${text.replace(/\.$/, "")}: ${last}`
    }
    return { fault, describe, redact: scrub }
  })
