/**
 * Options checked once per options object: a loop that acquires with the same object checks it once,
 * and an object whose fields changed since is checked again. The one cache of the library.
 */
import type { InvalidOptions } from "../../LockError.js"

/**
 * `check` memoised per options object and the values of its `fields` (`undefined` options share one
 * slot). A failed check is not kept.
 */
export const memo = <O extends object, A>(
  fields: ReadonlyArray<keyof O>,
  check: (options: O | undefined) => A | InvalidOptions,
  isInvalid: (result: A | InvalidOptions) => result is InvalidOptions
): (options: O | undefined) => A | InvalidOptions => {
  const seen = new WeakMap<object, { readonly values: ReadonlyArray<unknown>; readonly result: A }>()
  const NONE = {}
  return (options) => {
    const key: object = typeof options === "object" && options !== null ? options : NONE
    if (key === NONE && options !== undefined) return check(options)
    const known = seen.get(key)
    if (known !== undefined && fields.every((f, i) => options?.[f] === known.values[i])) return known.result
    const result = check(options)
    if (!isInvalid(result)) seen.set(key, { values: fields.map((f) => options?.[f]), result })
    return result
  }
}
