/**
 * The memory service ops (proto/memory.proto) over a {@link PageStore}: pages are put and
 * got by SHA-256 (the service checks the hash against the bytes), snapshot manifests by
 * name. Served on `vmesh.memory.<op>`.
 * @module
 */

import {
  type Bus,
  BusError,
  codecFor,
  type DeviceService,
  type Handlers,
  memory,
  MEMORY_PREFIX,
  Status,
} from "@vmesh/bus";
import { isPageHash, pageHash } from "./page_hash.ts";
import { isManifestName, type PageStore } from "./page_store.ts";
import { collectGarbage, RecentPages } from "./garbage.ts";

/** Service name for discovery. */
export const SERVICE_NAME = "vmesh-memory";

/** Default largest page: 64 KiB (4 KiB pages, and room for larger granules). */
export const DEFAULT_MAX_PAGE = 64 * 1024;

const manifestCodec = codecFor<memory.SnapshotManifest>("vmesh.memory.SnapshotManifest");

function checkHash(hash: string): void {
  if (!isPageHash(hash)) {
    throw new BusError(Status.INVALID_ARGUMENT, `page hash must be 64 lowercase hex digits`);
  }
}

function checkName(name: string): void {
  if (!isManifestName(name)) {
    throw new BusError(Status.INVALID_ARGUMENT, `bad manifest name ${JSON.stringify(name)}`);
  }
}

/** Runs a store operation, reporting a store failure as IO_ERROR. */
async function storeIo<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof BusError) throw err;
    throw new BusError(Status.IO_ERROR, `${what}: ${(err as Error)?.message ?? err}`);
  }
}

/** The handlers of the memory ops over `store`. */
export function pageHandlers(store: PageStore, maxPage: number): Handlers<typeof memory.ops> {
  // Concurrent puts of one page share one store write, so it is stored once.
  const inFlight = new Map<string, Promise<boolean>>();
  // Pages put or found present lately: the collector's grace covers them.
  const recent = new RecentPages();
  let collecting = false;
  return {
    put_page: async (req) => {
      checkHash(req.hash);
      if (req.data.length === 0) throw new BusError(Status.INVALID_ARGUMENT, "empty page");
      if (req.data.length > maxPage) {
        throw new BusError(Status.TOO_LARGE, `page of ${req.data.length} bytes exceeds ${maxPage}`);
      }
      const actual = await pageHash(req.data);
      if (actual !== req.hash) {
        throw new BusError(Status.INVALID_ARGUMENT, `hash ${req.hash} does not match the data`);
      }
      recent.touch(req.hash);
      let put = inFlight.get(req.hash);
      if (!put) {
        put = storeIo("put page", () => store.putPage(req.hash, req.data));
        inFlight.set(req.hash, put);
        put.finally(() => inFlight.delete(req.hash)).catch(() => {});
        return { status: Status.OK, existed: await put };
      }
      await put;
      return { status: Status.OK, existed: true };
    },
    get_page: async (req) => {
      checkHash(req.hash);
      const data = await storeIo("get page", () => store.getPage(req.hash));
      if (!data) throw new BusError(Status.NOT_FOUND, `no page ${req.hash}`);
      return { status: Status.OK, data };
    },
    has_pages: async (req) => {
      for (const h of req.hashes) checkHash(h);
      const held = await storeIo(
        "has pages",
        () => Promise.all(req.hashes.map((h) => store.hasPage(h))),
      );
      const missing: number[] = [];
      held.forEach((has, i) => has ? recent.touch(req.hashes[i]) : missing.push(i));
      return { status: Status.OK, missing };
    },
    put_manifest: async (req) => {
      checkName(req.name);
      if (!req.manifest) throw new BusError(Status.INVALID_ARGUMENT, "manifest missing");
      for (const h of req.manifest.pages) checkHash(h);
      for (const h of req.manifest.pageIndex ?? []) checkHash(h);
      for (const img of req.manifest.images ?? []) for (const h of img.pages) checkHash(h);
      for (const d of req.manifest.disks ?? []) {
        for (const l of [d.baseLayer, d.pointLayer]) {
          for (const h of l?.mapPages ?? []) checkHash(h);
        }
      }
      const encoded = manifestCodec.encode(req.manifest);
      await storeIo("put manifest", () => store.putManifest(req.name, encoded));
      return { status: Status.OK };
    },
    get_manifest: async (req) => {
      checkName(req.name);
      const encoded = await storeIo("get manifest", () => store.getManifest(req.name));
      if (!encoded) throw new BusError(Status.NOT_FOUND, `no manifest ${req.name}`);
      let manifest: memory.SnapshotManifest;
      try {
        manifest = manifestCodec.decode(encoded);
      } catch (err) {
        throw new BusError(Status.IO_ERROR, `stored manifest ${req.name} is corrupt: ${err}`);
      }
      return { status: Status.OK, manifest };
    },
    list_manifests: async () => {
      const names = await storeIo("list manifests", () => store.listManifests());
      return { status: Status.OK, names };
    },
    delete_manifest: async (req) => {
      checkName(req.name);
      const had = await storeIo("delete manifest", () => store.deleteManifest(req.name));
      if (!had) throw new BusError(Status.NOT_FOUND, `no manifest ${req.name}`);
      return { status: Status.OK };
    },
    collect_garbage: async (req) => {
      if (collecting) {
        throw new BusError(Status.FAILED_PRECONDITION, "a collection runs already: try later");
      }
      collecting = true;
      try {
        return await storeIo("collect garbage", () => collectGarbage(store, recent, req));
      } finally {
        collecting = false;
      }
    },
  };
}

/** How the memory service serves. */
export interface PageServiceOptions {
  /** Service version for discovery (semver). */
  version: string;
  /** Largest page in bytes. */
  maxPage: number;
  /** Largest request accepted; default the server's max_payload. */
  maxRequest?: number;
}

/**
 * Serves `store` as `vmesh.memory.{put_page,get_page,has_pages,put_manifest,get_manifest,
 * list_manifests,delete_manifest,collect_garbage}`.
 */
export function servePages(
  bus: Bus,
  store: PageStore,
  opts: PageServiceOptions,
): Promise<DeviceService> {
  return bus.serve({
    prefix: MEMORY_PREFIX,
    device: "memory",
    name: SERVICE_NAME,
    version: opts.version,
    description: "vmesh content-addressed page store",
    ops: memory.ops,
    handlers: pageHandlers(store, opts.maxPage),
    maxPayloadBytes: opts.maxRequest,
    metadata: { store: store.kind, max_page: String(opts.maxPage) },
  });
}
