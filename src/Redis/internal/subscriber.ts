/**
 * One subscriber connection shared by every waiter of a client: channels are subscribed on demand and
 * kept while in use; one sweep, every `linger`, unsubscribes channels nobody has used since the
 * previous sweep (so a busy lock never churns SUBSCRIBE, and an idle one does not stay subscribed).
 * Backends supply the raw connection and say when it drops and comes back.
 *
 * How it stays true to the server:
 * - The round trips (SUBSCRIBE, UNSUBSCRIBE) run in fibers of the subscriber's own scope, never in a
 *   caller's: a caller that is interrupted only stops waiting, and the channel still ends up "active" or
 *   "idle". Each round trip is bounded by `timeout`, so nobody waits for a confirmation forever.
 * - Round trips of one channel are serialized (one permit per channel), so an UNSUBSCRIBE of the sweep
 *   can never overtake (or be overtaken by) a SUBSCRIBE of the same channel; the sweep checks again,
 *   under the permit, that nobody came since it chose the channel, and marks the channel
 *   "unsubscribing" (not active) before it sends anything.
 * - A dropped connection makes every channel "idle" at once (isActive is false until the server
 *   confirms again); when it is back, every channel with listeners is subscribed again. One channel
 *   whose own stream ended (`lost`) is inactive at once too, and opened again after a backoff. A
 *   SUBSCRIBE that fails for a channel with listeners is tried again in the background (100 ms, doubling
 *   up to 5 s) while it has listeners.
 */
import { Deferred, Duration, Effect, Exit, FiberId, FiberSet, type Scope } from "effect"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"

export interface Connection {
  /** Sends SUBSCRIBE and resolves on the server's confirmation. */
  readonly subscribe: (channel: string) => Effect.Effect<void, RedisError>
  /** Sends UNSUBSCRIBE; a failure is ignored (the channel is forgotten all the same). */
  readonly unsubscribe: (channel: string) => Effect.Effect<void, RedisError>
}

interface Channel {
  readonly name: string
  readonly listeners: Set<(message: string) => void>
  /** Serializes this channel's round trips. */
  readonly permit: Effect.Semaphore
  /** "active" only between the server's confirmation and the next UNSUBSCRIBE or lost connection. */
  state: "idle" | "subscribing" | "active" | "unsubscribing"
  /** The SUBSCRIBE asked for and not finished yet, shared by every caller that waits for it. */
  pending: Deferred.Deferred<void, RedisError> | undefined
  /** Whether the channel was used (listened to, left, subscribed) since the last sweep. */
  used: boolean
  /** SUBSCRIBEs failed in a row, for the backoff of retries in the background. */
  failures: number
}

export const DEFAULT_LINGER = Duration.minutes(1)
export const DEFAULT_TIMEOUT = Duration.seconds(10)

export interface Options {
  /** How long an unused channel stays subscribed (at least one, at most two sweeps). */
  readonly linger?: Duration.DurationInput | undefined
  /** The longest wait for the server to confirm a SUBSCRIBE (or UNSUBSCRIBE); then `RedisError`. */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface Made {
  readonly subscriber: Redis.Subscriber
  /** To be called with every message the connection receives. */
  readonly dispatch: (channel: string, message: string) => void
  /** To be called when the connection is lost: the server has forgotten every subscription. */
  readonly disconnected: () => void
  /** To be called when the connection is (re)established: channels with listeners are subscribed again. */
  readonly connected: () => void
  /** To be called when one channel's subscription ended on its own (a backend with a stream per channel). */
  readonly lost: (channel: string) => void
}

/**
 * Builds the subscriber over a connection. Round trips and the sweep run in fibers of the scope.
 */
export const make = (connection: Connection, options: Options = {}): Effect.Effect<Made, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeout = Duration.decode(options.timeout ?? DEFAULT_TIMEOUT)
    const channels = new Map<string, Channel>()
    /** Bumped on every lost connection: a confirmation from before it proves nothing. */
    let generation = 0
    const run = yield* FiberSet.makeRuntime<never, void, never>()

    const channelOf = (name: string): Channel => {
      let channel = channels.get(name)
      if (channel === undefined) {
        channel = {
          name,
          listeners: new Set(),
          permit: Effect.unsafeMakeSemaphore(1),
          state: "idle",
          pending: undefined,
          used: true,
          failures: 0
        }
        channels.set(name, channel)
      }
      return channel
    }

    const bounded = (operation: string, name: string, effect: Effect.Effect<void, RedisError>) =>
      Effect.timeoutFail(effect, {
        duration: timeout,
        onTimeout: () =>
          new RedisError({
            operation,
            detail: `no confirmation for channel ${name} within ${Duration.format(timeout)}`
          })
      })

