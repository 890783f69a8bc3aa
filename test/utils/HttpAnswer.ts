/**
 * Tiny servers on loopback for tests of what a backend makes of an answer: an HTTP server that answers
 * every request with one status and body, and a TCP server that answers anything with a plain-text line
 * (for TLS clients: a server that does not speak TLS). Both close with the scope.
 */
import { Effect } from "effect"
import * as http from "node:http"
import * as net from "node:net"

const listening = <S extends net.Server>(server: S) =>
  Effect.acquireRelease(
    Effect.async<S>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))),
    (s) => Effect.async<void>((resume) => void s.close(() => resume(Effect.void)))
  ).pipe(Effect.map((s) => (s.address() as net.AddressInfo).port))

/** An HTTP server that answers every request with `status` and `body`; its URL. */
export const answering = (status: number, body: string, contentType = "application/json") =>
  listening(http.createServer((request, response) => {
    request.resume()
    request.on("end", () => {
      response.writeHead(status, { "content-type": contentType })
      response.end(body)
    })
  })).pipe(Effect.map((port) => `http://127.0.0.1:${port}`))

/** A TCP server that answers whatever arrives with a plain-text line (no TLS); its port. */
export const plainText = listening(net.createServer((socket) => {
  socket.on("error", () => {})
  socket.on("data", () => socket.end("-ERR this is not TLS\r\n"))
}))
