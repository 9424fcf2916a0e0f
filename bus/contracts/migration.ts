/**
 * Live-migration contract (proto/migration.proto, package `vmesh.migration`): the ops a CPU
 * service started with `--incoming` serves on `vmesh.<vm>.incoming.<op>` (hello, pages,
 * finish, abort) for the source CPU service that `vmesh.<vm>.ctl.migrate` asked to move.
 *
 * @module
 */
import { defineOp, type Op } from "../contract.ts";
import type { DeviceState } from "./memory.ts";

/** The device token of the incoming ops: `vmesh.<vm>.incoming.<op>`. */
export const INCOMING_DEVICE = "incoming";

/** `vmesh.migration.Hello`: the source's machine, checked against the target's. */
export interface Hello {
  requestId?: string;
  /** Machine flags as JSON (a snapshot manifest's `machine`). */
  machine: string;
  /** Hex SHA-256 of firmware, kernel and initrd, in that order. */
  imagesDigest: string;
  /** The host the source asks for. */
  host: string;
}
/** `vmesh.migration.HelloReply`. */
export interface HelloReply {
  host: string;
}
/** `vmesh.migration.PageBatch`: pages as little-endian uint32 indices plus 4 KiB each. */
export interface PageBatch {
  requestId?: string;
  round: number;
  indices: Uint8Array;
  data: Uint8Array;
  /** Page numbers (uint32 LE) that are all zero now. */
  zero: Uint8Array;
}
/** `vmesh.migration.PagesReply`. */
export interface PagesReply {
  pages: number;
}
/** `vmesh.migration.Finish`: the last pages and every record, sent with the source paused. */
export interface Finish {
  requestId?: string;
  pages: PageBatch | null;
  harts: DeviceState[];
  devices: DeviceState[];
  mtime: number;
  pausedAtUnixMs: number;
  /** SHA-256 of the whole RAM (empty: unchecked). */
  ramSha256: Uint8Array;
  consoleSeq: number;
  /** Console input position after the source's last batch (-1: none). */
  consoleInNext: number;
  /** Console input the source had queued for its UART. */
  consolePending: Uint8Array;
}
/** `vmesh.migration.FinishReply`. */
export interface FinishReply {
  firstInstructionUnixMs: number;
  loadMs: number;
  resumedUnixMs: number;
}
/** `vmesh.migration.Abort`. */
export interface Abort {
  requestId?: string;
  reason: string;
}

/** The incoming ops (not replayed from a cache: each is applied once or is harmless again). */
export const ops: {
  hello: Op<Hello, HelloReply>;
  pages: Op<PageBatch, PagesReply>;
  finish: Op<Finish, FinishReply>;
  abort: Op<Abort, Record<string, never>>;
} = {
  hello: defineOp("hello", "vmesh.migration.Hello", "vmesh.migration.HelloReply", {
    replay: false,
  }),
  pages: defineOp("pages", "vmesh.migration.PageBatch", "vmesh.migration.PagesReply", {
    replay: false,
  }),
  finish: defineOp("finish", "vmesh.migration.Finish", "vmesh.migration.FinishReply", {
    replay: false,
  }),
  abort: defineOp("abort", "vmesh.migration.Abort", "vmesh.migration.AbortReply", {
    replay: false,
  }),
};
