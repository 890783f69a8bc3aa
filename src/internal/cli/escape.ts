/**
 * What the command line prints is escaped, so that an id, an error text or anything else it echoes can
 * neither forge a line of its output nor drive the terminal: C0 and C1 control characters, DEL, the
 * Unicode line and paragraph separators and the bidirectional overrides become `\n`, `\x1b`, `\u202e`…,
 * and a backslash becomes `\\`, so that the escaped text reads back unambiguously.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" }

const hex = (char: string, width: number) => char.charCodeAt(0).toString(16).padStart(width, "0")

/** `text` with every control character escaped. */
export const escape = (text: string): string =>
  text.replace(
    UNSAFE,
    (char) => NAMED[char] ?? (char.charCodeAt(0) < 0x100 ? `\\x${hex(char, 2)}` : `\\u${hex(char, 4)}`)
  )

/** `text` escaped and in double quotes (a quote inside escaped too): how ids are printed. */
export const quote = (text: string): string => `"${escape(text).replace(/"/g, "\\\"")}"`
