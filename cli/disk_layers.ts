/**
 * Disk layers in the memory service: a snapshot's disk point (and the base image under it) as
 * pages of the store — 64 KiB chunks named by SHA-256, zero chunks not stored, chunks already
 * stored (a base shared by many snapshots) not sent again — so a restore on a host without the
 * files rebuilds them from the bus (`./vmesh snapshot --disk-layers`, cli/restored_vm.ts).
 * @module
 */
import type { Bus, memory } from "@vmesh/bus";
import { fetchPages, storePages } from "../services/cpu/snapshot/page_client.ts";
import { CHUNK_SIZE, HASH_BYTES, hex, isZero, planLayer, sha256 } from "./appliance_layout.ts";

/** Chunk hashes per map page (a map page is then 64 KiB, the store's default page limit). */
const HASHES_PER_MAP_PAGE = 2048;
/** Chunks held in memory at once while storing or fetching (16 MiB). */
const BATCH = 256;

/** What {@link storeDiskLayer} stored. */
export interface StoredLayer {
  layer: memory.DiskLayer;
  /** Distinct non-zero chunks of the file; pages (chunks and map) the store lacked, and bytes. */
  chunks: number;
  sent: number;
  sentBytes: number;
}

/** Stores file `path` as a disk layer of the memory service on `bus`. */
export async function storeDiskLayer(bus: Bus, path: string): Promise<StoredLayer> {
  let batch = new Map<string, Uint8Array>();
  let sent = 0, sentBytes = 0;
  const flush = async () => {
    const r = await storePages(bus, batch);
    sent += r.sent;
    sentBytes += r.bytes;
    batch = new Map();
  };
  const { map, info } = await planLayer(path, async (k, c) => {
    batch.set(k, c);
    if (batch.size >= BATCH) await flush();
  });
  const mapPages: string[] = [];
  for (let o = 0; o < map.length; o += HASHES_PER_MAP_PAGE * HASH_BYTES) {
    const page = map.slice(o, o + HASHES_PER_MAP_PAGE * HASH_BYTES);
    const k = hex(sha256(page));
    batch.set(k, page);
    mapPages.push(k);
  }
  await flush();
  return {
    layer: { size: info.size, chunkSize: CHUNK_SIZE, mapPages },
    chunks: info.stored,
    sent,
    sentBytes,
  };
}

/**
 * Writes disk layer `layer` from the memory service into file `out` (zero chunks as holes,
 * each chunk's hash and length checked); throws naming `what` if a page is missing or wrong.
 */
export async function fetchDiskLayer(
  bus: Bus,
  layer: memory.DiskLayer,
  out: string,
  what: string,
): Promise<void> {
  if (layer.chunkSize !== CHUNK_SIZE) throw new Error(`${what}: chunk size ${layer.chunkSize}`);
  const count = Math.ceil(layer.size / CHUNK_SIZE);
  if (layer.mapPages.length !== Math.ceil(count / HASHES_PER_MAP_PAGE)) {
    throw new Error(`${what}: ${layer.mapPages.length} map pages for ${count} chunks`);
  }
  const got = await fetchPages(bus, layer.mapPages, () => `chunk map of ${what}`);
  const map = new Uint8Array(count * HASH_BYTES);
  layer.mapPages.forEach((h, p) => {
    const page = got.get(h)!;
    const want = Math.min(HASHES_PER_MAP_PAGE, count - p * HASHES_PER_MAP_PAGE) * HASH_BYTES;
    if (page.length !== want || hex(sha256(page)) !== h) {
      throw new Error(`${what}: map page ${p} is not what its hash names`);
    }
    map.set(page, p * HASHES_PER_MAP_PAGE * HASH_BYTES);
  });
  const tmp = `${out}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const f = await Deno.open(tmp, { write: true, createNew: true });
  try {
    await f.truncate(layer.size);
    for (let from = 0; from < count; from += BATCH) {
      const idx: number[] = [];
      const hashes: string[] = [];
      for (let i = from; i < Math.min(count, from + BATCH); i++) {
        const h = map.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
        if (isZero(h)) continue;
        idx.push(i);
        hashes.push(hex(h));
      }
      const chunks = await fetchPages(bus, hashes, (h) => `a chunk ${h.slice(0, 12)} of ${what}`);
      for (let j = 0; j < idx.length; j++) {
        const c = chunks.get(hashes[j])!;
        const len = Math.min(CHUNK_SIZE, layer.size - idx[j] * CHUNK_SIZE);
        if (c.length !== len || hex(sha256(c)) !== hashes[j]) {
          throw new Error(`${what}: chunk ${idx[j]} is not what its hash names`);
        }
        await f.seek(idx[j] * CHUNK_SIZE, Deno.SeekMode.Start);
        for (let o = 0; o < len;) o += await f.write(c.subarray(o));
      }
    }
    await f.sync();
    f.close();
    await Deno.rename(tmp, out);
  } catch (e) {
    try {
      f.close();
    } catch { /* closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
