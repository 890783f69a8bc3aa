/**
 * The weight of the edge bundle (core + Upstash, minified, as test/Redis/Upstash.test.ts runs it with
 * web globals only). Measured at 345 KB minified, 107 KB gzip once the errors became `Data.TaggedError`
 * (Schema, and fast-check with it, were 175 KB of the 520 KB before); the ceiling leaves headroom for
 * features, not for another library's worth of code. The errors' schemas live apart, in
 * `effect-lock/LockErrorSchema`, for that reason: 301 KB / 102 KB gzip without them, 477 KB / 154 KB with
 * `Schema.TaggedError` classes (docs/observability.md).
 */
import { expect, it } from "@effect/vitest"
import { bundleEdge, edgeBundleSize } from "./utils/bundle.js"

const CEILING = { minified: 400_000, gzip: 125_000 }

it("core + Upstash bundles under the size ceiling", async () => {
  const size = await edgeBundleSize()
  expect(size.minified).toBeLessThan(CEILING.minified)
  expect(size.gzip).toBeLessThan(CEILING.gzip)
}, 60_000)

it("the edge bundle carries neither Schema nor fast-check", async () => {
  const code = await bundleEdge()
  // module paths survive in esbuild's unminified output as comments
  expect(code).not.toMatch(/node_modules\/effect\/dist\/esm\/Schema\.js/)
  expect(code).not.toMatch(/node_modules\/fast-check\//)
  expect(code).toMatch(/node_modules\/effect\/dist\/esm\/Effect\.js/)
}, 60_000)
