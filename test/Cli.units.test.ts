/**
 * The command line's pure parts: durations, escaping, and the masking of a password in argv.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as duration from "../cli/src/internal/duration.js"
import { escape, json, quote } from "../cli/src/internal/escape.js"
import { masked } from "../cli/src/internal/scrub.js"

describe("effect-lock's parts", () => {
  it("durations: a number and a unit, short or as Effect spells them; a bare number only as 0", () => {
    const ok: ReadonlyArray<readonly [string, number]> = [
      ["1500ms", 1500],
      ["30s", 30_000],
      ["30 seconds", 30_000],
      ["1 second", 1000],
      ["10s", 10_000],
      ["0.7s", 700],
      ["5m", 300_000],
      ["5 minutes", 300_000],
      ["2h", 7_200_000],
      ["1 day", 86_400_000],
      ["1500 millis", 1500],
      ["0", 0]
    ]
    for (const [text, ms] of ok) expect(duration.parse(text, 0), text).toEqual(Either.right(ms))
    for (const text of ["10", "1500", "", "5 parsecs", "-1s", "0.0005s", "30 s s", "25d"]) {
      expect(Either.isLeft(duration.parse(text, 0)), text).toBe(true)
    }
    expect(Either.isLeft(duration.parse("0", 1))).toBe(true)
    expect(Either.getLeft(duration.parse("10", 1))).toEqual(
      expect.objectContaining({ value: expect.stringContaining("a number and a unit") })
    )
  })

  it("escaping: control characters, C1, line separators and bidi overrides become visible escapes", () => {
    expect(escape("a\nb\r\tc\u001b[31m\u007f\u009b\u2028\u202e")).toBe("a\\nb\\r\\tc\\x1b[31m\\x7f\\x9b\\u2028\\u202e")
    expect(escape("plain ünïcode and \\ backslash")).toBe("plain ünïcode and \\ backslash")
    expect(quote(`a"b\\c`)).toBe(`"a\\"b\\\\c"`)
    const text = json({ id: "x\u009by\u2028" })
    expect(text).toBe(`{"id":"x\\u009by\\u2028"}`)
    expect(JSON.parse(text)).toEqual({ id: "x\u009by\u2028" })
  })

  it("argv: the password of every --redis is masked, nothing after --, nothing without a password", () => {
    expect(masked(["node", "bin", "run", "--redis", "redis://u:pw@h:1", "--", "--redis", "redis://:x@h"])).toEqual([
      "node",
      "bin",
      "run",
      "--redis",
      "redis://u:***@h:1",
      "--",
      "--redis",
      "redis://:x@h"
    ])
    expect(masked(["node", "bin", "run", "--redis=rediss://:pw@h"])).toEqual([
      "node",
      "bin",
      "run",
      "--redis=rediss://:***@h"
    ])
    expect(masked(["node", "bin", "run", "--redis", "redis://h:1"])).toBeUndefined()
  })
})
