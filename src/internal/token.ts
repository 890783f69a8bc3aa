/**
 * Owner tokens: 128 bits from the global Web Crypto (Node ≥ 20 and edge runtimes), as 32 hex digits.
 * Random bytes are drawn 4 KiB at a time (one call into the crypto library per 256 tokens); every
 * token still gets 16 bytes no other token gets.
 */
const POOL = 4096
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"))
let pool = new Uint8Array(0)
let offset = POOL

export const randomToken = (): string => {
  if (offset + 16 > pool.length) {
    pool = globalThis.crypto.getRandomValues(new Uint8Array(POOL))
    offset = 0
  }
  let token = ""
  for (let i = offset; i < offset + 16; i++) token += HEX[pool[i]!]
  offset += 16
  return token
}
