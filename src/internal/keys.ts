/**
 * Key layout. Every key of one lock id shares the hash tag `{id}`, so multi-key scripts stay legal on
 * Redis Cluster and Upstash. Ids are passed as KEYS, never spliced into Lua.
 */
export const DEFAULT_PREFIX = "effect-lock:"

/**
 * The hash tag of an id: `{<id>}`. An id that starts with `}` would make an empty tag (`{}…`), and Redis
 * would hash each whole key name instead, putting one id's keys on different slots (`CROSSSLOT`): such an
 * id is written `%{<id>}` with its `%` and `}` percent-encoded (`%25`, `%7D`), so the tag is not empty,
 * and no other id's keys take that shape (theirs have `{` where this one has `%`). Every other id keeps
 * its key names as they were.
 */
export const hashTag = (id: string): string =>
  id.startsWith("}") ? `%{${id.replace(/[%}]/g, (c) => (c === "%" ? "%25" : "%7D"))}}` : `{${id}}`

export interface LockKeys {
  /** Holds the owner token, with PX. */
  readonly lock: string
  /** The fencing counter: lives `fenceTtl` after the last acquisition; gone, it starts again above (`core/lua.ts`). */
  readonly fence: string
  /** Waiters in line: a sorted set of tokens scored by arrival (first come, first served). */
  readonly queue: string
  /** The same waiters scored by the instant (Redis `TIME`, ms) they count as gone unless they look again. */
  readonly alive: string
  /** The pub/sub channel on which a released lock wakes the waiter it was handed to. */
  readonly channel: string
}

export const lockKeys = (prefix: string, id: string): LockKeys => {
  const lock = `${prefix}lock:${hashTag(id)}`
  return { lock, fence: `${lock}:fence`, queue: `${lock}:queue`, alive: `${lock}:alive`, channel: `${lock}:wake` }
}

/** The keys of one semaphore id: every one shares the id's hash tag ({@link hashTag}). */
export interface SemaphoreKeys {
  /** The holdings: a sorted set of tokens scored by expiry (Redis `TIME`, ms). */
  readonly holders: string
  /** How many permits each token holds or waits for: a sorted set, token → n. */
  readonly count: string
  /** The fence of each holding: a sorted set, token → fence. */
  readonly fences: string
  /** The fencing counter: lives `fenceTtl` after the last acquisition; gone, it starts again above (`core/lua.ts`). */
  readonly fence: string
  /** Waiters in line, by arrival. */
  readonly queue: string
  /** The same waiters by the instant they count as gone unless they look again. */
  readonly alive: string
  /** The `permits` the current holders and waiters agreed on. */
  readonly permits: string
  /** The pub/sub channel on which the head of the line is woken. */
  readonly channel: string
}

export const semaphoreKeys = (prefix: string, id: string): SemaphoreKeys => {
  const base = `${prefix}semaphore:${hashTag(id)}`
  return {
    holders: base,
    count: `${base}:count`,
    fences: `${base}:fences`,
    fence: `${base}:fence`,
    queue: `${base}:queue`,
    alive: `${base}:alive`,
    permits: `${base}:permits`,
    channel: `${base}:wake`
  }
}

/** The KEYS every semaphore script takes, in order. */
export const semaphoreKeyList = (keys: SemaphoreKeys): ReadonlyArray<string> => [
  keys.holders,
  keys.count,
  keys.fences,
  keys.fence,
  keys.queue,
  keys.alive,
  keys.permits
]

/** The keys of one read-write lock id: every one shares the id's hash tag ({@link hashTag}). */
export interface ReadWriteKeys {
  /** The writer's token, with PX (absent while no writer holds). */
  readonly writer: string
  /** The readers: a sorted set of tokens scored by expiry (Redis `TIME`, ms). */
  readonly readers: string
  /** The fence each reader carries: a sorted set, token → fence. */
  readonly fences: string
  /** The fencing counter of writes (as the lock's). */
  readonly fence: string
  /** Waiters in line, by arrival. */
  readonly queue: string
  /** The same waiters by the instant they count as gone unless they look again. */
  readonly alive: string
  /** What each waiter waits for: a sorted set, token → 1 (write) or 0 (read). */
  readonly modes: string
  /** The pub/sub channel on which waiters whose turn it is are woken. */
  readonly channel: string
}

export const readWriteKeys = (prefix: string, id: string): ReadWriteKeys => {
  const base = `${prefix}rwlock:${hashTag(id)}`
  return {
    writer: base,
    readers: `${base}:readers`,
    fences: `${base}:fences`,
    fence: `${base}:fence`,
    queue: `${base}:queue`,
    alive: `${base}:alive`,
    modes: `${base}:modes`,
    channel: `${base}:wake`
  }
}
