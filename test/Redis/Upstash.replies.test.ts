/**
 * Issue 22 §2: a 200 whose body is not a reply Redis could have sent. Each is a RedisError that says
 * what arrived ("malformed reply from Upstash: …", printable, truncated, never the token), and an integer
 * beyond 2^53 is an error, not a rounded number. Over real HTTP: a tiny HTTP server that answers every
 * request with one body, and the REST fixture over a real redis-server for a fence counter past 2^53.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Lock from "../../src/Lock.js"
import * as Upstash from "../../src/Redis/Upstash.js"
import { answering } from "../utils/HttpAnswer.js"
import { raw } from "../utils/live.js"
import { uniqueId } from "../utils/probe.js"
import * as RedisServer from "../utils/RedisServer.js"
import * as UpstashServer from "../utils/UpstashServer.js"

const TOKEN = "replies-token-9c7d1e"

/** One acquisition over the server at `url`: its RedisError's message. */
const failureOver = (url: string) =>
  Effect.scoped(Lock.acquire({ id: "replies", timeout: "5 seconds" })).pipe(
    Effect.provide(Upstash.layer({ url, token: Redacted.make(TOKEN), client: { retry: false } })),
    Effect.flip,
    Effect.map((error) => {
      expect(error._tag).toBe("RedisError")
      return error.message
    })
  )

/**
 * Each body, and what the error must say. Before, through @upstash/redis's auto-pipelining: "res.map is
 * not a function" ({ result: "garbage" }, {}, [1, 1e400], [1, 2^53 + 1]), "Cannot read properties of
 * undefined (reading 'error')" ([]), "Cannot read properties of null (reading 'result')" (null),
 * "Unable to parse response body: …" (not JSON).
 */
const cases: ReadonlyArray<{ readonly body: string; readonly says: ReadonlyArray<string> }> = [
  { body: `{"result":"garbage"}`, says: [`got "garbage"`] },
  { body: `{}`, says: ["{} (no result)"] },
  { body: `[]`, says: ["[] (not { result })"] },
  { body: `null`, says: ["null (not { result })"] },
  { body: `{"result":[1,1e400]}`, says: [`{"result":[1,1e400]} (a number out of range)`] },
  {
    body: `{"result":[1,9007199254740993]}`,
    says: [`{"result":[1,9007199254740993]} (an integer beyond 2^53`]
  },
  { body: `{"result":[1,2.5]}`, says: ["(a number that is not an integer)"] },
  { body: `<html>\n<h1>OK</h1>\n</html>`, says: ["<html>\\u000a<h1>OK</h1>\\u000a</html> (not JSON)"] },
  { body: "", says: ["(an empty body) (not JSON)"] },
  { body: `<p>${"x".repeat(500)}</p>`, says: ["… (507 characters) (not JSON)"] },
  { body: `{"result":"${"x".repeat(500)}"}`, says: [`got "${"x".repeat(60)}`, "…"] },
  { body: `{"result":{"echo":"${TOKEN}"}}`, says: ["<token>", "(a JSON object)"] }
]

layer(Layer.empty, { timeout: 30_000, excludeTestServices: true })(
  "malformed replies over HTTP (issue 22 §2)",
  (it) => {
    for (const { body, says } of cases) {
      it.scoped(`a 200 with ${JSON.stringify(body.slice(0, 40))} says what arrived`, () =>
        Effect.gen(function*() {
          const url = yield* answering(200, body)
          const message = yield* failureOver(url)
          expect(message).toContain("malformed reply from Upstash: ")
          for (const text of says) expect(message).toContain(text)
          expect(message).not.toContain(TOKEN)
          expect(message).not.toMatch(/is not a function|Cannot read properties|Cannot destructure/)
          expect(message.length).toBeLessThan(400)
        }))
    }

    it.scoped("a string reply that carries the token never shows it", () =>
      Effect.gen(function*() {
        const url = yield* answering(200, JSON.stringify({ result: `token is ${TOKEN}` }))
        const message = yield* failureOver(url)
        expect(message).toContain("malformed reply from Upstash")
        expect(message).toContain("token is <token>")
        expect(message).not.toContain(TOKEN)
      }))
  }
)

layer(UpstashServer.layer.pipe(Layer.provideMerge(RedisServer.layer)), { timeout: 30_000, excludeTestServices: true })(
  "a fence counter past 2^53 over the REST fixture (issue 22 §2)",
  (it) => {
    it.scoped("the next fence (2^53) is a RedisError naming it, not a rounded fence", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const client = yield* raw(server.url)
        const id = yield* uniqueId("fence-2-53")
        yield* Effect.promise(() => client.set(`effect-lock:lock:{${id}}:fence`, String(Number.MAX_SAFE_INTEGER)))
        const { token, url } = yield* UpstashServer.UpstashServer
        const error = yield* Effect.scoped(Lock.acquire({ id, lease: 2000 })).pipe(
          Effect.provide(Upstash.layer({ url, token: Redacted.make(token) })),
          Effect.flip
        )
        // was: "expected an integer reply, got 9007199254740992" (the pipeline's reply, read as a number)
        expect(error._tag).toBe("RedisError")
        expect(error.message).toContain("malformed reply from Upstash: ")
        expect(error.message).toContain("9007199254740992")
        expect(error.message).toContain("beyond 2^53")
      }))
  }
)
