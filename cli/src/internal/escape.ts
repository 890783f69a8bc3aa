/**
 * What the command line prints is escaped, so that an id, an error text or anything else it echoes can
 * neither forge a line of its output nor drive the terminal: C0 and C1 control characters, DEL, the
 * Unicode line and paragraph separators and the bidirectional overrides become `\n`, `\x1b`, `\u202e`…
 * Every line of stderr goes through {@link escape}; ids are also {@link quote}d, so that a backslash or
 * a quote of theirs reads back unambiguously.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }

const hex = (char: string, width: number) => char.charCodeAt(0).toString(16).padStart(width, "0")

/** `text` with every control character escaped. */
export const escape = (text: string): string =>
  text.replace(
    UNSAFE,
    (char) => NAMED[char] ?? (char.charCodeAt(0) < 0x100 ? `\\x${hex(char, 2)}` : `\\u${hex(char, 4)}`)
  )

/** `text` in double quotes, its backslashes and quotes escaped (its control characters are the logger's). */
export const quote = (text: string): string => `"${text.replace(/["\\]/g, (char) => `\\${char}`)}"`

/** `value` as one line of JSON whose every control character is escaped (`JSON.stringify` leaves C1 and U+2028 raw). */
export const json = (value: unknown): string => JSON.stringify(value).replace(UNSAFE, (char) => `\\u${hex(char, 4)}`)
