/**
 * One line of text for a transport failure (a Node system error, a TLS error, an `AggregateError` of
 * several addresses tried), as it goes in `RedisError.detail`: `connect ECONNREFUSED 127.0.0.1:6379`,
 * `getaddrinfo ENOTFOUND redis.internal`, `TLS: wrong version number (ERR_SSL_WRONG_VERSION_NUMBER)`.
 */

const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/** OpenSSL's `…:SSL routines:<function>:<reason>:<file>:<line>:` keeps only its reason. */
const tls = (message: string, code: unknown): string | undefined => {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1]
  return reason === undefined ? undefined : `TLS: ${reason}${typeof code === "string" ? ` (${code})` : ""}`
}

export const describeCause = (error: unknown): string => {
  if (!(error instanceof Error)) return oneLine(String(error))
  const code = (error as { readonly code?: unknown }).code
  const inner = (error as { readonly errors?: unknown }).errors
  if (Array.isArray(inner) && inner.length > 0) {
    return [...new Set(inner.map(describeCause))].join("; ")
  }
  const text = tls(error.message, code) ?? oneLine(error.message)
  return text === "" && typeof code === "string" ? code : text
}
