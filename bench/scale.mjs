// Leases at scale (issue 20 §2): one process holds N leases (lease 3 s, default keep-alive) on one
// redis-server, built libraries side by side (A/B, interleaved rounds), plain `node --expose-gc`:
//
//   taskset -c 1 node --expose-gc bench/scale.mjs redis://127.0.0.1:PORT "100,1000,10000" ROUNDS DIR...
//
// Each DIR is a checkout whose dist/ was built (`npx tsx scripts/build.ts`); the first is the baseline.
// Per row: acquiring N leases 200 at a time (ms), heap per held lease (KB, after a full GC), keep-alive
// over a 6 s window (EVALSHA/s and Redis commands/s from INFO commandstats; client CPU % of one core),
// releasing them (ms), and the keys left without a TTL afterwards. Prints one markdown table.
import { Effect, Exit, ManagedRuntime, Redacted, Scope } from "effect"
import { Redis as IORedis } from "ioredis"

const [url, ns = "100,1000,10000", roundsArg = "1", ...dirs] = process.argv.slice(2)
const sizes = ns.split(",").map(Number)
const rounds = Number(roundsArg)
const LEASE = 3000
const WINDOW = 6000
const admin = new IORedis(url)

const calls = async () => {
  const info = await admin.info("commandstats")
  let total = 0
  let evalsha = 0
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
    if (m[1] === "info") continue
    total += Number(m[2])
    if (m[1] === "evalsha" || m[1] === "eval") evalsha += Number(m[2])
  }
  return { total, evalsha }
}

const load = async (dir) => {
  const { Lock } = await import(`${dir}/dist/index.js`)
  const IoRedis = await import(`${dir}/dist/Redis/IoRedis.js`)
  return { Lock, layer: IoRedis.layer({ url: Redacted.make(url) }) }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const gc = async () => {
  for (let i = 0; i < 3; i++) {
    global.gc()
    await sleep(20)
  }
  return process.memoryUsage().heapUsed
}

const run = async ({ Lock, layer }, n, label) => {
  const rt = ManagedRuntime.make(layer)
  const prefix = `scale-${label}-${n}-${Math.random().toString(36).slice(2, 8)}:`
  await rt.runPromise(Effect.void)
  const scope = await rt.runPromise(Scope.make())
  const ids = Array.from({ length: n }, (_, i) => `order:${i}`)
  const heapBefore = await gc()
  const t0 = performance.now()
  await rt.runPromise(
    Effect.forEach(ids, (id) => Scope.extend(Lock.acquire({ id, prefix, lease: LEASE }), scope), {
      concurrency: 200,
      discard: true
    })
  )
  const acquireMs = performance.now() - t0
  await sleep(1500) // every lease past its first keep-alive step
  const heapHeld = await gc()
  const c0 = await calls()
  const cpu0 = process.cpuUsage()
  const w0 = performance.now()
  await sleep(WINDOW)
  const cpu = process.cpuUsage(cpu0)
  const elapsed = performance.now() - w0
  const c1 = await calls()
  const t1 = performance.now()
  await rt.runPromise(Scope.close(scope, Exit.void))
  const releaseMs = performance.now() - t1
  let cursor = "0"
  let immortal = 0
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) {
      const p = admin.pipeline()
      for (const k of keys) p.pttl(k)
      for (const [, ttl] of await p.exec()) if (ttl === -1) immortal++
      await admin.del(...keys)
    }
  } while (cursor !== "0")
  await rt.dispose()
  return {
    acquireMs,
    releaseMs,
    heapPerLeaseKB: (heapHeld - heapBefore) / n / 1024,
    scriptsPerS: ((c1.evalsha - c0.evalsha) / elapsed) * 1000,
    commandsPerS: ((c1.total - c0.total - 1) / elapsed) * 1000,
    cpuPct: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
    immortal
  }
}

const libs = await Promise.all(dirs.map(load))
const results = {}
for (let r = 0; r < rounds; r++) {
  for (const n of sizes) {
    const order = r % 2 === 0 ? libs.map((_, i) => i) : libs.map((_, i) => i).reverse()
    for (const i of order) {
      const row = await run(libs[i], n, `v${i}`)
      ;((results[n] ??= {})[i] ??= []).push(row)
      console.error(`round ${r} N=${n} ${dirs[i]}:`, JSON.stringify(row))
    }
  }
}
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const f = (x, d = 1) => x.toFixed(d)
console.log(
  "| build | N | acquire N (ms) | release N (ms) | heap / held lease (KB) | keep-alive scripts/s | Redis commands/s | client CPU (% of a core) | keys without TTL after |"
)
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (const n of sizes) {
  for (const [i, dir] of dirs.entries()) {
    const rows = results[n][i]
    const m = (k) => med(rows.map((x) => x[k]))
    console.log(
      `| ${dir} | ${n.toLocaleString("en")} | ${f(m("acquireMs"), 0)} | ${f(m("releaseMs"), 0)} | ${
        f(m("heapPerLeaseKB"))
      } | ${f(m("scriptsPerS"))} | ${f(m("commandsPerS"), 0)} | ${f(m("cpuPct"))} | ${m("immortal")} |`
    )
  }
}
admin.disconnect()
