/**
 * Upstash's subscribe endpoint read directly with `fetch` (web APIs only, so it runs on edge runtimes):
 * `POST <url>/subscribe/<channel>` with `Accept: text/event-stream`, then `data: subscribe,<channel>,<n>`
 * and `data: message,<channel>,<payload>` lines — what `@upstash/redis`'s `subscribe` sends and reads.
 * Used by the layer that owns its URL and token, because it can tell more than that client does:
 *
 * - payloads are taken after the known channel name, as sent (never JSON-parsed, commas kept);
 * - a stream that ends, or breaks, after it was confirmed is reported (`error`), so it is reopened,
 *   where `@upstash/redis` 1.39 stops reading without a word.
 */
import { Redacted } from "effect"
import type { Subscription, SubscriptionEvents } from "./upstashStreams.js"

/** What an error response says (`{ error }`), else its status; never the request. */
const failure = async (response: Response): Promise<Error> => {
  const text = await response.text().catch(() => "")
  try {
    const body = JSON.parse(text) as { readonly error?: unknown }
    if (typeof body.error === "string") return new Error(body.error)
  } catch {
    // not JSON
  }
  return new Error(`HTTP ${response.status} ${response.statusText}`.trim())
}

/** Characters that would end or reshape the path; the rest is left as `@upstash/redis` leaves it. */
const pathSegment = (channel: string) => channel.replace(/[%/?#\\\s]/g, (c) => encodeURIComponent(c))

export const subscriber = (url: string, token: Redacted.Redacted) => (channel: string): Subscription => {
  const controller = new AbortController()
  const listeners: { [K in keyof SubscriptionEvents]: Set<(event: SubscriptionEvents[K]) => void> } = {
    subscribe: new Set(),
    message: new Set(),
    error: new Set()
  }
  const emit = <K extends keyof SubscriptionEvents>(type: K, event: SubscriptionEvents[K]) => {
    for (const listener of listeners[type]) listener(event)
  }
  const onData = (data: string) => {
    if (data.startsWith(`message,${channel},`)) emit("message", { channel, message: data.slice(channel.length + 9) })
    else if (data.startsWith(`subscribe,${channel},`)) emit("subscribe", Number(data.slice(channel.length + 11)))
  }

  const read = async () => {
    const response = await fetch(`${url.replace(/\/$/, "")}/subscribe/${pathSegment(channel)}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${Redacted.value(token)}`,
        accept: "text/event-stream",
        "cache-control": "no-cache",
        "content-type": "application/json"
      },
      body: "[]",
      signal: controller.signal
    })
    if (!response.ok || response.body === null) throw await failure(response)
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ""
    while (true) {
      const { done, value } = await reader.read()
      if (done) throw new Error("the event stream ended")
      buffer += decoder.decode(value, { stream: true })
      const lines = buffer.split("\n")
      buffer = lines.pop() ?? ""
      for (const line of lines) if (line.startsWith("data: ")) onData(line.slice(6).replace(/\r$/, ""))
    }
  }
  // Started on the next tick, once the caller has added its listeners.
  queueMicrotask(() => {
    read().catch((error: unknown) => {
      if (!controller.signal.aborted) emit("error", error instanceof Error ? error : new Error(String(error)))
    })
  })

  return {
    on: (type, listener) => void listeners[type].add(listener),
    unsubscribe: () => Promise.resolve(controller.abort())
  }
}
