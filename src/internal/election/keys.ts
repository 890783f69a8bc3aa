/**
 * An election's keys: a lock's layout under its own namespace, `<prefix>election:{id}`, so that an
 * election and a lock of the same id never meet. Every key shares the hash tag `{id}`.
 *
 * - `<base>` holds the leader's token (32 random hex digits, then its identity) with PX = the lease, or
 *   `~<token>` while it is handed over;
 * - `<base>:fence` the term counter (a lock's fence counter: it lives `fenceTtl` after the last term, and
 *   starts again above every term when gone, `core/lua.ts` `nextFence`);
 * - `<base>:queue`, `<base>:alive` the candidates in line (with a TTL, renewed while they wait);
 * - `<base>:wake` the channel a candidate is woken on, `<base>:leader` the channel every change of
 *   leader is announced on (channels hold nothing).
 */
import { hashTag, type LockKeys } from "../keys.js"

export interface ElectionKeys extends LockKeys {
  /** The channel every change of leader is announced on. */
  readonly announce: string
}

export const electionKeys = (prefix: string, id: string): ElectionKeys => {
  const lock = `${prefix}election:${hashTag(id)}`
  return {
    lock,
    fence: `${lock}:fence`,
    queue: `${lock}:queue`,
    alive: `${lock}:alive`,
    channel: `${lock}:wake`,
    announce: `${lock}:leader`
  }
}

/** How many characters of a candidate's token come before its identity (the random part). */
export const TOKEN_RANDOM = 32
