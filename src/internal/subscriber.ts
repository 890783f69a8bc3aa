/**
 * One subscriber connection shared by every waiter of a client: channels are subscribed on demand,
 * reference-counted by listener, and linger after the last listener leaves (so a busy lock does not
 * send SUBSCRIBE/UNSUBSCRIBE for every wait). Backends supply the raw connection.
 */
import { Deferred, Duration, Effect, Fiber, FiberId, type Scope } from "effect"
import type { RedisError } from "../LockError.js"
import type * as Redis from "../Redis.js"

export interface Connection {
  /** Sends SUBSCRIBE and resolves on the server's confirmation. */
  readonly subscribe: (channel: string) => Effect.Effect<void, RedisError>
  readonly unsubscribe: (channel: string) => Effect.Effect<void>
}

interface Channel {
  readonly listeners: Set<(message: string) => void>
  state: "idle" | "subscribing" | "active"
  confirmed: Deferred.Deferred<void, RedisError> | undefined
  linger: Fiber.RuntimeFiber<void> | undefined
}

export const DEFAULT_LINGER = Duration.minutes(1)

/**
 * Builds the subscriber over a connection. Call `dispatch` for every message the connection receives.
 */
export const make = (connection: Connection, linger: Duration.DurationInput = DEFAULT_LINGER): Effect.Effect<
  { readonly subscriber: Redis.Subscriber; readonly dispatch: (channel: string, message: string) => void },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const channels = new Map<string, Channel>()
    const channelOf = (name: string): Channel => {
      let channel = channels.get(name)
      if (channel === undefined) {
        channel = { listeners: new Set(), state: "idle", confirmed: undefined, linger: undefined }
        channels.set(name, channel)
      }
      return channel
    }

    const stopLinger = (channel: Channel) =>
      channel.linger === undefined ? Effect.void : Effect.suspend(() => {
        const fiber = channel.linger!
        channel.linger = undefined
        return Fiber.interruptFork(fiber)
      })

    // After the last listener leaves, keep the subscription a while, then drop it if still unused.
    const startLinger = (name: string, channel: Channel) =>
      Effect.sleep(linger).pipe(
        Effect.zipRight(Effect.suspend(() => {
          if (channel.listeners.size > 0 || channel.state !== "active") return Effect.void
          channels.delete(name)
          return connection.unsubscribe(name)
        })),
        Effect.interruptible,
        Effect.forkIn(scope),
        Effect.tap((fiber) => Effect.sync(() => void (channel.linger = fiber)))
      )

    const subscriber: Redis.Subscriber = {
      listen: (name, listener) =>
        Effect.gen(function*() {
          const channel = channelOf(name)
          yield* stopLinger(channel)
          channel.listeners.add(listener)
          return {
            active: channel.state === "active",
            remove: Effect.suspend(() => {
              channel.listeners.delete(listener)
              return channel.listeners.size === 0 && channel.state === "active"
                ? Effect.asVoid(startLinger(name, channel))
                : Effect.void
            })
          }
        }),
      subscribe: (name) =>
        Effect.suspend(() => {
          const channel = channelOf(name)
          if (channel.state === "active") return Effect.void
          if (channel.state === "subscribing") return Deferred.await(channel.confirmed!)
          const confirmed = Deferred.unsafeMake<void, RedisError>(FiberId.none)
          channel.state = "subscribing"
          channel.confirmed = confirmed
          return connection.subscribe(name).pipe(
            Effect.tap(() => Effect.sync(() => void (channel.state = "active"))),
            Effect.tapError(() => Effect.sync(() => void (channel.state = "idle"))),
            Effect.exit,
            Effect.flatMap((exit) => Effect.zipRight(Deferred.done(confirmed, exit), exit))
          )
        })
    }

    const dispatch = (name: string, message: string) => {
      const channel = channels.get(name)
      if (channel !== undefined) for (const listener of channel.listeners) listener(message)
    }

    return { subscriber, dispatch }
  })
