/**
 * Typed descriptors that tie a bus operation or topic to its protobuf messages.
 * The per-proto descriptors live in `contracts/`.
 *
 * @module
 */
import { type Codec, codecFor } from "./codec.ts";

/**
 * A request/reply operation: its name (the last subject token) and the message
 * types of request and reply.
 */
export interface Op<Req, Res> {
  /** The op token, e.g. `"read"`; the subject is `<prefix>.<name>`. */
  readonly name: string;
  /** Codec of the request message. */
  readonly request: Codec<Req>;
  /** Codec of the reply message. */
  readonly reply: Codec<Res>;
  /**
   * Answer a repeated request id from the server's replay cache instead of running
   * the handler again (true for ops with side effects, e.g. `write`).
   */
  readonly replay: boolean;
}

/** A publish/subscribe message type. */
export interface Topic<T> {
  /** Codec of the message. */
  readonly codec: Codec<T>;
}

/** A set of ops keyed by op name: the contract of one kind of service. */
// deno-lint-ignore no-explicit-any
export type Ops = Record<string, Op<any, any>>;
/** The request type of an op. */
export type RequestOf<O> = O extends Op<infer Req, unknown> ? Req : never;
/** The reply type of an op. */
export type ReplyOf<O> = O extends Op<unknown, infer Res> ? Res : never;

/** Options of {@link defineOp}. */
export interface OpOptions {
  /** See {@link Op.replay}; default true. */
  replay?: boolean;
  /** Decode 64-bit fields of the reply as bigint. */
  bigintReply?: boolean;
}

/** Declares an op from protobuf type names, e.g. `defineOp<Read, ReadReply>("read", ...)`. */
export function defineOp<Req, Res>(
  name: string,
  requestType: string,
  replyType: string,
  options: OpOptions = {},
): Op<Req, Res> {
  return {
    name,
    request: codecFor<Req>(requestType),
    reply: codecFor<Res>(replyType, { bigint: options.bigintReply }),
    replay: options.replay ?? true,
  };
}

/** Declares a topic from a protobuf type name. */
export function defineTopic<T>(typeName: string): Topic<T> {
  return { codec: codecFor<T>(typeName) };
}
