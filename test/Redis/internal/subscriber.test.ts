/**
 * The shared subscriber over a scripted connection under TestClock, where every interleaving of a
 * waiter's interruption, a round trip, the idle sweep and a lost connection can be forced. The fake
 * server applies commands in the order they are sent (as one Redis connection does) and answers each
 * after `latency` ms.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, TestClock } from "effect"
import { RedisError } from "../../../src/LockError.js"
import * as Subscriber from "../../../src/Redis/internal/subscriber.js"

interface Fake {
  /** What the server has subscribed. */
  readonly server: Set<string>
  /** Every command sent, in order. */
  readonly sent: Array<string>
  /** Commands sent from now on are applied but never answered. */
  hang: boolean
  /** Commands sent from now on fail once they are answered. */
  fail: boolean
}

const fake = (latency: number) => {
  const state: Fake = { server: new Set(), sent: [], hang: false, fail: false }
  const command = (name: "subscribe" | "unsubscribe", channel: string) =>
    Effect.suspend(() => {
      state.sent.push(`${name} ${channel}`)
      if (name === "subscribe") state.server.add(channel)
      else state.server.delete(channel)
      if (state.hang) return Effect.never
      const fail = state.fail
      return Effect.sleep(latency).pipe(
        Effect.zipRight(fail ? Effect.fail(new RedisError({ operation: name, detail: "refused" })) : Effect.void)
      )
    })
  const connection: Subscriber.Connection = {
    subscribe: (channel) => command("subscribe", channel),
    unsubscribe: (channel) => command("unsubscribe", channel)
  }
  return { state, connection }
}

const settle = (ms: number) => TestClock.adjust(ms)