    /** The SUBSCRIBE of a channel, started if none is on its way; its outcome, whoever waits or not. */
    const ensure = (channel: Channel): Deferred.Deferred<void, RedisError> => {
      if (channel.pending !== undefined) return channel.pending
      const done = Deferred.unsafeMake<void, RedisError>(FiberId.none)
      channel.pending = done
      const roundTrip = Effect.suspend(() => {
        if (channel.state === "active") return Effect.void
        const since = generation
        channel.state = "subscribing"
        return bounded("subscribe", channel.name, connection.subscribe(channel.name)).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              channel.state = Exit.isSuccess(exit) && since === generation ? "active" : "idle"
            })
          )
        )
      })
      run(
        channel.permit.withPermits(1)(roundTrip).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (channel.pending === done) channel.pending = undefined
              Deferred.unsafeDone(
                done,
                Exit.isInterrupted(exit)
                  ? Exit.fail(new RedisError({ operation: "subscribe", detail: "the subscriber was closed" }))
                  : exit
              )
              if (Exit.isSuccess(exit)) channel.failures = 0
              else if (!Exit.isInterrupted(exit)) retryLater(channel)
            })
          ),
          Effect.ignore
        )
      )
      return done
    }

    /**
     * After a failed SUBSCRIBE, a channel that still has listeners is tried again in the background,
     * 100 ms after the first failure, doubling up to 5 s, for as long as it has listeners.
     */
    const retryLater = (channel: Channel): void => {
      if (channel.listeners.size === 0) return
      const delay = Math.min(100 * 2 ** channel.failures, 5000)
      channel.failures++
      run(
        Effect.sleep(delay).pipe(
          Effect.zipRight(
            Effect.suspend(() =>
              channel.listeners.size > 0 && channel.state !== "active" && channels.get(channel.name) === channel
                ? Effect.ignore(Deferred.await(ensure(channel)))
                : Effect.void
            )
          )
        )
      )
    }

    const unused = (channel: Channel) => channel.listeners.size === 0 && !channel.used && channel.pending === undefined

    /** Unsubscribes a channel chosen by the sweep, unless someone came for it meanwhile. */
    const release = (channel: Channel) =>
      channel.permit.withPermits(1)(Effect.suspend(() => {
        if (!unused(channel) || channels.get(channel.name) !== channel) return Effect.void
        channel.state = "unsubscribing"
        return bounded("unsubscribe", channel.name, connection.unsubscribe(channel.name)).pipe(
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => {
            if (unused(channel) && channels.get(channel.name) === channel) channels.delete(channel.name)
            else channel.state = "idle" // someone came: their SUBSCRIBE is queued behind this permit
          }))
        )
      }))

    // Channels in any state are swept once unused for a whole sweep: an "idle" one too, since a
    // SUBSCRIBE that timed out here may still have reached the server.
    yield* Effect.sync(() => {
      for (const channel of channels.values()) {
        if (unused(channel) && channel.state !== "unsubscribing") run(release(channel))
        channel.used = false
      }
    }).pipe(
      Effect.delay(options.linger ?? DEFAULT_LINGER),
      Effect.forever,
      Effect.interruptible,
      Effect.forkScoped
    )

    const subscriber: Redis.Subscriber = {
      isActive: (name) => channels.get(name)?.state === "active",
      listen: (name, listener) =>
        Effect.sync(() => {
          const channel = channelOf(name)
          channel.used = true
          channel.listeners.add(listener)
          return {
            active: channel.state === "active",
            remove: Effect.sync(() => {
              channel.used = true // linger from the last use, not from the last listen
              channel.listeners.delete(listener)
            })
          }
        }),
      subscribe: (name) =>
        Effect.suspend(() => {
          const channel = channelOf(name)
          channel.used = true
          return channel.state === "active" && channel.pending === undefined
            ? Effect.void
            : Deferred.await(ensure(channel))
        })
    }

    return {
      subscriber,
      dispatch: (name, message) => {
        const channel = channels.get(name)
        if (channel !== undefined) { for (const listener of channel.listeners) listener(message) }
      },
      disconnected: () => {
        generation++
        for (const channel of channels.values()) if (channel.state !== "unsubscribing") channel.state = "idle"
      },
      connected: () => {
        for (const channel of channels.values()) {
          if (channel.listeners.size > 0 && channel.state !== "active") {
            run(Effect.ignore(Deferred.await(ensure(channel))))
          }
        }
      },
      lost: (name) => {
        const channel = channels.get(name)
        if (channel === undefined || channel.state !== "active") return
        channel.state = "idle"
        // Opened again after the backoff (100 ms at first), so a server that keeps ending streams right
        // after confirming them is not asked again in a tight loop.
        retryLater(channel)
      }
    }
  })
