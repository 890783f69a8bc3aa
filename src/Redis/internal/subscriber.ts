/**
 * One subscriber connection shared by every waiter of a client: channels are subscribed on demand and
 * kept while in use; one sweep, every `linger`, unsubscribes channels nobody has listened on since the
 * previous sweep (so a busy lock never churns SUBSCRIBE, and an idle one does not stay subscribed).
 * Backends supply the raw connection.
 */
import { Deferred, Duration, Effect, Exit, FiberId, Schedule, type Scope } from "effect"
import type { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

export interface Connection {
  /** Sends SUBSCRIBE and resolves on the server's confirmation. */
  readonly subscribe: (channel: string) => Effect.Effect<void, RedisError>
  readonly unsubscribe: (channel: string) => Effect.Effect<void>
}

interface Channel {
  readonly listeners: Set<(message: string) => void>
  state: "idle" | "subscribing" | "active"
  confirmed: Deferred.Deferred<void, RedisError> | undefined
  /** Whether a listener came since the last sweep. */
  used: boolean
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
    const channels = new Map<string, Channel>()
    const channelOf = (name: string): Channel => {
      let channel = channels.get(name)
      if (channel === undefined) {
        channel = { listeners: new Set(), state: "idle", confirmed: undefined, used: true }
        channels.set(name, channel)
      }
      return channel
    }

    yield* Effect.suspend(() => {
      const idle: Array<string> = []
      for (const [name, channel] of channels) {
        if (channel.listeners.size === 0 && !channel.used && channel.state === "active") idle.push(name)
        channel.used = false
      }
      for (const name of idle) channels.delete(name)
      return Effect.forEach(idle, connection.unsubscribe, { discard: true })
    }).pipe(Effect.repeat(Schedule.spaced(linger)), Effect.interruptible, Effect.forkScoped)

    const subscriber: Redis.Subscriber = {
      isActive: (name) => channels.get(name)?.state === "active",
      listen: (name, listener) =>
        Effect.sync(() => {
          const channel = channelOf(name)
          channel.used = true
          channel.listeners.add(listener)
          return {
            active: channel.state === "active",
            remove: Effect.sync(() => void channel.listeners.delete(listener))
          }
        }),
      subscribe: (name) =>
        Effect.suspend(() => {
          const channel = channelOf(name)
          channel.used = true
          if (channel.state === "active") return Effect.void
          if (channel.state === "subscribing") return Deferred.await(channel.confirmed!)
          const confirmed = Deferred.unsafeMake<void, RedisError>(FiberId.none)
          channel.state = "subscribing"
          channel.confirmed = confirmed
          return connection.subscribe(name).pipe(
            Effect.exit,
            Effect.flatMap((exit) => {
              channel.state = Exit.isSuccess(exit) ? "active" : "idle"
              return Effect.zipRight(Deferred.done(confirmed, exit), exit)
            })
          )
        })
    }

    const dispatch = (name: string, message: string) => {
      const channel = channels.get(name)
      if (channel !== undefined) for (const listener of channel.listeners) listener(message)
    }

    return { subscriber, dispatch }
  })
