/**
 * Scripts as typed codecs. Each script names its KEYS and ARGV; {@link define} turns the names into the
 * positional arrays Redis takes (and the seam's `Redis.Script`), binds them to Lua locals before the
 * script's body, and hands its TypeScript twin records instead of positions.
 *
 * In the Lua body a key named `lock` is the local `lockKey`, an argument named `token` the local
 * `token`: the body never reads `KEYS[i]` or `ARGV[i]` itself.
 */
import type { Effect, Either } from "effect"
import type { RedisError } from "../../LockError.js"
import * as Redis from "../../Redis.js"

/** The values of a script's named keys (extra fields, such as a channel name, are ignored). */
export type Keys<K extends string> = { readonly [k in K]: string }
/** The values of a script's named arguments, as Redis receives them. */
export type Args<V extends string> = { readonly [v in V]: string }

export interface Definition<K extends string, V extends string, A> {
  /** A stable name, used in spans, logs and errors. */
  readonly name: string
  readonly keys: ReadonlyArray<K>
  readonly args: ReadonlyArray<V>
  /** The body; see the module's doc for the names it may use. */
  readonly lua: string
  /** The embedded store's twin: runs synchronously, so it is atomic. */
  readonly local: (keyspace: Redis.Keyspace, keys: Keys<K>, args: Args<V>) => Redis.Reply
  readonly decode: (reply: unknown) => Either.Either<A, string>
}

export interface Codec<K extends string, V extends string, A> {
  readonly name: string
  /** The script as the seam runs it (positional). */
  readonly script: Redis.Script<A>
  /** The positional KEYS of a record. */
  readonly keysOf: (keys: Keys<K>) => ReadonlyArray<string>
  /** Runs the script with named keys and arguments. */
  readonly run: (
    redis: Redis.Service,
    keys: ReadonlyArray<string>,
    args: Args<V>,
    deadline?: number
  ) => Effect.Effect<A, RedisError>
}

/** Lua: `local a, b = KEYS[1], KEYS[2]` for the given local names (nothing for none). */
const bind = (names: ReadonlyArray<string>, table: "KEYS" | "ARGV"): string =>
  names.length === 0 ? "" : `local ${names.join(", ")} = ${names.map((_, i) => `${table}[${i + 1}]`).join(", ")}\n`

export const define = <const K extends string, const V extends string, A>(
  definition: Definition<K, V, A>
): Codec<K, V, A> => {
  const { args: argNames, keys: keyNames } = definition
  const lua = bind(keyNames.map((k) => `${k}Key`), "KEYS") + bind(argNames, "ARGV") + definition.lua
  const script = Redis.script<A>({
    name: definition.name,
    lua,
    numberOfKeys: keyNames.length,
    local: (keyspace, keys, args) => {
      const k: Record<string, string> = {}
      for (let i = 0; i < keyNames.length; i++) k[keyNames[i]!] = keys[i]!
      const a: Record<string, string> = {}
      for (let i = 0; i < argNames.length; i++) a[argNames[i]!] = args[i]!
      return definition.local(keyspace, k as Keys<K>, a as Args<V>)
    },
    decode: definition.decode
  })
  return {
    name: definition.name,
    script,
    keysOf: (keys) => keyNames.map((k) => keys[k]),
    run: (redis, keys, args, deadline) =>
      redis.run(
        script,
        keys,
        argNames.map((v) => args[v]),
        deadline
      )
  }
}
