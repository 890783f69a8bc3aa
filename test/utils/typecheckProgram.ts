/**
 * The child process of ./typecheck.ts: reads jobs (JSON) on stdin, type-checks each as one program, and
 * prints `{ [name]: diagnostics }` (JSON) on stdout. Declaration files parsed once are shared by the jobs:
 * parsing Effect's is most of their cost.
 */
import * as path from "node:path"
import ts from "typescript"
import type { Job } from "./typecheck.js"

const parsed = new Map<string, ts.SourceFile | undefined>()

const hostFor = (options: ts.CompilerOptions): ts.CompilerHost => {
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (fileName, languageVersionOrOptions, ...rest) => {
    if (!fileName.endsWith(".d.ts")) return getSourceFile(fileName, languageVersionOrOptions, ...rest)
    const format = typeof languageVersionOrOptions === "object" ? languageVersionOrOptions.impliedNodeFormat : undefined
    const key = `${fileName}|${format}`
    if (!parsed.has(key)) parsed.set(key, getSourceFile(fileName, languageVersionOrOptions, ...rest))
    return parsed.get(key)
  }
  return host
}

const format = (d: ts.Diagnostic) => {
  const where = d.file
    ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
    : ""
  return `${where} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
}

const check = (job: Job): ReadonlyArray<string> => {
  const { errors, options } = ts.convertCompilerOptionsFromJson(job.options, process.cwd())
  if (errors.length > 0) return errors.map(format)
  const program = ts.createProgram([...job.files], options, hostFor(options))
  return ts.getPreEmitDiagnostics(program).map(format)
}

process.stdin.setEncoding("utf8")
let input = ""
for await (const chunk of process.stdin) input += chunk
const jobs = JSON.parse(input) as ReadonlyArray<Job>
process.stdout.write(JSON.stringify(Object.fromEntries(jobs.map((job) => [job.name, check(job)]))))
