/**
 * Memory (page store) contract (proto/memory.proto, package `vmesh.memory`).
 * Served on `vmesh.memory.<op>` for op in put_page, get_page, put_manifest, get_manifest.
 *
 * @module
 */
import { defineOp, type Op } from "../contract.ts";

/** `vmesh.memory.PutPage`: hash is the lowercase hex SHA-256 of data. */
export interface PutPage {
  hash: string;
  data: Uint8Array;
  requestId?: string;
}
/** `vmesh.memory.PutPageReply`. */
export interface PutPageReply {
  status?: number;
  /** The store already held the page. */
  existed: boolean;
}
/** `vmesh.memory.GetPage`. */
export interface GetPage {
  hash: string;
  requestId?: string;
}
/** `vmesh.memory.GetPageReply`. */
export interface GetPageReply {
  status?: number;
  data: Uint8Array;
}
/** `vmesh.memory.DeviceState`: a device model's save() record. */
export interface DeviceState {
  device: string;
  kind: string;
  state: Uint8Array;
}
/** `vmesh.memory.SnapshotManifest`. */
export interface SnapshotManifest {
  vm: string;
  /** pages[i] is the hash of guest RAM page i. */
  pages: string[];
  cpuState: Uint8Array;
  devices: DeviceState[];
  pageSize: number;
  ramBase: number;
}
/** `vmesh.memory.PutManifest`. */
export interface PutManifest {
  name: string;
  manifest: SnapshotManifest;
  requestId?: string;
}
/** `vmesh.memory.PutManifestReply`. */
export interface PutManifestReply {
  status?: number;
}
/** `vmesh.memory.GetManifest`. */
export interface GetManifest {
  name: string;
  requestId?: string;
}
/** `vmesh.memory.GetManifestReply`. */
export interface GetManifestReply {
  status?: number;
  manifest: SnapshotManifest | null;
}

/** The ops of the memory service. */
export const ops: {
  put_page: Op<PutPage, PutPageReply>;
  get_page: Op<GetPage, GetPageReply>;
  put_manifest: Op<PutManifest, PutManifestReply>;
  get_manifest: Op<GetManifest, GetManifestReply>;
} = {
  // Content-addressed puts are idempotent by construction.
  put_page: defineOp("put_page", "vmesh.memory.PutPage", "vmesh.memory.PutPageReply", {
    replay: false,
  }),
  get_page: defineOp("get_page", "vmesh.memory.GetPage", "vmesh.memory.GetPageReply", {
    replay: false,
  }),
  put_manifest: defineOp(
    "put_manifest",
    "vmesh.memory.PutManifest",
    "vmesh.memory.PutManifestReply",
  ),
  get_manifest: defineOp(
    "get_manifest",
    "vmesh.memory.GetManifest",
    "vmesh.memory.GetManifestReply",
    { replay: false },
  ),
};
