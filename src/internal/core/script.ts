/**
 * Scripts as typed codecs. Each script names its KEYS and ARGV; {@link define} turns the names into the
 * positional arrays Redis takes (and the seam's `Redis.Script`), binds them to Lua locals before the
 * script's body, and hands its TypeScript twin records instead of positions.
 *
 * In the Lua body a key named `lock` is the local `lockKey`, an argument named `token` the local
 * `token`: the body never reads `KEYS[i]` or `ARGV[i]` itself.
 */
import { Effect, Either } from "effect"
import type { RedisError } from "../../LockError.js"
import * as Redis from "../../Redis.js"
import * as Lua from "./lua.js"

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

/**
 * Lua: a body that publishes ({@link Lua.publish}) runs as a function; when a publish was refused, the
 * reply is `{'unheard', reply, error}` instead of `reply` (no script replies a string first otherwise).
 */
const heardOrNot = (body: string): string =>
  `local ${Lua.UNHEARD} = false
local reply = (function()
${body}
end)()
if ${Lua.UNHEARD} then
  return {'unheard', reply, ${Lua.UNHEARD}}
end
return reply`

/** A reply whose script could not publish: the reply itself, and Redis's error. */
const unheardOf = (reply: unknown): { readonly reply: unknown; readonly error: string } | undefined =>
  Array.isArray(reply) && reply.length === 3 && reply[0] === "unheard"
    ? { reply: reply[1], error: String(reply[2]) }
    : undefined

/** The services that were told, once each, that their publishes are refused. */
const refusing = new WeakSet<Redis.Service>()

/**
 * Whether a script run on `redis` had its publish refused: the waiters of this service then look as
 * often as without push (the channel is subscribed, but nothing is published on it).
 */
export const publishRefused = (redis: Redis.Service): boolean => refusing.has(redis)

const refused = (redis: Redis.Service, name: string, error: string): Effect.Effect<void> =>
  refusing.has(redis) ? Effect.void : Effect.suspend(() => {
    refusing.add(redis)
    return Effect.logWarning(
      `Redis refused PUBLISH in ${name} (${error}): what the script did stands (a release released); waiters ` +
        "are not woken and find the lock by looking. Grant this user +publish (+spublish on a cluster)"
    )
  })

export const define = <const K extends string, const V extends string, A>(
  definition: Definition<K, V, A>
): Codec<K, V, A> => {
  const { args: argNames, keys: keyNames } = definition
  const publishes = definition.lua.includes(`${Lua.UNHEARD} = `)
  const lua = bind(keyNames.map((k) => `${k}Key`), "KEYS") + bind(argNames, "ARGV") +
    (publishes ? heardOrNot(definition.lua) : definition.lua)
  const local = (keyspace: Redis.Keyspace, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => {
    const k: Record<string, string> = {}
    for (let i = 0; i < keyNames.length; i++) k[keyNames[i]!] = keys[i]!
    const a: Record<string, string> = {}
    for (let i = 0; i < argNames.length; i++) a[argNames[i]!] = args[i]!
    return definition.local(keyspace, k as Keys<K>, a as Args<V>)
  }
  const { decode } = definition
  // What the seam runs: the reply decoded, whether its publish was heard or not.
  const script = Redis.script<A>({
    name: definition.name,
    lua,
    numberOfKeys: keyNames.length,
    local,
    decode: publishes ? (reply) => decode(unheardOf(reply)?.reply ?? reply) : decode
  })
  // The same script (same Lua, same SHA), telling `run` about a refused publish.
  const told = Redis.script<readonly [A, string | undefined]>({
    ...script,
    decode: (reply) => {
      const unheard = unheardOf(reply)
      return Either.map(decode(unheard?.reply ?? reply), (a) => [a, unheard?.error] as const)
    }
  })
  return {
    name: definition.name,
    script,
    keysOf: (keys) => keyNames.map((k) => keys[k]),
    run: publishes
      ? (redis, keys, args, deadline) =>
        Effect.flatMap(
          redis.run(told, keys, argNames.map((v) => args[v]), deadline),
          ([a, error]) => error === undefined ? Effect.succeed(a) : Effect.as(refused(redis, definition.name, error), a)
        )
      : (redis, keys, args, deadline) => redis.run(script, keys, argNames.map((v) => args[v]), deadline)
  }
}

export interface EachDefinition<K extends string, V extends string, A> {
  /** A stable name, used in spans, logs and errors. */
  readonly name: string
  /** The keys of one item: KEYS is these, item after item. */
  readonly keys: ReadonlyArray<K>
  readonly args: ReadonlyArray<V>
  /** The body: `items[i].<key>Key` are the keys of item `i` (1-based), arguments as in {@link define}. */
  readonly lua: string
  /** The embedded store's twin, given the items' keys as records. */
  readonly local: (keyspace: Redis.Keyspace, items: ReadonlyArray<Keys<K>>, args: Args<V>) => Redis.Reply
  readonly decode: (reply: unknown) => Either.Either<A, string>
}

export interface EachCodec<K extends string, V extends string, A> {
  readonly name: string
  /** The positional KEYS of some items. */
  readonly keysOf: (items: ReadonlyArray<Keys<K>>) => ReadonlyArray<string>
  /** Runs the script over the items whose keys `keys` holds (as {@link EachCodec.keysOf} made them). */
  readonly run: (
    redis: Redis.Service,
    keys: ReadonlyArray<string>,
    args: Args<V>,
    deadline?: number
  ) => Effect.Effect<A, RedisError>
}

/**
 * A script over any number of items that each have the same named keys (e.g. the locks of several ids):
 * the Lua sees them as the table `items`, the twin as an array of records. One seam script per item count
 * (the same Lua, so the same SHA), made when first needed.
 */
export const defineEach = <const K extends string, const V extends string, A>(
  definition: EachDefinition<K, V, A>
): EachCodec<K, V, A> => {
  const { args: argNames, keys: keyNames } = definition
  const width = keyNames.length
  const lua = `local items = {}
for i = 1, #KEYS / ${width} do
  items[i] = {${keyNames.map((k, j) => `${k}Key = KEYS[(i - 1) * ${width} + ${j + 1}]`).join(", ")}}
end
${bind(argNames, "ARGV")}${definition.lua}`
  const local = (keyspace: Redis.Keyspace, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => {
    const items: Array<Keys<K>> = []
    for (let i = 0; i < keys.length; i += width) {
      const item: Record<string, string> = {}
      for (let j = 0; j < width; j++) item[keyNames[j]!] = keys[i + j]!
      items.push(item as Keys<K>)
    }
    const a: Record<string, string> = {}
    for (let i = 0; i < argNames.length; i++) a[argNames[i]!] = args[i]!
    return definition.local(keyspace, items, a as Args<V>)
  }
  const scripts = new Map<number, Redis.Script<A>>()
  const scriptOf = (numberOfKeys: number) => {
    let made = scripts.get(numberOfKeys)
    if (made === undefined) {
      made = Redis.script<A>({ name: definition.name, lua, numberOfKeys, local, decode: definition.decode })
      scripts.set(numberOfKeys, made)
    }
    return made
  }
  return {
    name: definition.name,
    keysOf: (items) => items.flatMap((item) => keyNames.map((k) => item[k])),
    run: (redis, keys, args, deadline) => redis.run(scriptOf(keys.length), keys, argNames.map((v) => args[v]), deadline)
  }
}
