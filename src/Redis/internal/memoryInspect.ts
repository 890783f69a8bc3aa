/**
 * The way into an embedded store for the test kit (`effect-lock/Redis/MemoryTest`): `Memory.make`
 * registers each store it builds here, keyed by the service it returns.
 */
import type * as Redis from "../../Redis.js"

export interface Entry {
  readonly key: string
  readonly value: string | ReadonlyArray<string>
  readonly pttl: number
}

export interface Inspectable {
  /**
   * Runs `f` over the keyspace at `now` in one synchronous step (atomic, as a script is); messages it
   * publishes are delivered to subscribers afterwards.
   */
  readonly atomically: <A>(now: number, f: (keyspace: Redis.Keyspace) => A) => A
  /**
   * The keys live at `now`, in insertion order: value (a string, or the members of a list or sorted set) and
   * `PTTL` (-1: no expiry).
   */
  readonly entries: (now: number) => ReadonlyArray<Entry>
}

const stores = new WeakMap<Redis.Service, Inspectable>()

/** Registers the store behind `service`; returns `service`. */
export const register = (inspectable: Inspectable, service: Redis.Service): Redis.Service => {
  stores.set(service, inspectable)
  return service
}

export const inspect = (service: Redis.Service): Inspectable | undefined => stores.get(service)
