/**
 * A password given with `--redis` on the command line is readable by every local user (`ps`,
 * `/proc/<pid>/cmdline`). Where the platform lets a process rewrite what it shows there (Linux, and
 * the BSDs and macOS as far as `ps` goes), the bin replaces it with `***` as soon as it starts; until
 * then, and in the shell's history, it stays visible: REDIS_URL or `--redis-file` keep it out of argv.
 */

/** The password of a `redis://` URL replaced by `***`; the text unchanged when it holds none. */
const mask = (text: string): string => {
  try {
    const url = new URL(text)
    if (url.password === "") return text
    url.password = "***"
    return url.toString()
  } catch {
    // not a URL: whatever it holds stays unseen
    return "***"
  }
}

/** Whether a `--redis` value carries a password. */
export const hasPassword = (text: string): boolean => mask(text) !== text

/** `argv` with the value of every `--redis` masked, or `undefined` when there was nothing to mask. */
export const masked = (argv: ReadonlyArray<string>): ReadonlyArray<string> | undefined => {
  let changed = false
  const out = argv.map((arg, i) => {
    const inline = /^--redis=(.*)$/s.exec(arg)
    const value = inline?.[1] ?? (argv[i - 1] === "--redis" ? arg : undefined)
    if (value === undefined || !hasPassword(value)) return arg
    changed = true
    return inline === null ? mask(value) : `--redis=${mask(value)}`
  })
  const end = argv.indexOf("--")
  // Only the options of effect-lock, not the command's own arguments after `--`.
  const result = end < 0 ? out : [...out.slice(0, end), ...argv.slice(end)]
  return changed && result.some((arg, i) => arg !== argv[i]) ? result : undefined
}

/** Rewrites this process's title (what `ps` and `/proc/<pid>/cmdline` show) without the password. */
export const hideSecrets = (): boolean => {
  const argv = masked(process.argv)
  if (argv === undefined) return false
  try {
    process.title = argv.join(" ")
    return true
  } catch {
    return false
  }
}
