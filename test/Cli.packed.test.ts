/**
 * The `effect-lock` bin from a packed install: `npm pack` of the package (its package.json, with the
 * JS compiled from src by esbuild: the types do not matter to the bin), installed with `effect` into an
 * empty directory, then `npx effect-lock`. It proves the `bin` entry and the shebang, and — as peers are
 * not installed (`--legacy-peer-deps`, as strict package managers do) — that every package the command
 * loads is a dependency. Packages come from npm's cache when they are there.
 */
import { describe, expect, it } from "@effect/vitest"
import { build } from "esbuild"
import { execFile } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
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

const exec = (file: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<Result>((resolve) => {
    execFile(file, args, { cwd, env: { ...process.env, REDIS_URL: "" } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
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
  it("npx effect-lock --help and --version work, and --redis finds ioredis", async () => {
    const pkg = join(work, "package")
    mkdirSync(pkg)
    copyFileSync("package.json", join(pkg, "package.json"))
    await build({
      entryPoints: sources("src"),
      outdir: join(pkg, "dist"),
      outbase: "src",
      platform: "node",
      format: "esm",
      logLevel: "error"
    })
    const packed = await exec("npm", ["pack", "--silent", "--pack-destination", work], pkg)
    expect(packed.code).toBe(0)
    const tarball = join(work, packed.stdout.trim().split("\n").at(-1)!)

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
        tarball,
        `effect@${JSON.parse(readFileSync("node_modules/effect/package.json", "utf8")).version}`
      ],
      app
    )
    expect(installed.stderr).toBe("")
    expect(installed.code).toBe(0)

    const help = await exec("npx", ["--no-install", "effect-lock", "--help"], app)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("run --id")
    expect(help.stdout).toContain("status --id")
    expect(help.stdout).toContain("Exit codes")
    const version = await exec("npx", ["--no-install", "effect-lock", "--version"], app)
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync("package.json", "utf8")).version)
    // 69 (Redis unreachable), not 64 (ioredis missing): the --redis backend came with the install.
    const down = await exec(
      "npx",
      ["--no-install", "effect-lock", "status", "--id", "x", "--redis", `redis://127.0.0.1:${await freePort()}`],
      app
    )
    expect(down.stderr).toContain("Redis")
    expect(down.code).toBe(69)
  }, 120_000)
})
