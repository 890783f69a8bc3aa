/**
 * Every `@example` in src/ and every TypeScript block in the README, docs/ and bench/README.md must compile against the package's
 * own entry points (`effect-lock`, `effect-lock/Redis/Memory`, …), with the project's strict settings.
 */
import { expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { typecheck } from "./utils/typecheck.js"

const root = path.resolve(import.meta.dirname, "..")
// One folder per run: two checkouts sharing node_modules (worktrees) never clash.
const out = path.join(root, `node_modules/.cache/effect-lock-examples-${process.pid}`)

const fromSources = (): Array<readonly [string, string]> =>
  ["src", "cli/src"].flatMap((dir) =>
    fs.readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts"))
      .map((file) => path.join(dir, file))
  )
    .flatMap((file) => {
      const text = fs.readFileSync(path.join(root, file), "utf8")
      // Doc comments at any indentation (an option inside an interface too), and examples in a row.
      return [...text.matchAll(/^([ \t]*)\* @example\n((?:\1\*(?: .*)?\n)+?)(?=\1\*(?: @|\/))/gm)].map((match, i) =>
        [
          `${file.replace(/[/.]/g, "_")}_${i}`,
          match[2]!.split("\n").map((line) => line.replace(/^[ \t]*\* ?/, "")).join("\n")
        ] as const
      )
    })

const markdown = [
  "README.md",
  "bench/README.md",
  ...fs.readdirSync(path.join(root, "docs")).filter((file) => file.endsWith(".md")).map((file) => `docs/${file}`)
]

const fromMarkdown = (): Array<readonly [string, string]> =>
  markdown.flatMap((doc) =>
    [...fs.readFileSync(path.join(root, doc), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((match, i) =>
      [`${doc.replace(/[/.]/g, "_")}_${i}`, match[1]!] as const
    )
  )

it("every @example and every TypeScript block of the docs compiles", async () => {
  const examples = [...fromSources(), ...fromMarkdown()]
  expect(examples.length).toBeGreaterThan(15)
  // an indented example (an option's, inside an interface) is collected too
  expect(examples.some(([name, code]) => name.startsWith("src_Lock_ts") && code.includes("replicas: 1"))).toBe(true)
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  const files = examples.map(([name, code]) => {
    const file = path.join(out, `${name}.ts`)
    // each snippet is its own module
    fs.writeFileSync(file, `${code}\nexport {}\n`)
    return file
  })
  const { examples: problems } = await typecheck([{
    name: "examples",
    files,
    options: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
      baseUrl: root,
      paths: {
        "effect-lock": ["src/index.ts"],
        "effect-lock/*": ["src/*.ts"],
        "effect-lock-cli": ["cli/src/Cli.ts"]
      },
      allowImportingTsExtensions: true
    }
  }])
  fs.rmSync(out, { recursive: true, force: true })
  expect(problems).toEqual([])
}, 120_000)
