/**
 * Redis Cluster's hash slot of a key (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384), as
 * the servers compute it: which keys one script may take together on a cluster.
 */
const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1
    table[i] = c & 0xffff
  }
  return table
})()

const encoder = new TextEncoder()

/** The part of `key` that is hashed: the text between the first `{` and the next `}`, if not empty. */
export const hashTag = (key: string): string => {
  const open = key.indexOf("{")
  if (open === -1) return key
  const close = key.indexOf("}", open + 1)
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

export const slotOf = (key: string): number => {
  let crc = 0
  for (const byte of encoder.encode(hashTag(key))) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc & 16383
}
