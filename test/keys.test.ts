/**
 * Key names (issue 23 §7): every key of an id shares one non-empty hash tag, as Redis Cluster reads it
 * (the text between the first `{` and the next `}`, when not empty), whatever the id; ids that do not start
 * with `}` keep the names they always had; no two ids share a key name.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { DEFAULT_PREFIX, hashTag, lockKeys, semaphoreKeys } from "../src/internal/keys.js"

/** The part of a key Redis Cluster hashes (its hash tag, or the whole name when the tag is missing or empty). */
const hashed = (key: string): string => {
  const open = key.indexOf("{")
  if (open === -1) return key
  const close = key.indexOf("}", open + 1)
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

const id = FastCheck.oneof(
  FastCheck.string({ minLength: 1, maxLength: 12 }),
  FastCheck.string({ maxLength: 11 }).map((s) => `}${s}`),
  FastCheck.stringMatching(/^[}{%7D]{1,8}$/)
)

describe("key names", () => {
  it("ids without a leading } keep their names", () => {
    expect(lockKeys(DEFAULT_PREFIX, "report").lock).toBe("effect-lock:lock:{report}")
    expect(semaphoreKeys(DEFAULT_PREFIX, "a}b").queue).toBe("effect-lock:semaphore:{a}b}:queue")
    expect(hashTag("%7D")).toBe("{%7D}")
  })

  it("an id that starts with } is written with its % and } encoded: }x, }, }%", () => {
    expect(lockKeys(DEFAULT_PREFIX, "}x").lock).toBe("effect-lock:lock:%{%7Dx}")
    expect(lockKeys(DEFAULT_PREFIX, "}").fence).toBe("effect-lock:lock:%{%7D}:fence")
    expect(hashTag("}%")).toBe("%{%7D%25}")
  })

  it.prop("every key of an id hashes one non-empty tag, the same for all", [id], ([id]) => {
    for (const keys of [Object.values(lockKeys(DEFAULT_PREFIX, id)), Object.values(semaphoreKeys("p:", id))]) {
      const tags = new Set(keys.map(hashed))
      expect(tags.size).toBe(1)
      const [tag] = tags
      expect(keys.every((key) => key !== tag)).toBe(true) // a tag, not a whole name
    }
  })

  it.prop("two ids never share a key name", [id, id], ([a, b]) => {
    if (a === b) return
    const ofA = new Set([...Object.values(lockKeys(DEFAULT_PREFIX, a)), ...Object.values(semaphoreKeys("", a))])
    for (const key of [...Object.values(lockKeys(DEFAULT_PREFIX, b)), ...Object.values(semaphoreKeys("", b))]) {
      expect(ofA.has(key)).toBe(false)
    }
  })
})
