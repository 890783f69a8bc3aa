/**
 * The package as a user gets it. A clean clone of HEAD (no `dist/`) is packed with `npm pack`, which
 * must build it (`prepare`); the tarball is installed into a fresh project next to the peers; every
 * entry point of `exports` must then load from ESM (`import`) and CommonJS (`require`), and typecheck
 * for NodeNext, Node16 (`.mts` and `.cts`), Bundler and Node10 consumers.
 *
 * Installs come from the npm cache (`--prefer-offline`) with the versions this checkout uses, so the test
 * needs no network once `npm install` has run here. Every command and compile runs in a child process,
 * awaited: the worker's event loop stays free for vitest's RPC (see ./utils/typecheck.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Job, typecheck } from "./utils/typecheck.js"

const root = path.resolve(import.meta.dirname, "..")
const version = (name: string): string =>
  (JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")) as { version: string })
    .version

/**
 * Runs a command. Of the `npm_*` variables `npm test` sets, only the user's configuration (`npm_config_*`:
 * cache, registry) is passed on, not this package's own (`npm_package_*`, `npm_lifecycle_*`).
 */
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || /^npm_config_/i.test(key))
  )
  return new Promise((resolve, reject) => {
    execFile(command, args, {
      cwd,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      env: {
        ...env,
        npm_config_loglevel: "error",
        npm_config_update_notifier: "false",
        npm_config_fund: "false",
        npm_config_audit: "false"
      }
    }, (error, stdout, stderr) =>
      error === null
        ? resolve(stdout)
        : reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stderr}`)))
  })
}

let tmp: string
let clone: string
let app: string
let packed: ReadonlyArray<string>
let tarball: string
/** The subpaths of `exports` a user may import, e.g. `effect-lock/Redis/Memory`. */
let entries: ReadonlyArray<string>

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "effect-lock-pack-"))
  clone = path.join(tmp, "clone")
  app = path.join(tmp, "app")
  await run("git", ["clone", "--quiet", "--depth", "1", `file://${root}`, clone], tmp)
  expect(fs.existsSync(path.join(clone, "dist"))).toBe(false)
  // the clone gets this checkout's devDependencies (the compiler) without another install
  fs.symlinkSync(path.join(root, "node_modules"), path.join(clone, "node_modules"), "dir")
  const [pack] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", tmp], clone)) as Array<
    { filename: string; files: Array<{ path: string }> }
  >
  packed = pack!.files.map((file) => file.path)
  tarball = pack!.filename

  const manifest = JSON.parse(fs.readFileSync(path.join(clone, "package.json"), "utf8")) as {
    exports: Record<string, unknown>
  }
  entries = Object.entries(manifest.exports)
    .filter(([subpath, target]) => target !== null && !subpath.includes("*") && subpath !== "./package.json")
    .map(([subpath]) => path.posix.join("effect-lock", subpath))

  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  await run("npm", [
    "install",
    "--prefer-offline",
    "--ignore-scripts",
    "--no-package-lock",
    path.join(tmp, pack!.filename),
    ...["effect", "ioredis", "@upstash/redis", "@types/node"].map((name) => `${name}@${version(name)}`)
  ], app)
}, 240_000)

afterAll(() => {
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true })
})

