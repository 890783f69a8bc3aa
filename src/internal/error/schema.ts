/**
 * The Schema of one of LockError's classes, made apart from the class: the classes are
 * `Data.TaggedError`s (Schema's module is too heavy for the edge bundle), and each has here a Schema that
 * decodes to an instance of that very class and encodes to what `Schema.TaggedError` would: `{ _tag,
 * ...fields }`. The fields are checked against the class's constructor at compile time, both ways.
 */
import { Schema } from "effect"

/** The argument of an error class's constructor: its fields. */
type Args<C> = C extends new(args: infer A) => unknown ? A : never

/** Whether `A` and `B` accept the same values. */
type Same<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false

/** An error class of LockError's shape: `new X({ ...fields })`, tagged. */
type ErrorClass = new(args: any) => Error & { readonly _tag: string }

/** `{ _tag, ...fields }`, encoded. */
export type Encoded<Fields extends Schema.Struct.Fields, Tag extends string> = {
  readonly _tag: Tag
} & Schema.Struct.Encoded<Fields>

/**
 * The Schema of error class `self` tagged `tag`, whose fields are `fields` (a compile error if they are
 * not exactly the constructor's).
 */
export const schemaOf = <C extends ErrorClass, const Fields extends Schema.Struct.Fields>(
  self: C,
  tag: InstanceType<C>["_tag"],
  fields: Same<Args<C>, Schema.Struct.Type<Fields>> extends true ? Fields : "the fields differ from the class's"
): Schema.Schema<InstanceType<C>, Encoded<Fields, InstanceType<C>["_tag"]>> => {
  const checked = fields as Fields
  const keys = Object.keys(checked)
  const encoded = Schema.TaggedStruct(tag, checked)
  const decoded = Schema.instanceOf(self as unknown as new(...args: Array<any>) => InstanceType<C>)
  const pick = (from: object, into: Record<string, unknown>) => {
    for (const key of keys) into[key] = (from as Record<string, unknown>)[key]
    return into
  }
  return Schema.transform(encoded, decoded, {
    strict: false,
    decode: (struct) => new self(pick(struct, {})) as InstanceType<C>,
    encode: (error) => pick(error, { _tag: tag })
  }).annotations({ identifier: tag }) as unknown as Schema.Schema<
    InstanceType<C>,
    Encoded<Fields, InstanceType<C>["_tag"]>
  >
}
