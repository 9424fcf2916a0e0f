/**
 * Page garbage collection (`vmesh.memory.collect_garbage`): mark every page a stored manifest
 * names — its flat `pages`, its index pages and the RAM pages they list, its image pages, each
 * disk layer's map pages and the chunks they list — then remove the other pages, except those
 * stored or found present (`has_pages`) within the grace time: a snapshot stores its pages
 * before its manifest, and a page it found present must not go before its manifest lands.
 * @module
 */
import { BusError, codecFor, type memory, Status } from "@vmesh/bus";
import type { PageStore } from "./page_store.ts";

const manifestCodec = codecFor<memory.SnapshotManifest>("vmesh.memory.SnapshotManifest");
const HASH_BYTES = 32;
/** Default grace: pages younger than this are kept. */
export const DEFAULT_MIN_AGE_MS = 600_000;

/** The hex hashes listed in a page of packed 32-byte hashes (zero hashes skipped). */
function listedHashes(page: Uint8Array): string[] {
  const out: string[] = [];
  for (let o = 0; o + HASH_BYTES <= page.length; o += HASH_BYTES) {
    const h = page.subarray(o, o + HASH_BYTES);
    if (h.every((b) => b === 0)) continue;
    out.push([...h].map((b) => b.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}

/**
 * When each page was last stored or found present, by this service (its grace clock beside the
 * store's own write times).
 */
export class RecentPages {
  #seen = new Map<string, number>();

  /** Notes that `hash` was stored or found present now. */
  touch(hash: string): void {
    this.#seen.set(hash, Date.now());
  }

  /** When `hash` was last touched (0: not since the service started). */
  at(hash: string): number {
    return this.#seen.get(hash) ?? 0;
  }

  /** Forgets pages touched before `ms`. */
  prune(ms: number): void {
    for (const [h, t] of this.#seen) if (t < ms) this.#seen.delete(h);
  }
}

/** Runs one collection over `store`; refuses (nothing removed) if a manifest does not decode. */
export async function collectGarbage(
  store: PageStore,
  recent: RecentPages,
  req: memory.CollectGarbage,
): Promise<memory.CollectGarbageReply> {
  const minAge = req.noGrace
    ? Number(req.minAgeMs ?? 0)
    : Number(req.minAgeMs || DEFAULT_MIN_AGE_MS);
  const started = Date.now();
  const names = await store.listManifests();
  const live = new Set<string>();
  const broken: string[] = [];
  // An index or map page: itself live, and every hash it lists.
  const expand = async (h: string): Promise<boolean> => {
    live.add(h);
    const page = await store.getPage(h);
    if (!page) return false;
    for (const x of listedHashes(page)) live.add(x);
    return true;
  };
  for (const name of names) {
    const encoded = await store.getManifest(name);
    if (!encoded) continue; // removed meanwhile
    let m: memory.SnapshotManifest;
    try {
      m = manifestCodec.decode(encoded);
    } catch (e) {
      throw new BusError(
        Status.IO_ERROR,
        `manifest ${name} does not decode (${(e as Error).message}): nothing was removed; ` +
          `remove it (./vmesh snapshots --rm ${name}) and collect again`,
      );
    }
    let ok = true;
    for (const h of m.pages) live.add(h);
    for (const h of m.pageIndex ?? []) ok = await expand(h) && ok;
    for (const img of m.images ?? []) for (const h of img.pages) live.add(h);
    for (const d of m.disks ?? []) {
      for (const l of [d.baseLayer, d.pointLayer]) {
        for (const h of l?.mapPages ?? []) ok = await expand(h) && ok;
      }
    }
    if (!ok) broken.push(name);
  }
  let referenced = 0, keptYoung = 0, removed = 0, removedBytes = 0;
  for (const p of await store.listPages()) {
    if (live.has(p.hash)) {
      referenced++;
      continue;
    }
    if (Math.max(p.mtimeMs, recent.at(p.hash)) > started - minAge) {
      keptYoung++;
      continue;
    }
    if (!req.dryRun && !await store.deletePage(p.hash)) continue;
    removed++;
    removedBytes += p.size;
  }
  recent.prune(started - Math.max(minAge, DEFAULT_MIN_AGE_MS));
  return {
    status: Status.OK,
    manifests: names.length,
    referenced,
    keptYoung,
    removed,
    removedBytes,
    broken,
  };
}
