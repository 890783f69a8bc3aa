/**
 * A TCP proxy between clients and a loopback Redis, for fault injection: it can freeze all traffic
 * (a network stall: bytes are held, not dropped, and flow again on thaw) and add latency to every chunk.
 */
import { Effect, type Scope } from "effect"
import * as net from "node:net"

export interface Proxy {
  readonly port: number
  readonly url: string
  /** Hold every byte in both directions until `thaw`. */
  readonly freeze: Effect.Effect<void>
  readonly thaw: Effect.Effect<void>
  /** Delay every chunk by `ms` in each direction (0 to stop). */
  readonly setLatency: (ms: number) => Effect.Effect<void>
}

interface Pipe {
  readonly from: net.Socket
  readonly to: net.Socket
  readonly held: Array<Buffer>
}

/** Starts a proxy to `target` on a free loopback port; it closes with the scope. */
export const start = (
  target: { readonly host: string; readonly port: number }
): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    let frozen = false
    let latency = 0
    const pipes = new Set<Pipe>()
    const sockets = new Set<net.Socket>()

    const forward = (pipe: Pipe, chunk: Buffer) => {
      if (frozen) return void pipe.held.push(chunk)
      if (latency > 0) setTimeout(() => pipe.to.destroyed || pipe.to.write(chunk), latency)
      else if (!pipe.to.destroyed) pipe.to.write(chunk)
    }

    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.on("close", () => {
          sockets.delete(socket)
          client.destroy()
          upstream.destroy()
        })
      }
      const up: Pipe = { from: client, to: upstream, held: [] }
      const down: Pipe = { from: upstream, to: client, held: [] }
      pipes.add(up).add(down)
      client.on("data", (chunk: Buffer) => forward(up, chunk))
      upstream.on("data", (chunk: Buffer) => forward(down, chunk))
      client.on("close", () => pipes.delete(up).valueOf() && pipes.delete(down))
    })

    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )

    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      freeze: Effect.sync(() => {
        frozen = true
      }),
      thaw: Effect.sync(() => {
        frozen = false
        for (const pipe of pipes) {
          for (const chunk of pipe.held.splice(0)) forward(pipe, chunk)
        }
      }),
      setLatency: (ms) =>
        Effect.sync(() => {
          latency = ms
        })
    }
  })
