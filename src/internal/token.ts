/** Owner tokens: 128 bits from the global Web Crypto (Node ≥ 20 and edge runtimes), as 32 hex digits. */
export const randomToken = (): string =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("")
