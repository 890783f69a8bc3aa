import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { type Event, type Phase, Phase as P, transition } from "../../src/internal/core/lease.js"

const reason = fc.constantFrom("expired" as const, "unconfirmed" as const)
const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    _tag: fc.constant("Due" as const),
    now: fc.integer({ min: 0, max: 100 }),
    deadline: fc.integer({ min: 0, max: 100 }),
    reason
  }),
  fc.record({ _tag: fc.constant("Planned" as const), tick: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ _tag: fc.constant("Lose" as const), reason }),
  fc.constant({ _tag: "Release" as const })
)

const run = (events: ReadonlyArray<Event>): ReadonlyArray<Phase> => {
  const phases: Array<Phase> = [P.Idle({ tick: 50 })]
  for (const e of events) phases.push(transition(phases[phases.length - 1]!, e))
  return phases
}

describe("a lease's phases (one transition function)", () => {
  it.prop("released is final; lost only ever becomes released", [fc.array(event, { maxLength: 40 })], ([events]) => {
    const phases = run(events)
    phases.forEach((phase, i) => {
      const next = phases[i + 1]
      if (next === undefined) return
      if (phase._tag === "Released") expect(next._tag).toBe("Released")
      if (phase._tag === "Lost") expect(["Lost", "Released"]).toContain(next._tag)
    })
  })

  it.prop("a held lease is lost exactly when its timer comes due at or past the deadline", [event], ([e]) => {
    for (const held of [P.Idle({ tick: 50 }), P.Busy()]) {
      const next = transition(held, e)
      const lost = e._tag === "Lose" || (e._tag === "Due" && e.now >= e.deadline)
      expect(next._tag === "Lost").toBe(lost)
    }
  })

  it("a due step makes an idle lease busy; planning the next step makes it idle again", () => {
    const busy = transition(P.Idle({ tick: 10 }), { _tag: "Due", now: 10, deadline: 100, reason: "unconfirmed" })
    expect(busy._tag).toBe("Busy")
    expect(transition(busy, { _tag: "Planned", tick: 40 })).toEqual(P.Idle({ tick: 40 }))
    const early = P.Idle({ tick: 10 })
    expect(transition(early, { _tag: "Due", now: 9, deadline: 100, reason: "unconfirmed" })).toBe(early)
  })
})
