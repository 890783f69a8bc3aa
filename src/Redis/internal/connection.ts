/**
 * The checks of a backend's connection options, made when its layer is built and before anything is
 * sent: the URL's scheme (as the command line checks `--redis` and `UPSTASH_REDIS_REST_URL`), and a
 * secret that can go in a header. A rejected URL or token is described without its text, which may hold
 * a password.
 */
import { Effect, Redacted } from "effect"
import { InvalidOptions } from "../../LockError.js"

const reveal = (value: unknown): unknown => (Redacted.isRedacted(value) ? Redacted.value(value) : value)

/** What a rejected URL was, without its text. */
const shape = (text: unknown): string => {
  if (typeof text !== "string") return text === null ? "null" : typeof text
  if (text.trim() === "") return "an empty string"
  try {
    return `a URL with the scheme "${new URL(text).protocol}"`
  } catch {
    return "a string that is not a URL"
  }
}

/**
 * A URL with one of `protocols` (e.g. `["redis:", "rediss:"]`) and a host, given as a string or
 * `Redacted`; its text when it is one.
 */
export const url = (
  option: string,
  value: unknown,
  protocols: ReadonlyArray<string>
): Effect.Effect<string, InvalidOptions> => {
  const text = reveal(value)
  let ok = false
  try {
    const parsed = new URL(text as string)
    ok = typeof text === "string" && protocols.includes(parsed.protocol) && parsed.hostname !== ""
  } catch {
    ok = false
  }
  return ok ? Effect.succeed(text as string) : Effect.fail(
    new InvalidOptions({
      option,
      expected: `a URL ${protocols.map((p) => `${p}//host`).join(" or ")}`,
      received: shape(text)
    })
  )
}

/** A secret that can go in an HTTP header: printable ASCII, no spaces. Kept `Redacted`. */
export const secret = (option: string, value: unknown): Effect.Effect<Redacted.Redacted<string>, InvalidOptions> => {
  const text = reveal(value)
  return typeof text === "string" && /^[\x21-\x7e]+$/.test(text)
    ? Effect.succeed(Redacted.make(text))
    : Effect.fail(
      new InvalidOptions({
        option,
        expected: "a non-empty string of printable ASCII characters without spaces",
        received: typeof text !== "string"
          ? typeof text
          : text === ""
          ? "an empty string"
          : "a string with other characters"
      })
    )
}

/**
 * Cuts each secret out of a text, as `mask`. Secrets shorter than 4 characters are left (cutting them
 * would blank out ordinary letters of the text, and such a fragment tells nothing).
 */
export const redactor = (secrets: ReadonlyArray<string>, mask: string) => {
  const cut = secrets.filter((secret) => secret.length >= 4).sort((a, b) => b.length - a.length)
  return (text: string): string => cut.reduce((out, secret) => out.split(secret).join(mask), text)
}
