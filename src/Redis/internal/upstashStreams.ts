/**
 * Wake-ups for the Upstash backend over Server-Sent Events: one stream per channel in use, opened with
 * the client's `subscribe` (`@upstash/redis` ≥ 1.35 sends `POST /subscribe/<channel>` with
 * `Accept: text/event-stream` and reads `data: subscribe,<channel>,<count>` and
 * `data: message,<channel>,<payload>` lines). The shared subscriber (`./subscriber.ts`) decides when a
 * channel is opened and closed; this module maps its SUBSCRIBE/UNSUBSCRIBE onto streams:
 *
 * - a stream is confirmed (the channel "active") by its `subscribe` event, sent once Redis has the
 *   subscription, not by the HTTP response;
 * - an `error` before that fails the SUBSCRIBE; after it, the channel is lost and opened again;
 * - closing is aborting the request (`unsubscribe()`).
 *
 * `@upstash/redis` splits a data line at its first two commas, so a channel name with a comma would
 * shift part of itself into the payload: the payload is rebuilt from the known channel name. With the
 * client's automatic deserialization on (its default), a payload that looks like JSON arrives parsed
 * and is turned back into text as well as it can be (`"1e5"` comes back as `"100000"`): a waiter that
 * misses its wake-up that way is woken by its periodic re-check instead. The layer that makes its own
 * client turns deserialization off for streams.
 *
 * Known limit of `@upstash/redis` 1.39: a stream the server ends after it was confirmed fires no
 * event, so it cannot be told from a quiet one; waiters' periodic re-checks cover that case.
 */
import { Effect, type Scope } from "effect"
import { RedisError } from "../../LockError.js"
import type * as Redis from "../../Redis.js"
import * as Subscriber from "./subscriber.js"

/** One channel's stream, as `@upstash/redis`'s `redis.subscribe(channel)` returns it. */
export interface Subscription {
  on<T extends keyof SubscriptionEvents>(type: T, listener: (event: SubscriptionEvents[T]) => void): void
  unsubscribe(): Promise<void>
}

/** The events of a {@link Subscription} this backend listens to. */
export interface SubscriptionEvents {
  readonly subscribe: number
  readonly message: { readonly channel: string; readonly message: unknown }
  readonly error: Error
}

const text = (message: unknown): string => (typeof message === "string" ? message : JSON.stringify(message) ?? "")

export const make = (
  subscribe: (channel: string) => Subscription,
  describe: (error: unknown) => string,
  options: Subscriber.Options = {}
): Effect.Effect<Redis.Subscriber, never, Scope.Scope> =>
  Effect.gen(function*() {
    const streams = new Map<string, Subscription>()
    const close = (channel: string, stream: Subscription) => {
      if (streams.get(channel) === stream) streams.delete(channel)
      stream.unsubscribe().catch(() => {})
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const [channel, stream] of streams) close(channel, stream)
      })
    )

    const open = (channel: string) =>
      Effect.async<void, RedisError>((resume) => {
        const previous = streams.get(channel)
        if (previous !== undefined) close(channel, previous)
        let stream: Subscription
        try {
          stream = subscribe(channel)
        } catch (error) {
          return resume(Effect.fail(new RedisError({ operation: "subscribe", detail: describe(error) })))
        }
        let confirmed = false
        const current = () => streams.get(channel) === stream
        streams.set(channel, stream)
        stream.on("subscribe", () => {
          if (confirmed || !current()) return
          confirmed = true
          resume(Effect.void)
        })
        stream.on("message", (event) => {
          if (!current()) return
          const raw = `${event.channel},${text(event.message)}`
          made.dispatch(channel, raw.startsWith(`${channel},`) ? raw.slice(channel.length + 1) : text(event.message))
        })
        stream.on("error", (error) => {
          if (!current()) return
          close(channel, stream)
          if (confirmed) return made.lost(channel)
          confirmed = true
          resume(Effect.fail(new RedisError({ operation: "subscribe", detail: describe(error) })))
        })
        // Interrupted before the confirmation (the subscriber's bound): this stream is given up.
        return Effect.sync(() => {
          if (!confirmed) close(channel, stream)
        })
      })

    const made: Subscriber.Made = yield* Subscriber.make({
      subscribe: open,
      unsubscribe: (channel) =>
        Effect.sync(() => {
          const stream = streams.get(channel)
          if (stream !== undefined) close(channel, stream)
        })
    }, options)
    return made.subscriber
  })
