/**
 * Every export of a public module (src/*.ts, src/Redis/*.ts, and the command line's cli/src/Cli.ts) has a doc comment that says what it is,
 * with `@since` and `@category`, as every module of `effect/src` has.
 */
import { expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const src = path.resolve(import.meta.dirname, "../src")
const modules = [
  ...fs.readdirSync(src).filter((f) => f.endsWith(".ts") && f !== "index.ts"),
  ...fs.readdirSync(path.join(src, "Redis")).filter((f) => f.endsWith(".ts")).map((f) => `Redis/${f}`),
  "../cli/src/Cli.ts"
]

const undocumented = (file: string): Array<string> => {
  const lines = fs.readFileSync(path.join(src, file), "utf8").split("\n")
  const problems: Array<string> = []
  lines.forEach((line, i) => {
    const name = /^export (?:declare )?(?:const|function|class|interface|type|namespace) (\w+)/.exec(line)?.[1]
    if (name === undefined) return
    const end = i - 1
    if (!lines[end]?.trim().endsWith("*/")) return void problems.push(`${file}: ${name} has no doc comment`)
    let start = end
    while (start > 0 && !lines[start]!.trim().startsWith("/**")) start--
    const doc = lines.slice(start, end + 1).map((l) => l.trim().replace(/^\/?\*+\/?/, "").replace(/\*\/$/, "").trim())
    if (!doc.some((l) => l !== "" && !l.startsWith("@"))) problems.push(`${file}: ${name} has no description`)
    for (const tag of ["@since", "@category"]) {
      if (!doc.some((l) => l.startsWith(tag))) problems.push(`${file}: ${name} has no ${tag}`)
    }
  })
  return problems
}

it("every export of a public module has a description, @since and @category", () => {
  expect(modules.length).toBeGreaterThan(8)
  expect(modules.flatMap(undocumented)).toEqual([])
})
