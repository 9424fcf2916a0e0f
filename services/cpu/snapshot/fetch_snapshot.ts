/**
 * Restoring a snapshot: the manifest and every page it refers to are fetched and checked
 * first ({@link fetchSnapshot}; a missing page or a bad manifest is a SnapshotError before
 * anything is built), then written into a new machine ({@link applySnapshot}).
 * @module
 */
import { type Bus, memory } from "@vmesh/bus";
import type { Machine } from "../machine/machine.ts";
import { loadMachine } from "./machine_state.ts";
import { parseMachineFlags, type SnapshotMachineFlags } from "./machine_flags.ts";
import { HASH_BYTES, HASHES_PER_INDEX, PAGE_SIZE, pageHashAt, sha256Hex } from "./ram_pages.ts";
import { fetchPages, memoryCall } from "./page_client.ts";
import { SnapshotError } from "./snapshot_error.ts";

/** A snapshot fetched whole from the memory service, checked, ready to apply. */
export interface FetchedSnapshot {
  name: string;
  manifest: memory.SnapshotManifest;
  flags: SnapshotMachineFlags;
  /** Packed binary page hashes, one per RAM page (zeros: a zero page). */
  hashes: Uint8Array;
  /** The distinct non-zero pages by hex hash. */
  pages: Map<string, Uint8Array>;
  /** Firmware, kernel, initrd bytes by role. */
  images: Map<string, Uint8Array>;
}

/** Fetches and checks snapshot `name`; throws a SnapshotError saying what is wrong. */
export async function fetchSnapshot(bus: Bus, name: string): Promise<FetchedSnapshot> {
  let reply;
  try {
    reply = await memoryCall(bus, memory.ops.get_manifest, { name }, `fetching manifest ${name}`);
  } catch (e) {
    if (e instanceof SnapshotError && /no manifest/.test(e.message)) {
      throw new SnapshotError(
        `no snapshot ${name} on the memory service (./vmesh snapshots lists them)`,
      );
    }
    throw e;
  }
  const m = reply.manifest;
  const bad = (why: string): never => {
    throw new SnapshotError(`snapshot ${name} has a bad manifest: ${why}`);
  };
  if (!m) return bad("empty");
  if (m.pageSize !== PAGE_SIZE) bad(`page size ${m.pageSize}, not ${PAGE_SIZE}`);
  const flags = parseMachineFlags(m.machine);
  const ramSize = m.ramSize ?? 0;
  if (ramSize !== flags.ramSize) {
    bad(`RAM size ${ramSize} differs from the flags' ${flags.ramSize}`);
  }
  const pageCount = ramSize / PAGE_SIZE;
  const index = m.pageIndex ?? [];
  if (index.length !== Math.ceil(pageCount / HASHES_PER_INDEX)) {
    bad(`${index.length} index pages for ${pageCount} RAM pages`);
  }
  if ((m.harts ?? []).length === 0) bad("no hart records");
  if (typeof m.mtime !== "number" || !(m.mtime >= 0)) bad("no clock value (mtime)");

  const indexPages = await fetchPages(bus, index, () => `RAM index of ${name}`);
  const hashes = new Uint8Array(pageCount * HASH_BYTES);
  index.forEach((h, i) => {
    const ip = indexPages.get(h)!;
    const want = Math.min(HASHES_PER_INDEX, pageCount - i * HASHES_PER_INDEX) * HASH_BYTES;
    if (ip.length !== want) bad(`index page ${i} has ${ip.length} bytes, not ${want}`);
    if (sha256Hex(ip) !== h) bad(`index page ${i} does not match its hash`);
    hashes.set(ip, i * HASHES_PER_INDEX * HASH_BYTES);
  });
  const wanted: string[] = [];
  const pageOf = new Map<string, number>();
  for (let p = 0; p < pageCount; p++) {
    const h = pageHashAt(hashes, p);
    if (h === undefined) continue;
    wanted.push(h);
    if (!pageOf.has(h)) pageOf.set(h, p);
  }
  const pages = await fetchPages(bus, wanted, (h) => {
    const p = pageOf.get(h)!;
    return `RAM page ${p} at 0x${(0x8000_0000 + p * PAGE_SIZE).toString(16)} of ${name}`;
  });
  for (const [h, data] of pages) {
    if (data.length !== PAGE_SIZE || sha256Hex(data) !== h) {
      bad(`page ${h} does not match its hash`);
    }
  }

  const images = new Map<string, Uint8Array>();
  for (const img of m.images ?? []) {
    const got = await fetchPages(bus, img.pages, () => `${img.role} image of ${name}`);
    const bytes = new Uint8Array(img.size);
    let o = 0;
    for (const h of img.pages) {
      const c = got.get(h)!;
      if (o + c.length > img.size) bad(`the ${img.role} image is longer than ${img.size} bytes`);
      bytes.set(c, o);
      o += c.length;
    }
    if (o !== img.size) bad(`the ${img.role} image has ${o} bytes, not ${img.size}`);
    images.set(img.role, bytes);
  }
  if (!images.has("bios") && !images.has("kernel")) bad("neither a firmware nor a kernel image");
  return { name, manifest: m, flags, hashes, pages, images };
}

/**
 * Writes the snapshot's RAM into `machine` (pages absent from it are zeroed) and loads every
 * hart and device record. Call before the machine first runs.
 */
export function applySnapshot(machine: Machine, snap: FetchedSnapshot): void {
  const ram = machine.mem.ram();
  if (ram.length !== snap.hashes.length / HASH_BYTES * PAGE_SIZE) {
    throw new SnapshotError(
      `the machine has ${ram.length} bytes of RAM; snapshot ${snap.name} has ` +
        `${snap.hashes.length / HASH_BYTES * PAGE_SIZE}`,
    );
  }
  ram.fill(0);
  const pageCount = snap.hashes.length / HASH_BYTES;
  for (let p = 0; p < pageCount; p++) {
    const h = pageHashAt(snap.hashes, p);
    if (h !== undefined) ram.set(snap.pages.get(h)!, p * PAGE_SIZE);
  }
  machine.mem.noteWrite(0x8000_0000, ram.length);
  loadMachine(machine, snap.manifest.harts ?? [], snap.manifest.devices);
}
