#!/usr/bin/env node
/**
 * The `effect-lock` binary. Run `effect-lock --help`.
 */
import { createRequire } from "node:module"
import * as Cli from "../Cli.js"

// dist/bin/effect-lock.js and src/bin/effect-lock.ts both sit two levels below package.json.
const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

Cli.main(version)
