/**
 * ioredis 6 beside ioredis 5 (the package's own dev dependency): a `Redis` or `Cluster` of either version
 * type-checks with `IoRedis.layerClient` and the Promise API, and the Lock and Semaphore conformance
 * suites pass over an ioredis 6 client (which speaks RESP3 where the server offers it).
 */
import { expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Redis as IORedis6 } from "ioredis6"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as IoRedis from "../../src/Redis/IoRedis.js"
import { onServer } from "../conformance/backends.js"
import { lockConformance } from "../conformance/lock.js"
import { semaphoreConformance } from "../conformance/semaphore.js"
import * as RedisServer from "../utils/RedisServer.js"
import { typecheck } from "../utils/typecheck.js"

const root = path.resolve(import.meta.dirname, "../..")

it("a Redis and a Cluster of ioredis 5 and of ioredis 6 type-check with layerClient and the Promise API", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-lock-ioredis6-"))
  const consumer = (module: string) => `
import { Cluster, Redis } from "${module}"
import * as IoRedis from "effect-lock/Redis/IoRedis"
import { Lock } from "effect-lock/promise"
export const single = IoRedis.layerClient(new Redis())
export const cluster = IoRedis.layerClient(new Cluster([{ host: "127.0.0.1", port: 7000 }]))
export const lock = new Lock({ id: "report", redis: new Redis() })
`
  const files = ["ioredis", "ioredis6"].map((module) => {
    const file = path.join(dir, `${module}.ts`)
    fs.writeFileSync(file, consumer(module))
    return file
  })
  // the check can fail: a client of another ioredis than the layer's is rejected by a nominal type
  const wrong = path.join(dir, "wrong.ts")
  fs.writeFileSync(wrong, `import { Redis } from "ioredis6"\nexport const n: number = new Redis()\n`)
  const problems = await typecheck([{
    name: "consumers",
    files: [...files, wrong],
    options: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
      baseUrl: root,
      paths: { "effect-lock": ["src/index.ts"], "effect-lock/*": ["src/*.ts"], "*": ["node_modules/*"] }
    }
  }])
  fs.rmSync(dir, { recursive: true, force: true })
  expect(problems.consumers!.filter((line) => !line.includes("wrong.ts"))).toEqual([])
  expect(problems.consumers!.some((line) => line.includes("wrong.ts"))).toBe(true)
}, 120_000)

/** A client of ioredis 6 on the file's redis-server, for each use. */
const ioredis6 = Layer.unwrapScoped(
  Effect.gen(function*() {
    const server = yield* RedisServer.RedisServer
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new IORedis6(server.url)),
      (client) => Effect.promise(() => client.quit().catch(() => "closed"))
    )
    return IoRedis.layerClient(client)
  })
)

layer(RedisServer.layer, { timeout: 30_000, excludeTestServices: true })("ioredis 6", (it) => {
  const backend = onServer("ioredis 6 (redis-server)", it, ioredis6)
  lockConformance(backend)
  semaphoreConformance(backend)
})
