/**
 * Upstash's REST API read directly with `fetch` (web APIs only, so it runs on edge runtimes): one command
 * is `POST <url>` with the JSON array `["EVALSHA", sha, numberOfKeys, ...keysAndArgs]` and
 * `Authorization: Bearer <token>`, answered `{ result }` or, when Redis refused it, `{ error }` (HTTP
 * 400) — what `@upstash/redis` sends and reads. The layer that owns its URL and token uses this instead of
 * that client, because it sees what arrived:
 *
 * - an HTTP error names its status (`HTTP 401 Unauthorized: WRONGPASS …`, `HTTP 502 Bad Gateway: <html>…`);
 * - a body that is not `{ result }` with a reply Redis could have sent (nil, strings, safe integers and
 *   arrays of them) is `malformed reply from Upstash: <the body, printable, truncated>`, with why: an
 *   integer beyond 2^53 is an error, not a rounded number;
 * - a network failure names its cause (`connect ECONNREFUSED 127.0.0.1:8080`, a TLS error), and is the
 *   connection's fault (see `./request.ts`) until an answer comes;
 * - the request is dropped (aborted) when its caller stops waiting.
 *
 * The token never shows: it is cut out of every text. Replies are asked for as plain JSON (no base64):
 * every reply of effect-lock's scripts is UTF-8. Failed requests are tried again as `@upstash/redis`
 * does (`retry`: 5 more times, `exp(n) × 50 ms` apart, network failures only), waiting on the service's
 * timer; `readYourWrites` sends back the last `upstash-sync-token`.
 */
import { Redacted } from "effect"
import type * as Redis from "../../Redis.js"
import { describeCause } from "./cause.js"
import { redactor } from "./connection.js"

export interface Options {
  /** The REST URL, already checked. */
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly retry?: false | { readonly retries?: number; readonly backoff?: (retryCount: number) => number } | undefined
  readonly readYourWrites?: boolean | undefined
}

/** A failed request: `redis` when Redis refused the command (`{ error }`), else a fault of the way there. */
export class RestError extends Error {
  constructor(readonly kind: "redis" | "http" | "malformed" | "network", message: string) {
    super(message)
  }
}

export interface Rest {
  /** Sends one command; its reply, or a `RestError`. */
  readonly send: (command: ReadonlyArray<string>, signal?: AbortSignal) => Promise<Redis.Reply>
  /** The last network failure, until an answer comes. */
  readonly fault: () => string | undefined
  /** A failure's text, without the token. */
  readonly describe: (error: unknown) => string
  /** Cuts the token out of a text. */
  readonly redact: (text: string) => string
}

/** Why `value` is not a reply Redis could send to a script's caller (undefined when it is one). */
export const malformed = (value: unknown): string | undefined => {
  if (value === null || typeof value === "string") return undefined
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return undefined
    if (!Number.isFinite(value)) return "a number out of range"
    return Number.isInteger(value)
      ? "an integer beyond 2^53, which JavaScript cannot hold exactly"
      : "a number that is not an integer"
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      const why = malformed(item)
      if (why !== undefined) return why
    }
    return undefined
  }
  return value === undefined ? "no result" : `a ${typeof value === "object" ? "JSON object" : typeof value}`
}

/** A decoded value as text, numbers as they are (`Infinity`, `9007199254740992`; JSON would write `null`). */
export const render = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(render).join(",")}]`
  if (typeof value === "number" || value === undefined) return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return typeof value
  }
}

const EXCERPT = 120

/** Printable (control characters escaped) and at most {@link EXCERPT} characters. */
export const excerpt = (text: string): string => {
  if (text === "") return "(an empty body)"
  const printable = text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )
  return printable.length > EXCERPT ? `${printable.slice(0, EXCERPT)}… (${text.length} characters)` : printable
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A network failure's cause (`fetch failed` says nothing; its `cause` does). */
const networkCause = (error: unknown): string =>
  describeCause(error instanceof Error && error.cause !== undefined ? error.cause : error)

export const make = (options: Options, timer: Redis.Timer): Rest => {
  const token = Redacted.value(options.token)
  const scrub = redactor([token], "<token>")
  const retries = options.retry === false ? 0 : options.retry?.retries ?? 5
  const backoff = (options.retry === false ? undefined : options.retry?.backoff) ?? ((n) => Math.exp(n) * 50)
  const readYourWrites = options.readYourWrites ?? true
  let syncToken = ""
  let fault: string | undefined

  const wait = (ms: number, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        cancel()
        reject(signal!.reason)
      }
      const cancel = timer.schedule(timer.now() + ms, () => {
        signal?.removeEventListener("abort", onAbort)
        resolve()
      })
      signal?.addEventListener("abort", onAbort, { once: true })
    })

  const post = async (body: string, signal: AbortSignal | undefined): Promise<Response> => {
    for (let attempt = 0;; attempt++) {
      try {
        return await fetch(options.url, {
          method: "POST",
          headers: {
            authorization: `Bearer ${token}`,
            "content-type": "application/json",
            ...(readYourWrites && syncToken !== "" ? { "upstash-sync-token": syncToken } : {})
          },
          body,
          ...(signal === undefined ? {} : { signal })
        })
      } catch (error) {
        if (signal?.aborted) throw error
        fault = scrub(networkCause(error))
        if (attempt >= retries) throw new RestError("network", fault)
        await wait(backoff(attempt), signal)
      }
    }
  }

  const send = async (command: ReadonlyArray<string>, signal?: AbortSignal): Promise<Redis.Reply> => {
    const response = await post(JSON.stringify(command), signal)
    let text: string
    try {
      text = await response.text()
    } catch (error) {
      if (signal?.aborted) throw error
      throw new RestError("network", fault = scrub(networkCause(error)))
    }
    fault = undefined
    if (readYourWrites) syncToken = response.headers.get("upstash-sync-token") ?? syncToken
    let body: unknown = undefined
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON: said below
    }
    const error = isRecord(body) && typeof body.error === "string" ? scrub(body.error) : undefined
    if (!response.ok) {
      // Upstash answers a command Redis refused with 400 { error }: that is Redis speaking.
      if (response.status === 400 && error !== undefined) throw new RestError("redis", error)
      const status = `HTTP ${response.status}${response.statusText === "" ? "" : ` ${response.statusText}`}`
      throw new RestError("http", `${status}: ${excerpt(error ?? scrub(text))}`)
    }
    if (error !== undefined) throw new RestError("redis", error)
    const why = isRecord(body) ? malformed(body.result) : body === undefined ? "not JSON" : "not { result }"
    if (why === undefined) return (body as { readonly result: Redis.Reply }).result
    throw new RestError("malformed", `malformed reply from Upstash: ${excerpt(scrub(text))} (${why})`)
  }

  return {
    send,
    fault: () => fault,
    redact: scrub,
    describe: (error) => (error instanceof RestError ? error.message : scrub(networkCause(error)))
  }
}
