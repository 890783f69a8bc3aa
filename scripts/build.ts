/**
 * `npm run build` (also run by `prepare`, so `npm pack`, `npm publish` and git installs build): tsc
 * emits ESM, declarations and their maps into `dist/`; esbuild transpiles the same sources to CommonJS
 * in `dist/cjs/` (for `require`), beside copies of the declarations, which a `{"type":"commonjs"}`
 * marker makes CommonJS declarations. One type-check, so a build stays fast on a busy machine.
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const dist = path.join(root, "dist")
const cjs = path.join(dist, "cjs")

fs.rmSync(dist, { recursive: true, force: true })
execFileSync(process.execPath, [
  createRequire(import.meta.url).resolve("typescript/bin/tsc"),
  "-p",
  "tsconfig.build.json"
], {
  cwd: root,
  stdio: "inherit"
})

const sources = fs.readdirSync(path.join(root, "src"), { recursive: true, encoding: "utf8" })
  .filter((file) => file.endsWith(".ts"))
await build({
  entryPoints: sources.map((file) => path.join(root, "src", file)),
  outbase: path.join(root, "src"),
  outdir: cjs,
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning"
})
fs.writeFileSync(path.join(cjs, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`)

for (const file of sources) {
  const base = file.replace(/\.ts$/, "")
  fs.copyFileSync(path.join(dist, `${base}.d.ts`), path.join(cjs, `${base}.d.ts`))
  // the map's sources are relative to it: one directory deeper now
  const map = JSON.parse(fs.readFileSync(path.join(dist, `${base}.d.ts.map`), "utf8")) as { sources: Array<string> }
  map.sources = map.sources.map((source) => `../${source}`)
  fs.writeFileSync(path.join(cjs, `${base}.d.ts.map`), JSON.stringify(map))
}
