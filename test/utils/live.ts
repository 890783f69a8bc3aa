/**
 * Helpers of the tests that wait for something: wait for a condition (never for time), count what a real
 * Redis has run, and a raw ioredis client for looking at what Redis holds.
 */
import { Clock, Duration, Effect } from "effect"
import { Redis as IORedis } from "ioredis"

/** The wall clock, whatever clock the test runs on. */
const wall = Clock.make()

/** Looks `eventually` takes one right after another, before it sleeps between looks. */
const YIELDS = 10

/**
 * Runs `self` until `check` holds of its value, and returns that value; fails when `within` has passed
 * first. Between looks it yields (the first few times: in-process fibers are quick), then sleeps 10 ms on
 * the wall clock, whatever clock the test runs on: under `TestClock` (the Memory store) no test time passes
 * while it waits. A failure of `self` ends the wait (nothing is retried behind the test's back).
 */
export const eventually = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  within: Duration.DurationInput = "20 seconds"
): Effect.Effect<A, E | Error, R> => {
  const poll = (n: number): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      self,
      (a) =>
        check(a) ? Effect.succeed(a) : Effect.zipRight(
          n < YIELDS ? Effect.yieldNow() : wall.sleep(Duration.millis(10)),
          Effect.suspend(() => poll(n + 1))
        )
    )
  const timeout = Effect.zipRight(
    wall.sleep(Duration.decode(within)),
    Effect.fail(new Error(`condition not met within ${Duration.format(within)}`))
  )
  return Effect.raceFirst(Effect.suspend(() => poll(0)), timeout)
}

/** A plain ioredis client for the test itself, quit with the scope. */
export const raw = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (c) => Effect.promise(() => c.quit().catch(() => "")))

/** How many times a node has run `command` (INFO commandstats, scripts' inner calls included). */
export const commandCalls = (node: { readonly info: (section: "commandstats") => Promise<string> }) =>
(
  command: string
): Effect.Effect<number> =>
  Effect.promise(() => node.info("commandstats")).pipe(
    Effect.map((info) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0))
  )

/** How many scripts a node has run (EVALSHA and EVAL calls). */
export const scriptCalls = (node: { readonly info: (section: "commandstats") => Promise<string> }) =>
  Effect.zipWith(commandCalls(node)("evalsha"), commandCalls(node)("eval"), (a, b) => a + b)

/**
 * Lets the event loop turn once. Effect hands control back to the event loop only every few thousand
 * yields, so a long in-process loop (thousands of acquisitions on the Memory store) holds the worker's
 * event loop for seconds, tens on a loaded machine, and with it the worker's RPC with vitest: loops that
 * long call this now and then.
 */
export const turnEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})
