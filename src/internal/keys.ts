/**
 * Key layout. Every key of one lock id shares the hash tag `{id}`, so multi-key scripts stay legal on
 * Redis Cluster and Upstash. Ids are passed as KEYS, never spliced into Lua.
 */
export const DEFAULT_PREFIX = "effect-lock:"

export interface LockKeys {
  /** Holds the owner token, with PX. */
  readonly lock: string
  /** The fencing counter; no TTL, so fences never go back. */
  readonly fence: string
  /** Waiters in line: a sorted set of tokens scored by arrival (first come, first served). */
  readonly queue: string
  /** The same waiters scored by the instant (Redis `TIME`, ms) they count as gone unless they look again. */
  readonly alive: string
  /** The pub/sub channel on which a released lock wakes the waiter it was handed to. */
  readonly channel: string
}

export const lockKeys = (prefix: string, id: string): LockKeys => {
  const lock = `${prefix}lock:{${id}}`
  return { lock, fence: `${lock}:fence`, queue: `${lock}:queue`, alive: `${lock}:alive`, channel: `${lock}:wake` }
}
