/**
 * The `effect-lock` bin from a packed install: `npm pack` of the library and of the command line's
 * package `effect-lock-cli` (each its package.json, with the JS compiled from its sources by esbuild: the
 * types do not matter to the bin), both installed into an empty directory, then `npx effect-lock`. Peers are not installed (`--legacy-peer-deps`, as strict package
 * managers do), so this proves that every package the command loads is a dependency of one of the two
 * (`effect` is the command line's own). Packages come from npm's cache when they are there.
 */
import { describe, expect, it } from "@effect/vitest"
import { build } from "esbuild"
import { execFile } from "node:child_process"
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"

const work = mkdtempSync(join(tmpdir(), "effect-lock-packed-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const exec = (file: string, args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) =>
  new Promise<Result>((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: { ...process.env, REDIS_URL: "", ...env } },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  })

const sources = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : []
  })

/** A port nobody listens on. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

describe("effect-lock from a packed install", () => {
  it("npx effect-lock --help and --version work, --redis finds ioredis, Upstash needs no @upstash/redis", async () => {
    /** A package directory: its package.json, and its sources compiled to dist/; packed. */
    const pack = async (name: string, manifest: string, src: string) => {
      const pkg = join(work, name)
      mkdirSync(pkg)
      copyFileSync(manifest, join(pkg, "package.json"))
      await build({
        entryPoints: sources(src),
        outdir: join(pkg, "dist"),
        outbase: src,
        platform: "node",
        format: "esm",
        logLevel: "error"
      })
      const packed = await exec("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", work], pkg)
      expect(packed.code).toBe(0)
      return join(work, packed.stdout.trim().split("\n").at(-1)!)
    }
    const [library, cli] = await Promise.all([
      pack("library", "package.json", "src"),
      pack("cli", "cli/package.json", "cli/src")
    ])

    const app = join(work, "app")
    mkdirSync(app)
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true }))
    const installed = await exec(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--ignore-scripts",
        "--legacy-peer-deps",
        "--loglevel=error",
        library,
        cli
      ],
      app
    )
    expect(installed.stderr).toBe("")
    expect(installed.code).toBe(0)

    // npx as a user would type it; then the same bin link directly (the shebang makes it executable).
    const bin = join(app, "node_modules", ".bin", "effect-lock")
    const port = await freePort()
    const [help, version, down, upstash] = await Promise.all([
      exec("npx", ["--no-install", "effect-lock", "--help"], app),
      exec(bin, ["--version"], app),
      exec(bin, ["status", "--id", "x", "--redis", `redis://127.0.0.1:${port}`], app),
      exec(bin, ["status", "--id", "x"], app, {
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`,
        UPSTASH_REDIS_REST_TOKEN: "t0ken"
      })
    ])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("run --id")
    expect(help.stdout).toContain("status --id")
    expect(help.stdout).toContain("Exit codes")
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync("cli/package.json", "utf8")).version)
    // 69 (Redis unreachable), not 64 (ioredis missing): the --redis backend came with the install.
    expect(down.stderr).toContain("Redis")
    expect(down.code).toBe(69)
    // Upstash without @upstash/redis (an optional peer, for layerClient only): the layer speaks the REST
    // API itself, so the server is tried and found unreachable (69), not a missing package (64).
    expect(upstash.stderr).toContain(`connect ECONNREFUSED 127.0.0.1:${port}`)
    expect(upstash.code).toBe(69)
  }, 120_000)
})
