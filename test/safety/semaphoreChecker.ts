/**
 * The semaphore's multi-process checker: P worker processes (three fibers each) × K sections, each under
 * one permit, against one redis-server; then what they did. Used by the test suite (small defaults) and by
 * `npm run check:safety` (larger ones).
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { Effect, Stream } from "effect"
import { Redis as IORedis } from "ioredis"

export interface Section {
  readonly fence: number
  /** Redis TIME, microseconds. */
  readonly start: number
  readonly end: number
}

export interface Report {
  readonly sections: ReadonlyArray<Section>
  readonly counter: number
  /** The most sections inside at once. */
  readonly mostInside: number
  /** Whether every section had a fence of its own. */
  readonly fencesUnique: boolean
  readonly exitCodes: ReadonlyArray<number>
}

export const spawnWorker = (args: ReadonlyArray<string>) =>
  Command.make(process.execPath, "--import", "tsx", "test/safety/semaphoreWorker.ts", ...args).pipe(Command.start)

export const jsonLines = <A>(stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filter((l) => l.startsWith("{")),
    Stream.map((l) => JSON.parse(l) as A)
  )

/** The most sections inside at once: a sweep over starts (+1) and ends (−1), ends first on a tie. */
export const mostInside = (sections: ReadonlyArray<Section>): number => {
  const events = sections.flatMap((s) => [[s.start, 1], [s.end, -1]] as const).sort((a, b) =>
    a[0] - b[0] || a[1] - b[1]
  )
  let inside = 0
  let most = 0
  for (const [, d] of events) most = Math.max(most, inside += d)
  return most
}

export const run = (options: {
  readonly redisUrl: string
  readonly processes: number
  readonly sections: number
  readonly permits: number
  readonly lease?: number
}): Effect.Effect<Report, unknown, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const id = `semaphore-safety-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const counterKey = `${id}:counter`
    const runOne = Effect.scoped(Effect.gen(function*() {
      const proc = yield* spawnWorker([
        "sections",
        options.redisUrl,
        id,
        counterKey,
        String(options.sections),
        String(options.lease ?? 2000),
        String(options.permits)
      ])
      const out = yield* jsonLines<Section>(proc.stdout).pipe(Stream.runCollect)
      return { sections: Array.from(out), code: Number(yield* proc.exitCode) }
    }))
    const results = yield* Effect.all(Array.from({ length: options.processes }, () => runOne), {
      concurrency: "unbounded"
    })
    const client = new IORedis(options.redisUrl)
    const counter = Number(yield* Effect.promise(() => client.get(counterKey)))
    yield* Effect.promise(() => client.del(counterKey).then(() => client.quit()))
    const sections = results.flatMap((r) => r.sections)
    return {
      sections,
      counter,
      mostInside: mostInside(sections),
      fencesUnique: new Set(sections.map((s) => s.fence)).size === sections.length,
      exitCodes: results.map((r) => r.code)
    }
  })
