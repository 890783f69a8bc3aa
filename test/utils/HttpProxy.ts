/**
 * An HTTP reverse proxy on a free loopback port that buffers event streams (issue 23 §5): requests and
 * ordinary responses pass through, but a `text/event-stream` response is held whole until it ends, as a
 * proxy without SSE support does. It closes with the scope.
 */
import { Effect, type Scope } from "effect"
import * as http from "node:http"

export interface HttpProxy {
  readonly url: string
  /** How many event streams it holds back now. */
  readonly held: () => number
}

export const buffering = (target: string): Effect.Effect<HttpProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const upstream = new URL(target)
    let held = 0
    const server = http.createServer((request, response) => {
      const forwarded = http.request({
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers
      }, (answer) => {
        if (!String(answer.headers["content-type"]).startsWith("text/event-stream")) {
          response.writeHead(answer.statusCode ?? 502, answer.headers)
          return void answer.pipe(response)
        }
        held++
        const chunks: Array<Buffer> = []
        answer.on("data", (chunk: Buffer) => void chunks.push(chunk))
        answer.on("close", () => {
          held--
          if (response.destroyed) return
          response.writeHead(answer.statusCode ?? 502, answer.headers)
          response.end(Buffer.concat(chunks))
        })
      })
      forwarded.on("error", () => response.destroy())
      // a client that goes away takes its upstream request with it
      response.on("close", () => forwarded.destroy())
      request.pipe(forwarded)
    })
    const port = yield* Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    return { url: `http://127.0.0.1:${port}`, held: () => held }
  })
