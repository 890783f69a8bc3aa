/**
 * `Election.observe`: the leader now, then every change, in order, without duplicates, terms
 * increasing.
 *
 * - Where the backend pushes, the observer listens on the election's `announce` channel before its
 *   first look: every win (`+<term> <lease> <token>`) and every resignation (`-`) is published by the
 *   script that made it, so each change arrives in the order Redis made them.
 * - An expiry publishes nothing: the observer looks again when the leader's lease would end (a leader
 *   that extended is then seen with its new lease), and at least every {@link BACKSTOP} ms (every
 *   {@link POLL} ms where nothing pushes), which also brings it back to the current leader after its
 *   subscriber reconnected (messages published meanwhile are lost).
 * - What it emits only moves forward: a leader only when its term is above every term seen, "nobody"
 *   only after the leader it last emitted is seen gone (a look that predates a newer announcement is
 *   stale and changes nothing).
 */
import { Duration, Effect, Option, Stream } from "effect"
import type { Leader } from "../../Election.js"
import { InvalidOptions, type RedisError } from "../../LockError.js"
import { Redis } from "../../Redis.js"
import { POLL } from "../core/wake.js"
import { look, toLeader } from "./election.js"
import { TOKEN_RANDOM } from "./keys.js"
import { type Input, resolve } from "./options.js"
import type { LeaderReply } from "./scripts.js"

/** With push, the observer still looks this often (a reconnect, a lost message). */
export const BACKSTOP = 1000

/**
 * A term or lease as announced: digits only, exact. Anything else (say `1.7962842009219e+15`, a term
 * that Lua wrote with 14 significant digits) is ignored: the next look tells.
 */
const integerOf = (text: string): number | undefined => {
  if (!/^[0-9]{1,16}$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

/** What one observer has emitted so far. */
class Seen {
  /** The highest term seen (emitted or passed over), -1 before the first emission. */
  term = -1
  /** The leader emitted last, if it still leads as far as the observer knows. */
  current: Leader | undefined
  started = false
  constructor(readonly emit: (leader: Option.Option<Leader>) => void) {}

  /** A leader seen (in a look or an announcement). */
  leader(leader: Leader): void {
    if (leader.term <= this.term) {
      // The same leader, seen again: only its lease moved.
      if (this.current !== undefined && leader.term === this.current.term) this.current = leader
      return
    }
    this.term = leader.term
    this.current = leader
    this.started = true
    this.emit(Option.some(leader))
  }

  /** Nobody leads, as of a look whose term counter was `fence` (`undefined`: an announced resignation). */
  nobody(fence: number | undefined): void {
    if (!this.started) {
      this.started = true
      this.term = fence ?? -1
      return this.emit(Option.none())
    }
    if (this.current === undefined) return
    if (fence !== undefined && fence < this.current.term) return // a look older than the announcement
    this.current = undefined
    if (fence !== undefined) this.term = Math.max(this.term, fence)
    this.emit(Option.none())
  }

  reply(reply: LeaderReply): void {
    const leader = toLeader(reply)
    if (Option.isSome(leader)) this.leader(leader.value)
    else this.nobody(reply.fence)
  }

  /** An announcement on the election's channel. */
  message(message: string): void {
    if (message === "-") return this.nobody(undefined)
    if (!message.startsWith("+")) return
    const first = message.indexOf(" ")
    const second = message.indexOf(" ", first + 1)
    if (first < 0 || second < 0) return
    const term = integerOf(message.slice(1, first))
    const lease = integerOf(message.slice(first + 1, second))
    if (term === undefined || lease === undefined) return
    this.leader({
      identity: message.slice(second + 1 + TOKEN_RANDOM),
      term,
      remaining: Duration.millis(lease)
    })
  }
}

export const observe = (options: Input): Stream.Stream<Option.Option<Leader>, RedisError | InvalidOptions, Redis> =>
  Stream.unwrap(Effect.sync((): Stream.Stream<Option.Option<Leader>, RedisError | InvalidOptions, Redis> => {
    const election = resolve(options)
    if (election instanceof InvalidOptions) return Stream.fail(election)
    return Stream.asyncScoped<Option.Option<Leader>, RedisError, Redis>((emit) =>
      Effect.gen(function*() {
        const redis = yield* Redis
        const seen = new Seen((leader) => void emit.single(leader))
        const subscriber = redis.subscriber
        const channel = election.keys.announce
        if (subscriber !== undefined) {
          const { remove } = yield* subscriber.listen(channel, (message) => seen.message(message))
          yield* Effect.addFinalizer(() => remove)
          // Unconfirmed, the observer still looks every BACKSTOP ms; it never waits forever.
          yield* Effect.ignore(subscriber.subscribe(channel))
        }
        const every = subscriber === undefined ? POLL : BACKSTOP
        const loop = Effect.gen(function*() {
          while (true) {
            seen.reply(yield* look(election, redis))
            const current = seen.current
            const untilExpiry = current === undefined ? every : Duration.toMillis(current.remaining) + 1
            yield* Effect.sleep(Math.max(1, Math.min(every, untilExpiry)))
          }
        })
        yield* Effect.forkScoped(Effect.catchAll(loop, (e) => Effect.promise(() => emit.fail(e))))
      })
    )
  }))
