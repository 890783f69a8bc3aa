import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real redis-server processes are started per file; two cores, so keep the pool small.
    // A worker must answer vitest's RPC within 60 s, so no test blocks its event loop for long: commands
    // and compiles run in child processes (test/utils/typecheck.ts), long in-process loops let the event
    // loop turn (test/utils/live.ts turnEventLoop). Otherwise a busy machine fails the run with every
    // test green ("Timeout calling onTaskUpdate").
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
