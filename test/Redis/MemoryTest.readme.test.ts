/**
 * The README's "Testing your code" example, run as written (its imports pointed at src/), and a check
 * that the README still shows exactly this.
 */
// README begin
import { expect, it } from "@effect/vitest"
import { Effect, FastCheck, Fiber, TestClock } from "effect"
import { Lock } from "../../src/index.js"
import * as MemoryTest from "../../src/Redis/MemoryTest.js"

// Your code: a long job that must stop when it no longer holds its lock…
const syncInvoices = Effect.never.pipe(Lock.withLock({ id: "sync-invoices", lease: "3 seconds" }))

// …and a report that retries Redis faults.
const sendReport = Effect.succeed("sent").pipe(
  Lock.withLock({ id: "report" }),
  Effect.retry({ times: 3, while: (error) => error._tag === "RedisError" })
)

it.effect("the sync stops with LockLost when another process takes its lock", () =>
  Effect.gen(function*() {
    const sync = yield* Effect.fork(syncInvoices)
    yield* TestClock.adjust("1 second") // holding; the keep-alive ran once
    yield* MemoryTest.steal("sync-invoices")
    yield* TestClock.adjust("1 second") // the next keep-alive finds another owner
    const error = yield* Effect.flip(Fiber.join(sync))
    expect(error._tag).toBe("LockLost")
  }).pipe(Effect.provide(MemoryTest.layer)))

it.effect.prop(
  "up to 3 Redis faults in a row: the report is sent once",
  [FastCheck.integer({ min: 0, max: 3 })],
  ([faults]) =>
    Effect.gen(function*() {
      yield* MemoryTest.failNext(faults)
      expect(yield* sendReport).toBe("sent")
      // one acquisition (fence 1), released: only the fence counter is left, for 7 days
      expect(yield* MemoryTest.keyspace).toEqual({
        "effect-lock:lock:{report}:fence": { value: "1", pttl: 7 * 24 * 60 * 60 * 1000 }
      })
    }).pipe(Effect.provide(MemoryTest.layer)),
  { fastCheck: { numRuns: 20 } } // each run builds a fresh store: 20 runs cover 0–3 faults many times over
)
// README end

import * as fs from "node:fs"
import * as path from "node:path"

it("the README's testing example is this file's", () => {
  const readme = fs.readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8")
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) =>
    code.includes("effect-lock/Redis/MemoryTest")
  )
  const self = fs.readFileSync(import.meta.filename, "utf8")
  const shown = self.slice(self.indexOf("// README begin\n") + 16, self.indexOf("// README end"))
  expect(
    block?.replace(/from "effect-lock\/Redis\/MemoryTest"/, `from "../../src/Redis/MemoryTest.js"`)
      .replace(/from "effect-lock"/, `from "../../src/index.js"`)
  ).toBe(shown)
})
