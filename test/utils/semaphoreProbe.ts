/** Runs the semaphore's scripts directly, as one owner token or another would (tests only). */
import { Effect } from "effect"
import { semaphoreKeyList, semaphoreKeys } from "../../src/internal/keys.js"
import * as scripts from "../../src/internal/semaphore/scripts.js"
import { Redis } from "../../src/Redis.js"
import { readList } from "./probe.js"

/** The scripts of the semaphore `id` (default prefix, permits 3 unless said; waiters alive for `alive` ms). */
export const raw = (id: string, options: { readonly alive?: number } = {}) =>
  Effect.map(Redis, (redis) => {
    const keys = semaphoreKeys("effect-lock:", id)
    const list = semaphoreKeyList(keys)
    return {
      take: (token: string, n: number, lease: number, fair: boolean, permits = 3) =>
        scripts.take.run(redis, list, {
          token,
          asked: String(n),
          lease: String(lease),
          permits: String(permits),
          channel: keys.channel,
          lineTtl: "60000",
          aliveMs: String(options.alive ?? 1000),
          fenceTtl: String(7 * 24 * 60 * 60 * 1000),
          fair: fair ? "1" : "0",
          sharded: "0"
        }),
      release: (token: string) => redis.run(scripts.release.script, list, [token, "3", keys.channel]),
      leave: (token: string) => redis.run(scripts.leave.script, list, [token, "3", keys.channel]),
      extend: (token: string, ms: number, mode: "add" | "set") =>
        redis.run(scripts.extend.script, list, [token, String(ms), mode, "60000"]),
      available: redis.run(scripts.available.script, list, ["3"]),
      line: readList(keys.queue)
    }
  })
