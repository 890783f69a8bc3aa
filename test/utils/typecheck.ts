/**
 * Type-checks programs in a child process (./typecheckProgram.ts), so that the test's worker keeps its
 * event loop while the compiler runs. An in-process `ts.createProgram` is synchronous: several seconds
 * here, tens on a loaded machine, during which the worker cannot read vitest's answers to its RPC calls,
 * and a call left unanswered for 60 s fails the whole run (`Timeout calling "onTaskUpdate"`).
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

/** One program: its root files, and compiler options as a tsconfig.json writes them (`"module": "NodeNext"`). */
export interface Job {
  readonly name: string
  readonly files: ReadonlyArray<string>
  readonly options: Readonly<Record<string, unknown>>
}

const program = fileURLToPath(new URL("./typecheckProgram.ts", import.meta.url))

/**
 * The diagnostics of each job (`file:line TScode: message`), by name. The jobs run in one process, one
 * after another, sharing the declaration files they parse.
 */
export const typecheck = (jobs: ReadonlyArray<Job>): Promise<Readonly<Record<string, ReadonlyArray<string>>>> =>
  new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", program],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null) return reject(new Error(`the type-check process failed: ${error.message}\n${stderr}`))
        resolve(JSON.parse(stdout) as Record<string, ReadonlyArray<string>>)
      }
    )
    child.stdin!.end(JSON.stringify(jobs))
  })
