/**
 * Console contract (proto/console.proto, package `vmesh.console`): batched bytes
 * published on `vmesh.<vm>.console.out` and `vmesh.<vm>.console.in`, and the console
 * service's `send` op (`vmesh.<vm>.console.send`: type bytes into the guest).
 *
 * @module
 */
import { defineOp, defineTopic, type Op, type Topic } from "../contract.ts";
import type { Empty } from "./common.ts";

/** `vmesh.console.ByteBatch`: consecutive bytes of one console stream. */
export interface ByteBatch {
  /** Stream position of data[0] (bytes sent before this batch). */
  seq: number;
  data: Uint8Array;
}

/** Topic of console byte batches (both directions). */
export const byteBatch: Topic<ByteBatch> = defineTopic<ByteBatch>("vmesh.console.ByteBatch");

/** The ops of the console service. */
export const ops: {
  send: Op<ByteBatch, Empty>;
} = {
  // Replayed on retry so typed keys reach the guest once.
  send: defineOp("send", "vmesh.console.ByteBatch", "vmesh.common.Empty"),
};
