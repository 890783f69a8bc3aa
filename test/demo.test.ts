/** `npm run demo` must keep working with nothing but Node: run it as a process and read what it shows. */
import { Command } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"

it.scopedLive(
  "the demo runs on the embedded store and shows exclusion, fencing, a lost lease and an election",
  () =>
    Effect.gen(function*() {
      const env = { ...process.env }
      delete env.REDIS_URL
      const output = yield* Command.make(process.execPath, "--import", "tsx", "demo/main.ts").pipe(
        Command.env(env),
        Command.string
      )
      expect(output).toContain("embedded Memory store")
      expect(output).toContain("theirs.release       → false")
      expect(output).toMatch(/8 critical sections, fences \d+ \+ 0, 1, 2, 3, 4, 5, 6, 7/)
      expect(output).toContain("slow: interrupted with LockLost")
      expect(output).not.toContain("should not happen")
      expect(output).toContain("5 exports done, at most 2 at once")
      expect(output).toMatch(/5 readers and 1 writer: up to [2-5] readers at once, the writer beside a reader 0 times/)
      expect(output).toMatch(/a writer with fence (\d+) downgraded to a reader of version \1/)
      expect(output).toContain("20 transfers, no deadlock")
      const [, stale, seen] = output.match(
        /store: rejected a stale holder's write with fence (\d+) \(it has seen (\d+)\)/
      )!
      expect(Number(seen)).toBe(Number(stale) + 1)
      const terms = output.match(
        /observed: nobody → worker-\w#(\d+) → nobody → worker-\w#(\d+) → nobody → worker-\w#(\d+) → nobody/
      )!.slice(1).map(Number)
      expect(terms).toEqual([terms[0], terms[0]! + 1, terms[0]! + 2])
    }).pipe(Effect.provide(NodeContext.layer)),
  60_000
)
