/**
 * Hears a restart of the server behind an ioredis client: its `run_id` (INFO server) changed across a
 * reconnection, so every key it held is gone (a server without persistence comes back empty). The
 * check rides on ioredis's own ready check, the first reply on every new connection, before the
 * commands that waited for the connection are sent; without a ready check (`enableReadyCheck: false`)
 * it asks INFO itself once the connection is ready. One server only: a Cluster's nodes are not followed.
 */
import { Effect, type Scope } from "effect"
import type { Redis as IORedis } from "ioredis"

const runIdOf = (info: unknown): string | undefined => {
  if (typeof info === "string") return /run_id:(\w+)/.exec(info)?.[1]
  const id = (info as { readonly run_id?: unknown } | null | undefined)?.run_id
  return typeof id === "string" ? id : undefined
}

interface Connector {
  check?: (info: unknown) => boolean
}

export const track = (client: IORedis): Effect.Effect<(listener: () => void) => void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const listeners: Array<() => void> = []
    let known: string | undefined
    const observe = (info: unknown) => {
      const id = runIdOf(info)
      if (id === undefined) return
      const before = known
      known = id
      if (before !== undefined && before !== id) { for (const listener of listeners) listener() }
    }
    const ask = () => void client.info("server").then(observe, () => {})
    const connector = (client as unknown as { readonly connector?: Connector }).connector
    const original = connector?.check
    const readyCheck = client.options.enableReadyCheck !== false && typeof original === "function"
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        if (readyCheck) {
          connector!.check = (info) => {
            observe(info)
            return original!.call(connector, info)
          }
        } else client.on("ready", ask)
        if (client.status === "ready") ask()
      }),
      () =>
        Effect.sync(() => {
          if (readyCheck) connector!.check = original
          else client.off("ready", ask)
        })
    )
    return (listener) => void listeners.push(listener)
  })
