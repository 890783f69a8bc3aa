/**
 * Issue 21 §2 over TCP: a RedisError names the transport's cause (a refused connection, a TLS error),
 * whether the caller's deadline or ioredis's own retry limit ends the wait, and never shows the
 * password; a URL that is not redis:// or rediss:// is InvalidOptions when the layer is built.
 * Real sockets on loopback: a port nobody listens on, and a TCP server that does not speak TLS.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, type Layer, Redacted } from "effect"
import * as Lock from "../../src/Lock.js"
import type { InvalidOptions, RedisError } from "../../src/LockError.js"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import { plainText } from "../utils/HttpAnswer.js"
import * as RedisServer from "../utils/RedisServer.js"

/** A lock acquisition over `layer`, its failure (the test expects one). */
const failure = (
  layer: Layer.Layer<any, InvalidOptions>,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<RedisError | InvalidOptions, unknown> =>
  Effect.scoped(Lock.acquire({ id: "errors", ...options })).pipe(
    Effect.provide(layer),
    Effect.flip,
    Effect.flatMap((error) =>
      error._tag === "RedisError" || error._tag === "InvalidOptions"
        ? Effect.succeed(error)
        : Effect.fail(new Error(`unexpected ${error._tag}`))
    )
  )

describe("IoRedis errors name their cause (issue 21 §2)", () => {
  it.scopedLive("a refused connection: the deadline's error says connect ECONNREFUSED 127.0.0.1:<port>", () =>
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const error = yield* failure(IoRedis.layer({ url: `redis://127.0.0.1:${port}` }), { timeout: "1 second" })
      // was: "no answer before the deadline"
      expect(error.message).toContain(`no answer before the deadline: connect ECONNREFUSED 127.0.0.1:${port}`)
    }))

  it.scopedLive("a refused connection: ioredis giving up (maxRetriesPerRequest) reads as the refusal", () =>
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const error = yield* failure(
        IoRedis.layer({ url: `redis://127.0.0.1:${port}`, client: { maxRetriesPerRequest: 1 } })
      )
      // was: "Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" …"
      expect(error._tag).toBe("RedisError")
      expect(error.message).toContain(`connect ECONNREFUSED 127.0.0.1:${port} (no connection after 1 retries`)
      expect(error.message).not.toContain("Reached the max retries")
    }))

  it.scopedLive("a TLS handshake with a server that does not speak TLS names the TLS error", () =>
    Effect.gen(function*() {
      const port = yield* plainText
      const error = yield* failure(IoRedis.layer({ url: `rediss://127.0.0.1:${port}` }), { timeout: "1 second" })
      expect(error.message).toContain("no answer before the deadline: TLS: wrong version number")
    }))

  it.scopedLive("the password shows in no error, neither from the URL nor from the option", () =>
    Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const secret = "pa$$-in-url-7e1f"
      const layers = [
        IoRedis.layer({ url: Redacted.make(`redis://:${encodeURIComponent(secret)}@127.0.0.1:${port}`) }),
        IoRedis.layer({ url: `redis://user:${encodeURIComponent(secret)}@127.0.0.1:${port}` }),
        IoRedis.layer({ url: `redis://127.0.0.1:${port}`, password: Redacted.make(secret) })
      ]
      for (const layer of layers) {
        const error = yield* failure(layer, { timeout: "500 millis" })
        expect(error.message).toContain("ECONNREFUSED")
        for (const text of [error.message, JSON.stringify(error), String(error)]) {
          expect(text).not.toContain(secret)
          expect(text).not.toContain(encodeURIComponent(secret))
        }
      }
    }))
})

describe("IoRedis.layer checks its URL as the command line does (issue 21 §2)", () => {
  // Every URL names a port nobody listens on: on the old code each reached ioredis (and was read as a
  // socket path, or its host and port) and failed only at the deadline.
  const urls: ReadonlyArray<(port: number) => string> = [
    (port) => `http://127.0.0.1:${port}`,
    (port) => `redis//127.0.0.1:${port}`,
    (port) => `127.0.0.1:${port}`,
    (port) => `https://user:hunter2@127.0.0.1:${port}`,
    () => "  "
  ]
  for (const make of urls) {
    it.scopedLive(`${JSON.stringify(make(0))} is InvalidOptions, and the URL's text is not in it`, () =>
      Effect.gen(function*() {
        const port = yield* RedisServer.freePort
        const url = make(port)
        // was: RedisError "no answer before the deadline"
        const error = yield* failure(
          IoRedis.layer({ url: Redacted.make(url), client: { port, maxRetriesPerRequest: 0 } }),
          { timeout: "1 second" }
        )
        expect(error._tag).toBe("InvalidOptions")
        expect(error.message).toContain(`invalid option "url": expected a URL redis://host or rediss://host`)
        if (url.trim() !== "") expect(error.message).not.toContain(url)
        expect(error.message).not.toContain("hunter2")
      }))
  }
})
