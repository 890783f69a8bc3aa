/**
 * The election's one script of its own: a read-only look at who leads. Campaigning, resigning and
 * keeping the lease are the lock's line scripts, made announced (`lock/scripts.ts` `lineScripts`).
 */
import { Either } from "effect"
import * as Redis from "../../Redis.js"
import { define } from "../core/script.js"
import { TOKEN_RANDOM } from "./keys.js"

/** What a look finds: the leader (if any) and the term counter, the latest term begun (0: the counter is gone). */
export interface LeaderReply {
  readonly leader: { readonly identity: string; readonly term: number; readonly remaining: number } | undefined
  readonly fence: number
}

/**
 * `[0 nobody | 1 a leader | 2 handed over (nobody yet), PTTL, term counter, '=' .. identity]`. The identity
 * comes behind a `=` so that no client-side decoding of a reply that looks like JSON can change it; the
 * token's random part is never sent.
 */
export const leader = define({
  name: "election.leader",
  keys: ["lock", "fence"],
  args: [],
  lua: `local current = redis.call('GET', lockKey)
local fence = tonumber(redis.call('GET', fenceKey) or '0')
if current == false then
  return {0, 0, fence, '='}
end
if string.sub(current, 1, 1) == '~' then
  return {2, redis.call('PTTL', lockKey), fence, '='}
end
return {1, redis.call('PTTL', lockKey), fence, '=' .. string.sub(current, ${TOKEN_RANDOM + 1})}`,
  local: (ks, keys) => {
    const fence = Number(ks.get(keys.fence) ?? "0")
    const current = ks.get(keys.lock)
    if (current === null) return [0, 0, fence, "="]
    if (current.startsWith("~")) return [2, ks.pttl(keys.lock), fence, "="]
    return [1, ks.pttl(keys.lock), fence, `=${current.slice(TOKEN_RANDOM)}`]
  },
  decode: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 4) {
      return Either.left(`expected [state, pttl, term, identity], got ${typeof reply}`)
    }
    const identity = reply[3]
    if (typeof identity !== "string" || !identity.startsWith("=")) return Either.left("malformed identity in reply")
    return Either.flatMap(
      Redis.decodeIntegers(3)(reply.slice(0, 3)),
      ([state, ttl, fence]) =>
        state === 0 || state === 2
          ? Either.right<LeaderReply>({ leader: undefined, fence: fence! })
          : state === 1
          ? Either.right<LeaderReply>({
            leader: { identity: identity.slice(1), term: fence!, remaining: Math.max(0, ttl!) },
            fence: fence!
          })
          : Either.left(`unknown election state ${state}`)
    )
  }
})
