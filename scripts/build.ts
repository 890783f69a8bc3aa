/**
 * `npm run build` (also run by `prepare`, so `npm pack`, `npm publish` and git installs build): tsc
 * emits ESM and declarations into `dist/`; esbuild transpiles the same sources to CommonJS in
 * `dist/cjs/` (for `require`), beside copies of the declarations, which a `{"type":"commonjs"}` marker
 * makes CommonJS declarations. No source maps: the package ships no sources for them to point at.
 * Then the command line's package (`cli/`, ESM only) is compiled against that build into `cli/dist/`.
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const dist = path.join(root, "dist")
const cjs = path.join(dist, "cjs")

const tsc = (project: string) =>
  execFileSync(process.execPath, [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-p", project], {
    cwd: root,
    stdio: "inherit"
  })

fs.rmSync(dist, { recursive: true, force: true })
tsc("tsconfig.build.json")

const sources = fs.readdirSync(path.join(root, "src"), { recursive: true, encoding: "utf8" })
  .filter((file) => file.endsWith(".ts"))
await build({
  entryPoints: sources.map((file) => path.join(root, "src", file)),
  outbase: path.join(root, "src"),
  outdir: cjs,
  format: "cjs",
  platform: "node",
  target: "node20",
  logLevel: "warning"
})
fs.writeFileSync(path.join(cjs, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`)

for (const file of sources) {
  const base = file.replace(/\.ts$/, "")
  fs.copyFileSync(path.join(dist, `${base}.d.ts`), path.join(cjs, `${base}.d.ts`))
}

const cli = path.join(root, "cli")
fs.rmSync(path.join(cli, "dist"), { recursive: true, force: true })
tsc("cli/tsconfig.build.json")
fs.copyFileSync(path.join(root, "LICENSE"), path.join(cli, "LICENSE"))
