/**
 * Compiles the bench (not the library) to plain JavaScript in bench/.out/, so `npm run bench` runs it with
 * `node` on the library's build: every `effect-lock` import stays a package import, which Node resolves to
 * `dist/` through the package's own `exports` (self-reference). Nothing of `src/` is bundled into the
 * measuring process; the orchestrator (main.js) bundles the test fixtures it starts, which are not measured.
 */
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
if (!fs.existsSync(path.join(root, "dist/index.js"))) throw new Error("dist/ is missing: run `npm run build` first")

const outdir = path.join(root, "bench/.out")
fs.rmSync(outdir, { recursive: true, force: true })
await build({
  entryPoints: [path.join(root, "bench/main.ts"), path.join(root, "bench/measure.ts")],
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  // The root tsconfig maps `effect-lock` to src/ for type checking; the bench must load the build instead.
  external: ["effect-lock", "effect-lock/*"],
  tsconfigRaw: {},
  logLevel: "warning"
})

const measure = fs.readFileSync(path.join(outdir, "measure.js"), "utf8")
if (!/from "effect-lock"/.test(measure) || /src\/Lock\.ts/.test(measure)) {
  throw new Error("bench/.out/measure.js must import effect-lock from the package (dist/), not bundle src/")
}
