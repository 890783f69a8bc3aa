/**
 * SHA-1 of a script's source, for EVALSHA, through Web Crypto (available on Node ≥ 20 and on edge
 * runtimes alike, so the core stays free of `node:` imports).
 */
import { Effect } from "effect"

const hex = (buffer: ArrayBuffer): string =>
  Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("")

export const sha1 = (text: string): Effect.Effect<string> =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-1", new TextEncoder().encode(text))).pipe(
    Effect.map(hex)
  )
