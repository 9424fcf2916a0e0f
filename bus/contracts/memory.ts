/**
 * Memory (page store) contract (proto/memory.proto, package `vmesh.memory`).
 * Served on `vmesh.memory.<op>` for op in put_page, get_page, has_pages, put_manifest,
 * get_manifest, list_manifests, delete_manifest, collect_garbage.
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
/** `vmesh.memory.HasPages`: which of `hashes` the store lacks. */
export interface HasPages {
  hashes: string[];
  requestId?: string;
}
/** `vmesh.memory.HasPagesReply`. */
export interface HasPagesReply {
  status?: number;
  /** Indexes into the request's hashes of the pages the store does not hold. */
  missing: number[];
}
/** `vmesh.memory.DeviceState`: a device model's or hart's save() record. */
export interface DeviceState {
  device: string;
  kind: string;
  state: Uint8Array;
  /** Format version of `state`. */
  version?: number;
}
/** `vmesh.memory.ImageRef`: a firmware, kernel or initrd file stored as pages. */
export interface ImageRef {
  /** "bios", "kernel" or "initrd". */
  role: string;
  size: number;
  /** page_size chunks in order (the last may be shorter). */
  pages: string[];
}
/** `vmesh.memory.DiskPoint`: where one disk stood at the snapshot. */
export interface DiskPoint {
  device: string;
  backend: string;
  image: string;
  overlay: string;
  /** The disk service froze a consistent point (false: not implemented yet). */
  frozen: boolean;
  /** The base image as pages of the store (unset: only the file). */
  baseLayer?: DiskLayer | null;
  /** The point as pages of the store (unset: only the file). */
  pointLayer?: DiskLayer | null;
}
/** `vmesh.memory.DiskLayer`: a disk layer file as chunk pages (zero chunks not stored). */
export interface DiskLayer {
  /** Bytes of the file. */
  size: number;
  /** Bytes of a chunk (the last of the file may be shorter). */
  chunkSize: number;
  /** Pages of the chunk map: 32-byte SHA-256 per chunk, 2048 a page, zeros = zero chunk. */
  mapPages: string[];
}
/** `vmesh.memory.SnapshotManifest`. */
export interface SnapshotManifest {
  vm: string;
  /** Small RAMs only: pages[i] is the hash of guest RAM page i. */
  pages: string[];
  cpuState: Uint8Array;
  devices: DeviceState[];
  pageSize: number;
  ramBase: number;
  /** Bytes of guest RAM. */
  ramSize?: number;
  /** Hashes of index pages (each: the 32-byte hashes of up to 2048 RAM pages, zeros = zero page). */
  pageIndex?: string[];
  images?: ImageRef[];
  /** The machine's flags as JSON. */
  machine?: string;
  /** mtime (10 MHz ticks) at the snapshot. */
  mtime?: number;
  /** When the snapshot was taken (Unix ms). */
  createdUnixMs?: number;
  /** Distinct non-zero RAM pages referred to. */
  ramPagesStored?: number;
  disks?: DiskPoint[];
  /** One record per hart, hart 0 first. */
  harts?: DeviceState[];
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

/** `vmesh.memory.ListManifests`. */
export interface ListManifests {
  requestId?: string;
}
/** `vmesh.memory.ListManifestsReply`. */
export interface ListManifestsReply {
  status?: number;
  /** Stored manifest names, sorted. */
  names: string[];
}
/** `vmesh.memory.DeleteManifest` (pages stay: other snapshots may share them). */
export interface DeleteManifest {
  name: string;
  requestId?: string;
}
/** `vmesh.memory.DeleteManifestReply`. */
export interface DeleteManifestReply {
  status?: number;
}

/** `vmesh.memory.CollectGarbage`: remove pages no manifest names (young ones kept). */
export interface CollectGarbage {
  requestId?: string;
  /** Pages stored or seen present within this many ms are kept (0: 600000, unless noGrace). */
  minAgeMs?: number;
  /** Count only. */
  dryRun?: boolean;
  /** Take minAgeMs 0 as given. */
  noGrace?: boolean;
}
/** `vmesh.memory.CollectGarbageReply`. */
export interface CollectGarbageReply {
  status?: number;
  manifests: number;
  /** Pages named by the manifests that the store holds. */
  referenced: number;
  /** Unreferenced pages kept as young. */
  keptYoung: number;
  /** Unreferenced pages removed (or that would be, dry run), and their bytes. */
  removed: number;
  removedBytes: number;
  /** Manifests whose index or map pages are missing. */
  broken: string[];
}

/** The ops of the memory service. */
export const ops: {
  put_page: Op<PutPage, PutPageReply>;
  get_page: Op<GetPage, GetPageReply>;
  has_pages: Op<HasPages, HasPagesReply>;
  put_manifest: Op<PutManifest, PutManifestReply>;
  get_manifest: Op<GetManifest, GetManifestReply>;
  list_manifests: Op<ListManifests, ListManifestsReply>;
  delete_manifest: Op<DeleteManifest, DeleteManifestReply>;
  collect_garbage: Op<CollectGarbage, CollectGarbageReply>;
} = {
  // Content-addressed puts are idempotent by construction.
  put_page: defineOp("put_page", "vmesh.memory.PutPage", "vmesh.memory.PutPageReply", {
    replay: false,
  }),
  get_page: defineOp("get_page", "vmesh.memory.GetPage", "vmesh.memory.GetPageReply", {
    replay: false,
  }),
  has_pages: defineOp("has_pages", "vmesh.memory.HasPages", "vmesh.memory.HasPagesReply", {
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
  list_manifests: defineOp(
    "list_manifests",
    "vmesh.memory.ListManifests",
    "vmesh.memory.ListManifestsReply",
    { replay: false },
  ),
  delete_manifest: defineOp(
    "delete_manifest",
    "vmesh.memory.DeleteManifest",
    "vmesh.memory.DeleteManifestReply",
  ),
  collect_garbage: defineOp(
    "collect_garbage",
    "vmesh.memory.CollectGarbage",
    "vmesh.memory.CollectGarbageReply",
    { replay: false },
  ),
};
