/**
 * The edge bundle: effect-lock's core plus the Upstash backend (test/fixtures/edge-entry.ts), bundled
 * with esbuild for a browser target, as a worker runtime would load it. Shared by the edge test (which
 * runs it and holds its size under a ceiling) and the benchmark (which prints its size).
 */
import { build } from "esbuild"
import * as path from "node:path"
import * as zlib from "node:zlib"

const root = path.resolve(import.meta.dirname, "../..")

/** The bundle's code; `minify` for the size a deployment ships. */
export const bundleEdge = async (options: { readonly minify?: boolean } = {}): Promise<string> => {
  const result = await build({
    entryPoints: [path.join(root, "test/fixtures/edge-entry.ts")],
    bundle: true,
    platform: "browser",
    format: "iife",
    globalName: "edge",
    minify: options.minify === true,
    write: false,
    logLevel: "silent"
  })
  return result.outputFiles[0]!.text
}

/** Bytes of the minified bundle, raw and gzipped. */
export const edgeBundleSize = async (): Promise<{ readonly minified: number; readonly gzip: number }> => {
  const code = Buffer.from(await bundleEdge({ minify: true }))
  return { minified: code.length, gzip: zlib.gzipSync(code).length }
}
