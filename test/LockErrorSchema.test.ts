/**
 * The errors as values that cross a wire: each `LockErrorSchema` schema encodes an error to
 * `{ _tag, ...fields }` (JSON, as RPC and workers send it, inside an `Exit` as an RPC's reply carries it)
 * and decodes it to an instance of the very class the library fails with; every error class of
 * `LockError` has one; and the Promise API's Error classes still take the decoded values.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Equal, Exit, Schema } from "effect"
import { schemaOf } from "../src/internal/error/schema.js"
import { fromFailure } from "../src/internal/promise/errors.js"
import * as LockError from "../src/LockError.js"
import * as LockErrorSchema from "../src/LockErrorSchema.js"
import * as Promised from "../src/promise.js"

const samples = [
  new LockError.LockNotAcquired({ id: "report", remaining: 250, reason: "held" }),
  new LockError.LockNotAcquired({ id: "report", remaining: 0, reason: "timeout" }),
  new LockError.LockLost({ id: "ledger", fence: 42, reason: "unconfirmed" }),
  new LockError.InvalidOptions({ option: "lease", expected: "a duration", received: "-1" }),
  new LockError.RedisError({ operation: "eval lock.acquire", detail: "connect ECONNREFUSED 127.0.0.1:6399" }),
  new LockError.LeadershipLost({ id: "scheduler", term: 12, reason: "unconfirmed" })
] as const

const json = Schema.parseJson(LockErrorSchema.LockError)

describe("LockErrorSchema", () => {
  it.effect("each error goes through JSON and back as an instance of its class, fields and message kept", () =>
    Effect.gen(function*() {
      for (const error of samples) {
        const text = yield* Schema.encode(json)(error)
        expect(JSON.parse(text)).toEqual({ ...error }) // `{ _tag, ...fields }`, nothing else (no stack)
        expect(Object.keys(JSON.parse(text))[0]).toBe("_tag")
        const back = yield* Schema.decode(json)(text)
        expect(back).toBeInstanceOf(error.constructor)
        expect(back).toBeInstanceOf(Error)
        expect(back._tag).toBe(error._tag)
        expect(back.message).toBe(error.message)
        expect(Equal.equals(back, error)).toBe(true)
        expect(LockError.isLockError(back)).toBe(true)
      }
    }))

  it.effect("each class's own schema; a wrong tag or field is a ParseError, not a value", () =>
    Effect.gen(function*() {
      const lost = yield* Schema.decodeUnknown(LockErrorSchema.LockLost)({
        _tag: "LockLost",
        id: "a",
        fence: 3,
        reason: "expired"
      })
      expect(lost).toBeInstanceOf(LockError.LockLost)
      expect(lost.fence).toBe(3)
      for (
        const bad of [
          { _tag: "LockLost", id: "a", fence: 3, reason: "stolen" },
          { _tag: "LockLost", id: "a", reason: "expired" },
          { _tag: "LockNotAcquired", id: "a", fence: 3, reason: "expired" },
          { id: "a", fence: 3, reason: "expired" }
        ]
      ) {
        const error = yield* Effect.flip(Schema.decodeUnknown(LockErrorSchema.LockLost)(bad))
        expect(error._tag).toBe("ParseError")
      }
      const other = yield* Effect.flip(Schema.decodeUnknown(LockErrorSchema.LockError)({ _tag: "Nope" }))
      expect(other._tag).toBe("ParseError")
    }))

  it.effect("an Exit with a LockError crosses as an RPC reply does (Schema.Exit), the error intact", () =>
    Effect.gen(function*() {
      const reply = Schema.parseJson(Schema.Exit({
        success: Schema.Number,
        failure: LockErrorSchema.LockError,
        defect: Schema.Defect
      }))
      const failed = Exit.fail(samples[2])
      const back = yield* Schema.decode(reply)(yield* Schema.encode(reply)(failed))
      expect(Exit.isFailure(back)).toBe(true)
      const error = Exit.isFailure(back) ? Cause.failureOption(back.cause) : undefined
      expect(error?._tag).toBe("Some")
      const value = error?._tag === "Some" ? error.value : undefined
      expect(value).toBeInstanceOf(LockError.LockLost)
      expect(Equal.equals(value, samples[2])).toBe(true)
      expect(yield* Schema.decode(reply)(yield* Schema.encode(reply)(Exit.succeed(7)))).toEqual(Exit.succeed(7))
    }))

  it("every error class LockError exports has a schema of its name in LockErrorSchema", () => {
    const classes = Object.entries(LockError).filter(([, value]) =>
      typeof value === "function" && value.prototype instanceof Error
    )
    expect(classes.map(([name]) => name).sort()).toEqual(
      ["InvalidOptions", "LockLost", "LockNotAcquired", "RedisError"].concat(
        // errors added since (e.g. `LeadershipLost`) need their schema too: the check below covers them
        classes.map(([name]) => name).filter((n) =>
          !["InvalidOptions", "LockLost", "LockNotAcquired", "RedisError"].includes(n)
        )
      ).sort()
    )
    for (const [name] of classes) {
      expect(Schema.isSchema((LockErrorSchema as Record<string, unknown>)[name]), name).toBe(true)
    }
  })

  it("a schema whose fields are not exactly its class's does not compile", () => {
    // @ts-expect-error a field is missing
    schemaOf(LockError.LockLost, "LockLost", { id: Schema.String, fence: Schema.Number })
    // @ts-expect-error a literal the class does not have
    schemaOf(LockError.LockLost, "LockLost", { id: Schema.String, fence: Schema.Number, reason: Schema.String })
    // @ts-expect-error a field the class does not have
    schemaOf(LockError.RedisError, "RedisError", { operation: Schema.String, detail: Schema.String, x: Schema.Number })
    // @ts-expect-error another class's tag
    schemaOf(LockError.RedisError, "LockLost", { operation: Schema.String, detail: Schema.String })
    expect(Schema.isSchema(schemaOf(LockError.RedisError, "RedisError", {
      operation: Schema.String,
      detail: Schema.String
    }))).toBe(true)
  })

  it("the Promise API's Error classes take a decoded error: instanceof, _tag, fields, cause", () => {
    const decoded = Schema.decodeSync(json)(Schema.encodeSync(json)(samples[0]))
    for (const error of [fromFailure(decoded), new Promised.LockNotAcquired(decoded as LockError.LockNotAcquired)]) {
      expect(error).toBeInstanceOf(Promised.LockNotAcquired)
      expect(error).toBeInstanceOf(Error)
      const typed = error as Promised.LockNotAcquired
      expect(typed._tag).toBe("LockNotAcquired")
      expect(typed.name).toBe("LockNotAcquired")
      expect([typed.id, typed.remaining, typed.reason]).toEqual(["report", 250, "held"])
      expect(typed.cause).toBe(decoded)
      expect(typed.message).toBe(samples[0].message)
    }
  })
})
