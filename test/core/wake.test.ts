import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { FIRST_POLL, firstPollOf, HEARTBEAT, nextWakeAt, POLL, type WakeInput } from "../../src/internal/core/wake.js"

const input = fc.record({
  now: fc.integer({ min: 0, max: 1e9 }),
  remaining: fc.integer({ min: 0, max: 1e7 }),
  first: fc.boolean(),
  subscribed: fc.boolean(),
  scheduledIn: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 1e7 })),
  deadlineIn: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 1e7 })),
  token: fc.string({ minLength: 1, maxLength: 4 }),
  exactTries: fc.boolean()
})

type Input = typeof input extends fc.Arbitrary<infer A> ? A : never

/** The waiter's view, with its times made absolute. */
const wakeOf = (i: Input, overrides: Partial<WakeInput> = {}): WakeInput => ({
  now: i.now,
  remaining: i.remaining,
  first: i.first,
  subscribed: i.subscribed,
  scheduled: i.now + i.scheduledIn,
  deadline: i.now + i.deadlineIn,
  firstPoll: firstPollOf(i.token),
  exactTries: i.exactTries,
  ...overrides
})

describe("when a waiter looks again (nextWakeAt)", () => {
  it.prop("never before now, never after the deadline or the schedule's next try", [input], ([i]) => {
    const at = nextWakeAt(wakeOf(i))
    expect(at).toBeGreaterThanOrEqual(i.now)
    expect(at).toBeLessThanOrEqual(i.now + i.deadlineIn)
    expect(at).toBeLessThanOrEqual(i.now + i.scheduledIn)
  })

  it.prop("in line, it looks when the holder's lease ends, and at least every heartbeat or poll", [input], ([i]) => {
    const at = nextWakeAt(wakeOf(i, { scheduled: Infinity, deadline: Infinity, exactTries: false }))
    expect(at).toBeLessThanOrEqual(i.now + i.remaining + 1)
    const look = i.subscribed ? HEARTBEAT : i.first ? firstPollOf(i.token) : POLL
    expect(at).toBe(Math.min(i.now + i.remaining + 1, i.now + look))
  })

  it.prop("with exactTries only the schedule and the deadline decide", [input], ([i]) => {
    const at = nextWakeAt(wakeOf(i, { exactTries: true }))
    expect(at).toBe(i.now + Math.min(i.scheduledIn, i.deadlineIn))
  })

  it.prop("the first in line polls every 5 to 9 ms, jittered by its token", [fc.string({ minLength: 1 })], ([t]) => {
    const poll = firstPollOf(t)
    expect(poll).toBeGreaterThanOrEqual(FIRST_POLL)
    expect(poll).toBeLessThan(2 * FIRST_POLL)
  })
})
