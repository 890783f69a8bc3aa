/**
 * What the conformance suite cannot say on every backend: a leader whose Redis fails loses its
 * leadership loudly (Memory under TestClock, faults by test/utils/FaultyRedis.ts), and an observer whose
 * subscriber connection was killed comes back to the current leader (a real redis-server).
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Ref, type Scope, Stream, TestClock } from "effect"
import * as Election from "../src/Election.js"
import { electionKeys } from "../src/internal/election/keys.js"
import { randomToken } from "../src/internal/token.js"
import { LeadershipLost } from "../src/LockError.js"
import type { Redis } from "../src/Redis.js"
import * as IoRedis from "../src/Redis/IoRedis.js"
import * as Memory from "../src/Redis/Memory.js"
import * as FaultyRedis from "./utils/FaultyRedis.js"
import { eventually, raw } from "./utils/live.js"
import { uniqueId } from "./utils/probe.js"
import * as RedisServer from "./utils/RedisServer.js"

describe("a leader whose Redis fails", () => {
  for (const [name, fault] of [["hang", FaultyRedis.Hang], ["fail", FaultyRedis.Fail]] as const) {
    it.scoped(`loses leadership with LeadershipLost (unconfirmed) before its lease ends when extensions ${name}`, () =>
      Effect.gen(function*() {
        const faulty = FaultyRedis.make()
        const id = "faulty-leader"
        const interruptedAt = yield* Ref.make<number | undefined>(undefined)
        const work = Election.whileLeader({ id, lease: 3000 })(
          Effect.never.pipe(
            Effect.onInterrupt(() => Effect.flatMap(TestClock.currentTimeMillis, (t) => Ref.set(interruptedAt, t)))
          )
        ).pipe(Effect.provide(faulty.layer))
        // Default keep-alive steps go in the service's batch (`lock.extendMany`, docs/scale.md).
        faulty.on("lock.extend*", fault)
        const fiber = yield* Effect.fork(work)
        yield* TestClock.adjust(3000)
        const exit = yield* Fiber.await(fiber)
        expect(exit).toEqual(Exit.fail(new LeadershipLost({ id, term: 1, reason: "unconfirmed" })))
        // Interrupted by the local deadline (lease minus the drift margin), before Redis lets the key go.
        const at = (yield* Ref.get(interruptedAt))!
        expect(at).toBeLessThan(3000)
      }).pipe(Effect.provide(Memory.layer)))
  }
})

type Client = Effect.Effect.Success<ReturnType<typeof raw>>
type Seen = Ref.Ref<ReadonlyArray<Option.Option<readonly [string, number]>>>

/**
 * A fresh redis-server, a raw client of it, and an observer of a new election (`seen`: what it emitted,
 * as [identity, term]) that has emitted its first look; `body` runs on an IoRedis layer of that server.
 */
const observing = (
  name: string,
  body: (client: Client, id: string, seen: Seen) => Effect.Effect<void, unknown, Redis | Scope.Scope>
) =>
() =>
  Effect.gen(function*() {
    const server = yield* RedisServer.startFresh()
    const client = yield* raw(server.url)
    const id = yield* uniqueId(name)
    const seen: Seen = yield* Ref.make<ReadonlyArray<Option.Option<readonly [string, number]>>>([])
    yield* Effect.gen(function*() {
      yield* Effect.forkScoped(
        Election.observe({ id }).pipe(
          Stream.runForEach((l) => Ref.update(seen, (s) => [...s, Option.map(l, (l) => [l.identity, l.term] as const)]))
        )
      )
      // Subscribed before its first look: every message published from now on is heard.
      yield* eventually(Ref.get(seen), (s) => s.length === 1)
      yield* body(client, id, seen)
    }).pipe(Effect.provide(IoRedis.layer({ url: server.url })))
  }).pipe(Effect.provide(NodeContext.layer))

describe("announcements on a real redis-server", () => {
  it.scopedLive(
    "a win is announced with its term digit for digit (a term seeded from TIME), a resignation as -",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.startFresh()
        const listener = yield* raw(server.url)
        const id = yield* uniqueId("announce")
        const messages: Array<string> = []
        listener.on("message", (_channel: string, message: string) => void messages.push(message))
        yield* Effect.promise(() => listener.subscribe(electionKeys("effect-lock:", id).announce))
        const term = yield* Effect.scoped(
          Effect.map(Election.campaign({ id, identity: "w", lease: 5000 }), (l) => l.term)
        )
          .pipe(Effect.provide(IoRedis.layer({ url: server.url })))
        expect(term).toBeGreaterThan(1e15)
        yield* eventually(Effect.sync(() => messages.length), (n) => n === 2)
        expect(messages[0]).toMatch(new RegExp(`^\\+${term} 5000 [0-9a-f]{32}w$`))
        expect(messages[1]).toBe("-")
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )
})

describe("observe on a real redis-server", () => {
  it.scopedLive(
    "after its subscriber connection is killed and a change goes unannounced, it comes back to the current leader",
    observing("observe-reconnect", (client, id, seen) =>
      Effect.gen(function*() {
        const announced = yield* Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign({ id, identity: "announced" })
          yield* eventually(Ref.get(seen), (s) => s.length === 2)
          return leadership.term
        }))
        yield* eventually(Ref.get(seen), (s) => s.length === 3)
        // The subscriber's connection goes; meanwhile a leader takes over without any announcement
        // (written straight into the keys: as if its message had been published while unsubscribed).
        expect(yield* Effect.promise(() => client.client("KILL", "TYPE", "pubsub"))).toBe(1)
        const keys = electionKeys("effect-lock:", id)
        const term = yield* Effect.promise(() => client.incr(keys.fence))
        yield* Effect.promise(() => client.set(keys.lock, `${randomToken()}unannounced`, "PX", 20_000))
        yield* eventually(Ref.get(seen), (s) => s.length === 4, "5 seconds")
        expect(yield* Ref.get(seen)).toEqual([
          Option.none(),
          Option.some(["announced", announced]),
          Option.none(),
          Option.some(["unannounced", term])
        ])
        // And it goes on following every change.
        yield* Effect.promise(() => client.del(keys.lock))
        yield* eventually(Ref.get(seen), (s) => s.length === 5, "5 seconds")
        yield* Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign({ id, identity: "after" })
          const s = yield* eventually(Ref.get(seen), (s) => s.length === 6)
          expect(s[5]).toEqual(Option.some(["after", leadership.term]))
        }))
      })),
    60_000
  )

  it.scopedLive(
    "an announcement whose term is not written digit for digit is ignored; the winner is seen with its exact term",
    observing("observe-exact", (client, id, seen) =>
      Effect.gen(function*() {
        // A term as Lua's default number formatting writes it (14 significant digits): not exact.
        const announce = electionKeys("effect-lock:", id).announce
        expect(yield* Effect.promise(() => client.publish(announce, `+1e+15 5000 ${randomToken()}rounded`))).toBe(1)
        yield* Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign({ id, identity: "exact" })
          yield* eventually(Ref.get(seen), (s) => s.length === 2)
          expect(yield* Ref.get(seen)).toEqual([Option.none(), Option.some(["exact", leadership.term])])
        }))
      })),
    60_000
  )
})
