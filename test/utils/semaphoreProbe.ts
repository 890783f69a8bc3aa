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
        redis.run(scripts.take.script, list, [
          token,
          String(n),
          String(lease),
          String(permits),
          keys.channel,
          "60000",
          String(options.alive ?? 1000),
          fair ? "1" : "0"
        ]),
      release: (token: string) => redis.run(scripts.release.script, list, [token, "3", keys.channel]),
      leave: (token: string) => redis.run(scripts.leave.script, list, [token, "3", keys.channel]),
      extend: (token: string, ms: number, mode: "add" | "set") =>
        redis.run(scripts.extend.script, list, [token, String(ms), mode, "60000"]),
      available: redis.run(scripts.available.script, list, ["3"]),
      line: readList(keys.queue)
    }
  })
