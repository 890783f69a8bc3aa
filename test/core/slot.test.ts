/** Redis Cluster's hash slots, as the servers compute them (values from the Redis Cluster specification). */
import { expect, it } from "@effect/vitest"
import { readWriteKeys } from "../../src/internal/keys.js"
import { hashTag, slotOf } from "../../src/internal/slot.js"

it("slots match Redis's CRC16 of the key, or of its hash tag", () => {
  expect(slotOf("foo")).toBe(12182)
  expect(slotOf("bar")).toBe(5061)
  expect(slotOf("123456789")).toBe(0x31c3 & 16383)
  expect(slotOf("{user1000}.following")).toBe(slotOf("{user1000}.followers"))
  expect(hashTag("foo{}{bar}")).toBe("foo{}{bar}")
  expect(hashTag("foo{{bar}}zap")).toBe("{bar")
  expect(hashTag("foo{bar}{zap}")).toBe("bar")
  // A lock id's key: ids with a common {tag} at their start share a slot.
  expect(slotOf("effect-lock:lock:{{order-7}:stock}")).toBe(slotOf("effect-lock:lock:{{order-7}:invoice}"))
})

it("every key of a read-write lock id shares one slot, an id starting with } too", () => {
  for (const id of ["prices", "}prices", "{tag}:x", "a}b{c"]) {
    const keys = Object.values(readWriteKeys("effect-lock:", id))
    expect(new Set(keys.map(slotOf)).size).toBe(1)
  }
})
