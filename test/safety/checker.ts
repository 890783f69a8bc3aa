/**
 * The multi-process mutual-exclusion checker: P worker processes × K critical sections against one
 * redis-server, then three checks on what they did. Used by the test suite (small defaults) and by
 * `npm run check:safety` (larger ones).
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { Effect, Stream } from "effect"
import { Cluster, Redis as IORedis } from "ioredis"

export interface Section {
  readonly process: number
  readonly fence: number
  /** Redis TIME, microseconds. */
  readonly start: number
  readonly end: number
}

export interface Report {
  readonly processes: number
  readonly sectionsPerProcess: number
  readonly sections: ReadonlyArray<Section>
  readonly counter: number
  /** Pairs of sections (in start order) where the next began before the previous ended. */
  readonly overlaps: ReadonlyArray<readonly [Section, Section]>
  /** Pairs (in start order) whose fences do not strictly increase. */
  readonly fenceInversions: ReadonlyArray<readonly [Section, Section]>
  readonly exitCodes: ReadonlyArray<number>
}

/**
 * A plain client for a checker URL: `redis://…` is one server; `redis+cluster://host:port,host:port,…`
 * is a Redis Cluster given by its seed nodes.
 */
export const clusterNodes = (url: string): ReadonlyArray<string> | undefined =>
  url.startsWith("redis+cluster://") ? url.slice("redis+cluster://".length).split(",") : undefined

export const plainClient = (url: string): IORedis | Cluster => {
  const nodes = clusterNodes(url)
  return nodes === undefined
    ? new IORedis(url)
    : new Cluster(nodes.map((node) => ({ host: node.split(":")[0]!, port: Number(node.split(":")[1]) })))
}

/** Spawns one worker process and collects its JSON lines. */
export const spawnWorker = (args: ReadonlyArray<string>) =>
  Command.make(process.execPath, "--import", "tsx", "test/safety/worker.ts", ...args).pipe(Command.start)

export const lines = (stream: Stream.Stream<Uint8Array, unknown>) => stream.pipe(Stream.decodeText(), Stream.splitLines)

export const run = (options: {
  readonly redisUrl: string
  readonly processes: number
  readonly sections: number
  readonly lease?: number
}): Effect.Effect<Report, unknown, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const tag = `safety-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const counterKey = `${tag}:counter`
    const runOne = (n: number) =>
      Effect.scoped(Effect.gen(function*() {
        const proc = yield* spawnWorker([
          "sections",
          options.redisUrl,
          tag,
          counterKey,
          String(options.sections),
          String(options.lease ?? 2000)
        ])
        const out = yield* lines(proc.stdout).pipe(
          Stream.filter((line) => line.startsWith("{")),
          Stream.map((line) => ({ process: n, ...(JSON.parse(line) as Omit<Section, "process">) })),
          Stream.runCollect
        )
        const code = yield* proc.exitCode
        return { sections: Array.from(out), code: Number(code) }
      }))
    const results = yield* Effect.all(Array.from({ length: options.processes }, (_, n) => runOne(n)), {
      concurrency: "unbounded"
    })
    const client = plainClient(options.redisUrl)
    const counter = Number(yield* Effect.promise(() => client.get(counterKey)))
    yield* Effect.promise(() => client.del(counterKey).then(() => client.quit()))

    const sections = results.flatMap((r) => r.sections).sort((a, b) => a.start - b.start)
    const pairs = sections.slice(1).map((next, i) => [sections[i]!, next] as const)
    return {
      processes: options.processes,
      sectionsPerProcess: options.sections,
      sections,
      counter,
      overlaps: pairs.filter(([a, b]) => b.start < a.end),
      fenceInversions: pairs.filter(([a, b]) => b.fence <= a.fence),
      exitCodes: results.map((r) => r.code)
    }
  })
