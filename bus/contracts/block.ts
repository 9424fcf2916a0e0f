/**
 * Block device contract (proto/block.proto, package `vmesh.block`).
 * Served on `vmesh.<vm>.<disk>.<op>` for op in info, read, write, flush, discard.
 *
 * @module
 */
import { defineOp, type Op } from "../contract.ts";

/** `vmesh.block.InfoRequest`. */
export interface InfoRequest {
  requestId?: string;
}
/** `vmesh.block.Info`: geometry and features of a backend. */
export interface Info {
  sizeBytes: number;
  sectorSize: number;
  readOnly: boolean;
  /** The backend implements `discard`. */
  discard: boolean;
}
/** `vmesh.block.Read`. */
export interface Read {
  requestId?: string;
  offset: number;
  length: number;
}
/** `vmesh.block.ReadReply`. */
export interface ReadReply {
  status?: number;
  data: Uint8Array;
}
/** `vmesh.block.Write`: retries reuse requestId, so a write is applied once. */
export interface Write {
  requestId?: string;
  offset: number;
  data: Uint8Array;
  /** Force unit access: durable when the reply is sent. */
  fua?: boolean;
}
/** `vmesh.block.WriteReply`. */
export interface WriteReply {
  status?: number;
  written: number;
}
/** `vmesh.block.Flush`. */
export interface Flush {
  requestId?: string;
}
/** `vmesh.block.FlushReply`. */
export interface FlushReply {
  status?: number;
}
/** `vmesh.block.Discard`. */
export interface Discard {
  requestId?: string;
  offset: number;
  length: number;
}
/** `vmesh.block.DiscardReply`. */
export interface DiscardReply {
  status?: number;
}

/** `vmesh.block.Checkpoint`: a consistent point of the disk for snapshot `name`. */
export interface Checkpoint {
  requestId?: string;
  name: string;
  /** Directory for the point on the disk service's host (empty: next to the overlay). */
  dir?: string;
}
/** `vmesh.block.CheckpointReply`. */
export interface CheckpointReply {
  status?: number;
  /** "cow", "qcow2" or "raw". */
  backend: string;
  image: string;
  /** The frozen point (a read-only copy of the overlay, or the read-only image). */
  point: string;
  bytes: number;
}

/**
 * The snapshot op of a disk service, served with {@link ops} by disk services that keep disk
 * points (apart from `ops`, so block servers without snapshots stay as they are).
 */
export const pointOps: { checkpoint: Op<Checkpoint, CheckpointReply> } = {
  checkpoint: defineOp("checkpoint", "vmesh.block.Checkpoint", "vmesh.block.CheckpointReply"),
};

/** The ops of a block service. */
export const ops: {
  info: Op<InfoRequest, Info>;
  read: Op<Read, ReadReply>;
  write: Op<Write, WriteReply>;
  flush: Op<Flush, FlushReply>;
  discard: Op<Discard, DiscardReply>;
} = {
  // Reads are idempotent: no need to keep their (large) replies in the replay cache.
  info: defineOp("info", "vmesh.block.InfoRequest", "vmesh.block.Info", { replay: false }),
  read: defineOp("read", "vmesh.block.Read", "vmesh.block.ReadReply", { replay: false }),
  write: defineOp("write", "vmesh.block.Write", "vmesh.block.WriteReply"),
  flush: defineOp("flush", "vmesh.block.Flush", "vmesh.block.FlushReply"),
  discard: defineOp("discard", "vmesh.block.Discard", "vmesh.block.DiscardReply"),
};

/**
 * A `ReadReply` (status OK) encoded around `length` data bytes still to be filled: `bytes` is
 * the whole message, `data` the view of its data field. Reading the disk into `data` makes the
 * reply without copying the data again (wrap `bytes` in `Encoded`).
 */
export function readReplyBuffer(length: number): { bytes: Uint8Array; data: Uint8Array } {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0xffffffff) {
    throw new RangeError(`bad read length ${length}`);
  }
  let head = 2; // tag byte + at least one length byte
  for (let n = length; n >= 0x80; n = Math.floor(n / 128)) head++;
  const bytes = new Uint8Array(head + length);
  bytes[0] = 0x12; // field 2 (data), wire type 2 (length-delimited)
  let i = 1;
  let n = length;
  while (n >= 0x80) {
    bytes[i++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  bytes[i] = n;
  return { bytes, data: bytes.subarray(head) };
}
