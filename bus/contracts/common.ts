/**
 * TypeScript shapes of proto/common.proto (package `vmesh.common`).
 *
 * @module
 */
import { codecFor } from "../codec.ts";
import type { Codec } from "../codec.ts";

/** `vmesh.common.Error`: the payload of every error reply. */
export interface Error {
  /** A {@link Status} code. */
  code: number;
  message: string;
  requestId: string;
}

/** `vmesh.common.Empty`. */
// deno-lint-ignore ban-types
export type Empty = {};

/** Codec of `vmesh.common.Error`. */
export const errorCodec: Codec<Error> = codecFor<Error>("vmesh.common.Error");
/** Codec of `vmesh.common.Empty`. */
export const emptyCodec: Codec<Empty> = codecFor<Empty>("vmesh.common.Empty");
