/**
 * A standalone reproduction of an Effect 3.22 behaviour (no effect-lock involved):
 * `Effect.scoped(Effect.acquireRelease(…).pipe(Effect.timeout(…)))`, repeated inside ONE long-lived fiber,
 * leaves entries on that fiber's runtime-flags FiberRef stack (`FiberRef.currentRuntimeFlags`) on every
 * iteration, and they are never popped. Every later step that copies or diffs the fiber's refs walks the
 * longer stack, so each call gets slower and the heap grows.
 *
 *   npx tsx bench/fiberref-growth.ts [iterations=10000]
 *
 * Prints, every tenth of the run, the stack depths and the time per call over that stretch. The same loop
 * without `Effect.timeout` (printed last) stays flat: the timeout's race inside the scoped acquisition is
 * what leaks.
 */
import { Effect } from "effect"
import { maxFiberRefStackDepth, runtimeFlagsStackDepth } from "../test/utils/fiberRefDepth.js"

const iterations = Number(process.argv[2] ?? 10_000)

/** The shape of a lock acquisition with a timeout: a scoped resource whose acquisition is timed out. */
const leaky = Effect.scoped(
  Effect.acquireRelease(Effect.void, () => Effect.void).pipe(Effect.timeout("5 seconds"))
)
const flat = Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void))

const run = (label: string, body: Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    console.log(`\n${label}: ${iterations} iterations in one fiber`)
    console.log("iterations   runtime-flags stack   deepest FiberRef stack   µs per call (this stretch)")
    const step = Math.max(1, Math.floor(iterations / 10))
    let start = performance.now()
    for (let i = 1; i <= iterations; i++) {
      yield* body
      if (i % step === 0) {
        const perCall = ((performance.now() - start) * 1000) / step
        const flags = yield* runtimeFlagsStackDepth
        const deepest = yield* maxFiberRefStackDepth
        console.log(
          `${String(i).padStart(10)}   ${String(flags).padStart(19)}   ${String(deepest).padStart(22)}   ${
            perCall.toFixed(1).padStart(26)
          }`
        )
        start = performance.now()
      }
    }
    return yield* maxFiberRefStackDepth
  })

const main = async () => {
  // Each loop in a fresh fiber of its own.
  const leakyDepth = await Effect.runPromise(run("scoped(acquireRelease(…).pipe(timeout(…)))", leaky))
  const flatDepth = await Effect.runPromise(run("scoped(acquireRelease(…)) without timeout", flat))
  console.log(
    `\ndeepest FiberRef stack after ${iterations} iterations: ${leakyDepth} with timeout, ${flatDepth} without`
  )
  console.log(`heap used: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MiB`)
}

main()