describe("Subscriber", () => {
  for (const at of [0, 1, 9, 10, 11]) {
    it.scoped(`a subscribe interrupted ${at} ms into a 10 ms round trip leaves the channel usable and truthful`, () =>
      Effect.gen(function*() {
        const { connection, state } = fake(10)
        const { subscriber } = yield* Subscriber.make(connection)
        const first = yield* Effect.fork(subscriber.subscribe("ch"))
        if (at > 0) yield* settle(at)
        yield* Fiber.interrupt(first)
        // whatever the point, the channel ends up as the server has it
        yield* settle(20)
        expect(subscriber.isActive("ch")).toBe(state.server.has("ch"))
        const second = yield* Effect.fork(subscriber.subscribe("ch"))
        yield* settle(20)
        expect(Option.map(yield* Fiber.poll(second), Exit.isSuccess)).toEqual(Option.some(true))
        expect(subscriber.isActive("ch")).toBe(true)
        expect(state.server.has("ch")).toBe(true)
      }))
  }

  it.scoped("waiters sharing a SUBSCRIBE are not stopped by the interruption of the one that started it", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection)
      const first = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(1)
      const second = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(1)
      yield* Fiber.interrupt(first)
      yield* settle(10)
      expect(Exit.isSuccess(yield* Fiber.await(second))).toBe(true)
      expect(state.sent).toEqual(["subscribe ch"])
    }))

  it.scoped("a SUBSCRIBE the server never confirms fails with RedisError at the timeout, and so does the next", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection, { timeout: "5 seconds" })
      state.hang = true
      const first = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(5000)
      const error = yield* Effect.flip(Fiber.join(first))
      expect(error).toBeInstanceOf(RedisError)
      expect(error.message).toContain("no confirmation")
      expect(subscriber.isActive("ch")).toBe(false)
      const second = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(5000)
      expect(yield* Effect.flip(Fiber.join(second))).toBeInstanceOf(RedisError)
      state.hang = false
      const third = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(10)
      expect(Exit.isSuccess(yield* Fiber.await(third))).toBe(true)
      expect(subscriber.isActive("ch")).toBe(true)
    }))

  it.scoped("a failed SUBSCRIBE is a RedisError and the channel stays inactive", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection)
      state.fail = true
      const first = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(10)
      expect(yield* Effect.flip(Fiber.join(first))).toBeInstanceOf(RedisError)
      expect(subscriber.isActive("ch")).toBe(false)
    }))

  it.scoped("a failed SUBSCRIBE of a channel with listeners is tried again in the background, backing off", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection)
      const listening = yield* subscriber.listen("ch", () => {})
      state.fail = true
      expect(
        yield* Effect.flip(
          subscriber.subscribe("ch").pipe(
            Effect.fork,
            Effect.tap(() => settle(10)),
            Effect.flatMap(Fiber.join)
          )
        )
      )
        .toBeInstanceOf(RedisError)
      yield* settle(100 + 10) // first retry after 100 ms: fails again
      yield* settle(200 + 10) // then after 200 ms: fails again
      expect(state.sent).toEqual(["subscribe ch", "subscribe ch", "subscribe ch"])
      state.fail = false
      yield* settle(400 + 10)
      expect(state.sent.length).toBe(4)
      expect(subscriber.isActive("ch")).toBe(true)
      // no listener, no retries
      yield* listening.remove
      state.fail = true
      const other = yield* Effect.fork(subscriber.subscribe("other"))
      yield* settle(10)
      expect(Exit.isFailure(yield* Fiber.await(other))).toBe(true)
      yield* settle(30_000)
      expect(state.sent.filter((c) => c === "subscribe other")).toEqual(["subscribe other"])
    }))

  it.scoped("the sweep never unsubscribes a channel re-subscribed while its UNSUBSCRIBE waited its turn", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection, { linger: "1 minute" })
      yield* Effect.all([subscriber.subscribe("a"), subscriber.subscribe("b")], { concurrency: 2 }).pipe(
        Effect.fork
      )
      yield* settle(10)
      expect(subscriber.isActive("a") && subscriber.isActive("b")).toBe(true)
      // unused for two sweeps: both are chosen by the sweep at 2 minutes
      yield* settle(120_000 - 10)
      // a waiter comes for "b" while the sweep's UNSUBSCRIBEs are on their way
      const listening = yield* subscriber.listen("b", () => {})
      const again = yield* Effect.fork(subscriber.subscribe("b"))
      yield* settle(50)
      expect(Exit.isSuccess(yield* Fiber.await(again))).toBe(true)
      expect(listening.active).toBe(false)
      expect(subscriber.isActive("b")).toBe(true)
      expect(state.server.has("b")).toBe(true)
      expect(subscriber.isActive("a")).toBe(false)
      expect(state.server.has("a")).toBe(false)
      // and it stays so while in use
      yield* settle(600_000)
      expect(subscriber.isActive("b") && state.server.has("b")).toBe(true)
      yield* listening.remove
      yield* settle(120_000)
      expect(subscriber.isActive("b") || state.server.has("b")).toBe(false)
    }))

  it.scoped("isActive is false from the moment the sweep decides to unsubscribe, and a listener then is told so", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection, { linger: "1 minute" })
      yield* subscriber.subscribe("a").pipe(Effect.fork)
      yield* settle(10)
      yield* settle(120_000) // the UNSUBSCRIBE is sent now, answered at +10 ms
      expect(state.sent).toEqual(["subscribe a", "unsubscribe a"])
      expect(subscriber.isActive("a")).toBe(false)
      const listening = yield* subscriber.listen("a", () => {})
      expect(listening.active).toBe(false)
      const again = yield* Effect.fork(subscriber.subscribe("a"))
      yield* settle(30)
      expect(Exit.isSuccess(yield* Fiber.await(again))).toBe(true)
      expect(state.sent).toEqual(["subscribe a", "unsubscribe a", "subscribe a"])
      expect(subscriber.isActive("a") && state.server.has("a")).toBe(true)
    }))

  it.scoped("channels left idle or subscribing are swept: a SUBSCRIBE that timed out is undone", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection, { linger: "1 minute", timeout: "5 seconds" })
      state.hang = true
      yield* Effect.fork(Effect.ignore(subscriber.subscribe("lost")))
      yield* settle(5000)
      state.hang = false
      expect(state.server.has("lost")).toBe(true) // it reached the server; the answer never came
      yield* settle(120_000)
      expect(state.sent).toEqual(["subscribe lost", "unsubscribe lost"])
      expect(state.server.has("lost")).toBe(false)
    }))

  it.scoped("a channel is kept at least one whole sweep after its last listener leaves", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { subscriber } = yield* Subscriber.make(connection, { linger: "1 minute" })
      const listening = yield* subscriber.listen("a", () => {})
      yield* Effect.fork(subscriber.subscribe("a"))
      yield* settle(119_000)
      yield* listening.remove // just before the second sweep
      yield* settle(1_000)
      expect(subscriber.isActive("a")).toBe(true)
      yield* settle(60_000)
      expect(subscriber.isActive("a") || state.server.has("a")).toBe(false)
    }))

  it.scoped("a lost connection makes every channel inactive; back, channels with listeners are subscribed again", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { connected, disconnected, dispatch, subscriber } = yield* Subscriber.make(connection)
      const messages: Array<string> = []
      yield* subscriber.listen("busy", (m) => messages.push(m))
      yield* Effect.fork(Effect.all([subscriber.subscribe("busy"), subscriber.subscribe("quiet")]))
      yield* settle(20)
      expect(subscriber.isActive("busy") && subscriber.isActive("quiet")).toBe(true)
      state.server.clear()
      disconnected()
      expect(subscriber.isActive("busy") || subscriber.isActive("quiet")).toBe(false)
      connected()
      yield* settle(10)
      expect(subscriber.isActive("busy") && state.server.has("busy")).toBe(true)
      expect(subscriber.isActive("quiet") || state.server.has("quiet")).toBe(false)
      dispatch("busy", "hello")
      expect(messages).toEqual(["hello"])
    }))

  it.scoped("a channel whose own subscription ended (lost) is inactive at once and subscribed again after 100 ms if in use", () =>
    Effect.gen(function*() {
      const { connection, state } = fake(10)
      const { lost, subscriber } = yield* Subscriber.make(connection)
      yield* subscriber.listen("busy", () => {})
      yield* Effect.fork(Effect.all([subscriber.subscribe("busy"), subscriber.subscribe("quiet")]))
      yield* settle(20)
      lost("busy")
      lost("quiet")
      expect(subscriber.isActive("busy") || subscriber.isActive("quiet")).toBe(false)
      yield* settle(99)
      expect(state.sent.filter((c) => c === "subscribe busy").length).toBe(1)
      yield* settle(1 + 10)
      expect(state.sent.filter((c) => c === "subscribe busy").length).toBe(2)
      expect(subscriber.isActive("busy")).toBe(true)
      expect(state.sent.filter((c) => c === "subscribe quiet").length).toBe(1) // nobody listens: left
    }))

  it.scoped("a confirmation that arrives after the connection was lost does not make the channel active", () =>
    Effect.gen(function*() {
      const { connection } = fake(10)
      const { disconnected, subscriber } = yield* Subscriber.make(connection)
      const first = yield* Effect.fork(subscriber.subscribe("ch"))
      yield* settle(5)
      disconnected()
      yield* settle(5)
      yield* Fiber.join(first)
      expect(subscriber.isActive("ch")).toBe(false)
    }))

  it.scoped("closing the subscriber fails a pending SUBSCRIBE with RedisError", () =>
    Effect.gen(function*() {
      const { connection } = fake(10)
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const { subscriber } = yield* Subscriber.make(connection)
        return yield* Effect.fork(subscriber.subscribe("ch"))
      }))
      expect(yield* Effect.flip(Fiber.join(outcome))).toBeInstanceOf(RedisError)
    }))
})
