/**
 * Issue 21 §2 over HTTP: a RedisError names the transport's cause (HTTP status, a refused connection, a
 * TLS error) and never the token; `Upstash.layer` checks its URL and token when it is built (an empty URL
 * is InvalidOptions, with nothing printed), and takes the token as a plain string as well as Redacted.
 * Real servers on loopback: HTTP servers answering 500/401, the REST fixture over a real redis-server, a
 * port nobody listens on, a TCP server that does not speak TLS.
 */
import { expect, layer } from "@effect/vitest"
import { type Duration, Effect, Layer, Redacted } from "effect"
import { afterEach, vi } from "vitest"
import * as Lock from "../../src/Lock.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { answering, plainText } from "../utils/HttpAnswer.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const SECRET = "errors-token-5e1f0a"

/** One acquisition over `backend`: its failure. */
const failure = (backend: Layer.Layer<any, any>, timeout: Duration.DurationInput = "5 seconds") =>
  Effect.scoped(Lock.acquire({ id: "errors", timeout })).pipe(Effect.provide(backend), Effect.flip)

const over = (url: string, options: Partial<Upstash.Options> = {}) =>
  Upstash.layer({ url, token: Redacted.make(SECRET), client: { retry: false }, ...options })

const servers = UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer))

afterEach(() => void vi.restoreAllMocks())

layer(servers, { timeout: 30_000, excludeTestServices: true })(
  "Upstash errors name their cause (issue 21 §2)",
  (it) => {
    const statuses = [
      { status: 500, body: "<html><body>boom</body></html>", says: "HTTP 500 Internal Server Error: <html><body>boom" },
      {
        status: 500,
        body: JSON.stringify({ error: "ERR internal" }),
        says: "HTTP 500 Internal Server Error: ERR internal"
      },
      {
        status: 401,
        body: JSON.stringify({ error: "WRONGPASS invalid or missing auth token" }),
        says: "HTTP 401 Unauthorized: WRONGPASS invalid or missing auth token"
      },
      { status: 502, body: `<h1>502 for ${SECRET}</h1>`, says: "HTTP 502 Bad Gateway: <h1>502 for <token></h1>" }
    ]
    for (const { body, says, status } of statuses) {
      it.scoped(`an HTTP ${status} (${body.slice(0, 24)}…) names its status`, () =>
        Effect.gen(function*() {
          const url = yield* answering(status, body, body.startsWith("{") ? "application/json" : "text/html")
          const error = yield* failure(over(url))
          // was: "Unable to parse response body: <html>…", "ERR internal", "WRONGPASS …" (no status)
          expect(error._tag).toBe("RedisError")
          expect(error.message).toContain(says)
          expect(JSON.stringify(error)).not.toContain(SECRET)
        }))
    }

    it.scoped("a wrong token on the REST fixture is HTTP 401 with Upstash's own words", () =>
      Effect.gen(function*() {
        const { url } = yield* UpstashServer.UpstashServer
        const error = yield* failure(over(url))
        expect(error.message).toContain("HTTP 401 Unauthorized: WRONGPASS invalid or missing auth token")
        expect(JSON.stringify(error)).not.toContain(SECRET)
      }))

    it.scoped("a refused connection says connect ECONNREFUSED, at once or at the deadline while retrying", () =>
      Effect.gen(function*() {
        const port = yield* RedisServer.freePort
        const url = `http://127.0.0.1:${port}`
        const once = yield* failure(over(url))
        // was: "fetch failed: connect ECONNREFUSED …" after @upstash/redis's retries; "no answer before the
        // deadline" when the deadline came first
        expect(once.message).toContain(`failed: connect ECONNREFUSED 127.0.0.1:${port}`)
        const retrying = yield* failure(
          over(url, { client: { retry: { retries: 1000, backoff: () => 50 } } }),
          "1 second"
        )
        expect(retrying.message).toContain(`no answer before the deadline: connect ECONNREFUSED 127.0.0.1:${port}`)
      }))

    it.scoped("https:// to a server that does not speak TLS names the TLS error", () =>
      Effect.gen(function*() {
        const port = yield* plainText
        const error = yield* failure(over(`https://127.0.0.1:${port}`))
        expect(error.message).toContain("TLS: wrong version number")
      }))
  }
)

layer(servers, { timeout: 30_000, excludeTestServices: true })(
  "Upstash.layer checks its options (issue 21 §2)",
  (it) => {
    it.scoped("url: \"\" is InvalidOptions at once, and nothing is printed", () =>
      Effect.gen(function*() {
        const printed = [vi.spyOn(console, "warn"), vi.spyOn(console, "log"), vi.spyOn(console, "error")]
        const error = yield* failure(Upstash.layer({ url: "", token: Redacted.make(SECRET), timeout: "3 seconds" }))
        // was: "[Upstash Redis] The 'url' property is missing … run: curl -X POST https://upstash.com/start-redis"
        // on the console, then RedisError "no answer within 3s"
        expect(error._tag).toBe("InvalidOptions")
        expect(error.message).toBe(
          "invalid option \"url\": expected a URL http://host or https://host, received an empty string"
        )
        for (const spy of printed) expect(spy).not.toHaveBeenCalled()
      }))

    for (const url of ["not a url", "redis://127.0.0.1:6379", "https://", "ftp://example.invalid"]) {
      it.scoped(`url: ${JSON.stringify(url)} is InvalidOptions`, () =>
        Effect.gen(function*() {
          const error = yield* failure(Upstash.layer({ url, token: Redacted.make(SECRET) }))
          expect(error._tag).toBe("InvalidOptions")
          expect(error.message).toContain("invalid option \"url\"")
        }))
    }

    for (const token of ["", " ", "line\nbreak", Redacted.make("")]) {
      it.scoped(`token: ${JSON.stringify(Redacted.isRedacted(token) ? "Redacted(\"\")" : token)} is InvalidOptions`, () =>
        Effect.gen(function*() {
          const { url } = yield* UpstashServer.UpstashServer
          const error = yield* failure(Upstash.layer({ url, token }))
          expect(error._tag).toBe("InvalidOptions")
          expect(error.message).toContain("invalid option \"token\"")
          if (typeof token === "string" && token.trim() !== "") expect(error.message).not.toContain(token)
        }))
    }

    it.scoped("the token may be a plain string, like IoRedis.layer's url", () =>
      Effect.gen(function*() {
        const { token, url } = yield* UpstashServer.UpstashServer
        const id = yield* uniqueId("string-token")
        const fence = yield* Effect.scoped(Effect.map(Lock.acquire({ id }), (lease) => lease.fence)).pipe(
          Effect.provide(Upstash.layer({ url, token }))
        )
        expect(fence).toBeGreaterThan(0)
      }))
  }
)