describe("the packed package", () => {
  it("ships the build (ESM, CommonJS, declarations) and the license: no sources, no source maps, no bin", () => {
    for (
      const file of [
        "dist/index.js",
        "dist/index.d.ts",
        "dist/cjs/index.js",
        "dist/cjs/index.d.ts",
        "dist/cjs/package.json",
        "LICENSE",
        "README.md"
      ]
    ) {
      expect(packed).toContain(file)
    }
    expect(packed.filter((file) => !/^dist\/|^(LICENSE|README\.md|package\.json)$/.test(file))).toEqual([])
    expect(packed.filter((file) => file.endsWith(".map"))).toEqual([])
    expect(packed.some((file) => file.includes("bin/") || file.includes("Cli."))).toBe(false)
  })

  it(
    "brings nothing but itself: installed with effect alone, the project holds effect-lock and effect's own packages",
    async () => {
      const lone = path.join(tmp, "lone")
      fs.mkdirSync(lone)
      fs.writeFileSync(path.join(lone, "package.json"), JSON.stringify({ name: "lone", private: true }))
      await run("npm", [
        "install",
        "--prefer-offline",
        "--ignore-scripts",
        "--no-package-lock",
        path.join(tmp, tarball),
        `effect@${version("effect")}`
      ], lone)
      const installed = (dir: string): Array<string> =>
        fs.readdirSync(dir).filter((name) => !name.startsWith(".")).flatMap((name) =>
          name.startsWith("@")
            ? fs.readdirSync(path.join(dir, name)).map((scoped) => `${name}/${scoped}`)
            : [name]
        )
      // effect's own dependencies, all the way down, as they landed in the project
      const closure = (name: string, seen: Set<string>): Set<string> => {
        if (seen.has(name)) return seen
        seen.add(name)
        const manifest = path.join(lone, "node_modules", name, "package.json")
        const { dependencies = {} } = JSON.parse(fs.readFileSync(manifest, "utf8")) as {
          dependencies?: Record<string, string>
        }
        for (const dependency of Object.keys(dependencies)) closure(dependency, seen)
        return seen
      }
      const effects = [...closure("effect", new Set())]
      expect(effects.length).toBeGreaterThan(1)
      expect(installed(path.join(lone, "node_modules")).sort()).toEqual(["effect-lock", ...effects].sort())
    },
    120_000
  )

  it("exports every public module of src/ (everything outside internal/)", () => {
    const modules = fs.readdirSync(path.join(clone, "src"), { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts") && !file.split(path.sep).includes("internal"))
      .map((file) =>
        file === "index.ts" ? "effect-lock" : `effect-lock/${file.replace(/\.ts$/, "").split(path.sep).join("/")}`
      )
    expect([...entries].sort()).toEqual(modules.sort())
  })

  it("every entry point loads with import and with require, with the same exports, and a lock runs on each", async () => {
    const check = async (format: "esm" | "cjs") => {
      const load = format === "esm" ? "await import" : "require"
      const source = `
        const entries = ${JSON.stringify(entries)}
        const loaded = {}
        for (const entry of entries) loaded[entry] = Object.keys(${load}(entry)).filter((k) => k !== "default").sort()
        const { Effect } = ${load}("effect")
        const { Lock } = ${load}("effect-lock")
        const Memory = ${load}("effect-lock/Redis/Memory")
        const ran = await Effect.runPromise(
          Lock.withLock({ id: "packed" })(Effect.succeed("guarded")).pipe(Effect.provide(Memory.layer))
        )
        let hidden = false
        try { ${load}("effect-lock/internal/keys") } catch (e) { hidden = e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" }
        console.log(JSON.stringify({ loaded, ran, hidden }))
      `
      const file = path.join(app, format === "esm" ? "check.mjs" : "check.cjs")
      fs.writeFileSync(
        file,
        format === "esm" ? source : `(async () => {${source}})().catch((e) => { console.error(e); process.exit(1) })`
      )
      return JSON.parse(await run(process.execPath, [file], app)) as {
        loaded: Record<string, Array<string>>
        ran: string
        hidden: boolean
      }
    }
    const esm = await check("esm")
    const cjs = await check("cjs")
    expect(Object.keys(esm.loaded).sort()).toEqual([...entries].sort())
    for (const entry of entries) expect(esm.loaded[entry]!.length, entry).toBeGreaterThan(0)
    expect(esm.loaded["effect-lock"]).toEqual(expect.arrayContaining(["Debounce", "Lock", "LockError", "Redis"]))
    expect(cjs.loaded).toEqual(esm.loaded)
    expect(esm).toMatchObject({ ran: "guarded", hidden: true })
    expect(cjs).toMatchObject({ ran: "guarded", hidden: true })
  })

  /** A consumer that imports every entry point; the expect-error line fails if the types were `any`. */
  const consumer = () => `
import { Effect, Layer } from "effect"
import { Lock, LockError, Redis } from "effect-lock"
import * as Memory from "effect-lock/Redis/Memory"
${entries.map((entry, i) => `import * as Entry${i} from "${entry}"`).join("\n")}

export const entries = [${entries.map((_, i) => `Entry${i}`).join(", ")}]
export const layer: Layer.Layer<Redis.Redis> = Memory.layer
export const program = Lock.withLock({ id: "typed" })(Effect.succeed(1)).pipe(Effect.provide(Memory.layer))
export const tag: "LockNotAcquired" = new LockError.LockNotAcquired({ id: "a", remaining: 0, reason: "held" })._tag
// @ts-expect-error "nope" is not a reason
export const wrong = new LockError.LockNotAcquired({ id: "a", remaining: 0, reason: "nope" })
`

  /** The consumer above for each kind of project, type-checked together (one child process) on first use. */
  const projects: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, unknown>]> = [
    ["nodenext", ["consumer.mts", "consumer.cts"], { module: "NodeNext", moduleResolution: "NodeNext" }],
    ["node16", ["consumer.mts", "consumer.cts"], { module: "Node16", moduleResolution: "Node16" }],
    ["bundler", ["consumer.ts"], { module: "ESNext", moduleResolution: "Bundler" }],
    ["node10", ["consumer.ts"], { module: "CommonJS", moduleResolution: "Node10" }]
  ]
  let typechecked: Promise<Readonly<Record<string, ReadonlyArray<string>>>> | undefined
  const typecheckOf = async (name: string) => {
    typechecked ??= typecheck(projects.map(([name, files, options]): Job => {
      const dir = path.join(app, name)
      fs.mkdirSync(dir, { recursive: true })
      const paths = files.map((file) => {
        const full = path.join(dir, file)
        fs.writeFileSync(full, consumer())
        return full
      })
      return {
        name,
        files: paths,
        options: { target: "ES2022", lib: ["ES2022"], strict: true, noEmit: true, skipLibCheck: true, ...options }
      }
    }))
    return (await typechecked)[name]
  }

  it("types resolve for NodeNext consumers, ESM (.mts) and CommonJS (.cts)", async () => {
    expect(await typecheckOf("nodenext")).toEqual([])
  })

  it("types resolve for Node16 consumers, ESM (.mts) and CommonJS (.cts)", async () => {
    expect(await typecheckOf("node16")).toEqual([])
  })

  it("types resolve for Bundler consumers", async () => {
    expect(await typecheckOf("bundler")).toEqual([])
  })

  it("types resolve for Node10 consumers (classic node resolution, no exports map)", async () => {
    expect(await typecheckOf("node10")).toEqual([])
  })
})
