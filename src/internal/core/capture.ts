/**
 * For a primitive that needs more of its winning try than the core keeps (the writer's token, for its
 * downgrade; the fences of several ids taken as one): the operations of ONE acquisition, which remember
 * the token and the reply of the try that won. Made per acquisition, so nothing is shared or left over.
 */
import { Effect } from "effect"
import type { Operations, TryReply } from "./resource.js"

export interface Captured<E, R extends TryReply = TryReply> {
  readonly ops: Operations<E>
  /** The winning try's token and reply, once a try has won. */
  readonly won: () => { readonly token: string; readonly reply: Extract<R, { acquired: true }> } | undefined
}

export const capture = <E, R extends TryReply = TryReply>(ops: Operations<E>): Captured<E, R> => {
  let won: { readonly token: string; readonly reply: Extract<R, { acquired: true }> } | undefined
  const remember = (send: Operations<E>["tryAcquire"]): Operations<E>["tryAcquire"] => (token, lease, deadline) =>
    Effect.map(send(token, lease, deadline), (reply) => {
      if (reply.acquired) won = { token, reply: reply as Extract<R, { acquired: true }> }
      return reply
    })
  return {
    ops: { ...ops, tryAcquire: remember(ops.tryAcquire), tryAcquireFair: remember(ops.tryAcquireFair) },
    won: () => won
  }
}
