/**
 * What an appliance (`./vmesh export SNAP -o vm.tar`) holds, member by member, and how a disk
 * layer file travels in it: cut in 64 KiB chunks, each named by its SHA-256, zero chunks left
 * out and a repeated chunk stored once (so a sparse 64 MiB image with 37 MB written costs 37
 * MB). The members, in this order:
 *
 * | member                          | what                                                            |
 * | ------------------------------- | --------------------------------------------------------------- |
 * | `vmesh-appliance.json`          | {@link ApplianceInfo}: format, version, names, flags, disk layers |
 * | `snapshot.pb`                   | the snapshot as `vmesh.memory.PutManifest` (proto/memory.proto)  |
 * | `pages.idx`, `pages.bin`        | every page the manifest names: 36-byte records (SHA-256, u32 LE length), then the pages |
 * | `disks/<dev>.<layer>.map`       | one 32-byte SHA-256 per chunk of the layer file (zeros: a zero chunk) |
 * | `disks/<dev>.<layer>.data`      | the distinct non-zero chunks, in order of first use               |
 * | `SHA256SUMS`                    | `sha256sum` lines of every member above (`sha256sum -c` checks a `tar x`) |
 *
 * `<layer>` is `base` (the image the disk service served) or `point` (the snapshot's frozen
 * overlay over it; absent for a read-only disk, whose image is its own point).
 * @module
 */
import { createHash } from "node:crypto";
import type { SnapshotMachineFlags } from "../services/cpu/snapshot/mod.ts";

/** `format` of {@link ApplianceInfo}. */
export const APPLIANCE_FORMAT = "vmesh-appliance";
/** The layout version this code writes and reads. */
export const APPLIANCE_VERSION = 1;
/** Bytes of a disk layer chunk. */
export const CHUNK_SIZE = 64 * 1024;
/** Bytes of one binary SHA-256. */
export const HASH_BYTES = 32;
/** Bytes of one `pages.idx` record. */
export const PAGE_RECORD = HASH_BYTES + 4;

/** Member names. */
export const MEMBERS = {
  info: "vmesh-appliance.json",
  snapshot: "snapshot.pb",
  pageIndex: "pages.idx",
  pages: "pages.bin",
  sums: "SHA256SUMS",
  map: (device: string, layer: LayerRole) => `disks/${device}.${layer}.map`,
  data: (device: string, layer: LayerRole) => `disks/${device}.${layer}.data`,
} as const;

/** A disk layer's role. */
export type LayerRole = "base" | "point";

/** One disk layer file as the appliance carries it. */
export interface LayerInfo {
  /** Bytes of the file. */
  size: number;
  chunkSize: number;
  /** Chunks of the file (the last may be shorter). */
  chunks: number;
  /** Distinct non-zero chunks stored, and their bytes (the `.data` member's size). */
  stored: number;
  dataBytes: number;
}

/** One disk of the VM. */
export interface ApplianceDisk {
  device: string;
  /** The disk service's backend kind at the snapshot ("cow", "qcow2", "raw"). */
  backend: string;
  base: LayerInfo;
  /** Absent: a read-only disk, served from its base alone. */
  point?: LayerInfo;
}

/** `vmesh-appliance.json`. */
export interface ApplianceInfo {
  format: typeof APPLIANCE_FORMAT;
  version: number;
  /** The snapshot's name where it was exported. */
  snapshot: string;
  vm: string;
  createdUnixMs: number;
  exportedUnixMs: number;
  /** The machine's flags (also inside snapshot.pb; here for a reader of the tar). */
  machine: SnapshotMachineFlags;
  /** Records in pages.idx. */
  pages: number;
  disks: ApplianceDisk[];
}

/** Lowercase hex of `b`. */
export function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** The binary SHA-256 of `b`. */
export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(b).digest());
}

/** Whether every byte of `b` is zero. */
export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Reads `path` in {@link CHUNK_SIZE} chunks (each a fresh buffer, the last shorter). */
export async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    while (true) {
      const buf = new Uint8Array(CHUNK_SIZE);
      let n = 0;
      while (n < CHUNK_SIZE) {
        const r = await f.read(buf.subarray(n));
        if (r === null) break;
        n += r;
      }
      if (n) yield buf.subarray(0, n);
      if (n < CHUNK_SIZE) return;
    }
  } finally {
    f.close();
  }
}

/** A layer file's chunk map (pass one of the export): what {@link layerData} then writes. */
export interface LayerPlan {
  path: string;
  info: LayerInfo;
  map: Uint8Array;
}

/**
 * Hashes every chunk of `path`: its map and how much the `.data` member holds; `onNew` gets
 * each distinct non-zero chunk once, in order (to store it).
 */
export async function planLayer(
  path: string,
  onNew?: (hash: string, chunk: Uint8Array) => Promise<void>,
): Promise<LayerPlan> {
  const { size } = await Deno.stat(path);
  const chunks = Math.ceil(size / CHUNK_SIZE);
  const map = new Uint8Array(chunks * HASH_BYTES);
  const seen = new Set<string>();
  let i = 0, stored = 0, dataBytes = 0;
  for await (const c of fileChunks(path)) {
    if (!isZero(c)) {
      const h = sha256(c);
      map.set(h, i * HASH_BYTES);
      const k = hex(h);
      if (!seen.has(k)) {
        seen.add(k);
        stored++;
        dataBytes += c.length;
        await onNew?.(k, c);
      }
    }
    i++;
  }
  if (i !== chunks) throw new Error(`${path} changed while it was read (${i} of ${chunks} chunks)`);
  return { path, map, info: { size, chunkSize: CHUNK_SIZE, chunks, stored, dataBytes } };
}

/** The `.data` member of a planned layer (pass two): refuses a file changed since the plan. */
export async function* layerData(plan: LayerPlan): AsyncGenerator<Uint8Array> {
  const seen = new Set<string>();
  let i = 0;
  for await (const c of fileChunks(plan.path)) {
    const want = plan.map.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
    const zero = isZero(want);
    if (zero !== isZero(c) || (!zero && hex(sha256(c)) !== hex(want))) {
      throw new Error(`${plan.path} changed while it was exported (chunk ${i})`);
    }
    i++;
    if (zero) continue;
    const k = hex(want);
    if (seen.has(k)) continue;
    seen.add(k);
    yield c;
  }
}

/**
 * Writes layer file `out` from its map and `.data` member file `data`: zero chunks stay holes,
 * each stored chunk's SHA-256 is checked; any mismatch, short or extra data is an Error.
 */
export async function rebuildLayer(
  out: string,
  info: LayerInfo,
  map: Uint8Array,
  data: string,
  what: string,
): Promise<void> {
  if (info.chunkSize !== CHUNK_SIZE) throw new Error(`${what}: chunk size ${info.chunkSize}`);
  if (info.chunks !== Math.ceil(info.size / CHUNK_SIZE) || map.length !== info.chunks * 32) {
    throw new Error(`${what}: its map has ${map.length / 32} chunks for ${info.size} bytes`);
  }
  const src = await Deno.open(data, { read: true });
  const dst = await Deno.open(out, { write: true, read: true, create: true, truncate: true });
  try {
    await dst.truncate(info.size);
    const first = new Map<string, number>();
    const read = async (buf: Uint8Array, f: Deno.FsFile) => {
      let n = 0;
      while (n < buf.length) {
        const r = await f.read(buf.subarray(n));
        if (r === null) break;
        n += r;
      }
      return n;
    };
    for (let i = 0; i < info.chunks; i++) {
      const want = map.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
      if (isZero(want)) continue;
      const len = Math.min(CHUNK_SIZE, info.size - i * CHUNK_SIZE);
      const buf = new Uint8Array(len);
      const k = hex(want);
      const at = first.get(k);
      if (at === undefined) {
        if (await read(buf, src) !== len) throw new Error(`${what}: its data ends at chunk ${i}`);
        first.set(k, i);
      } else {
        await dst.seek(at * CHUNK_SIZE, Deno.SeekMode.Start);
        await read(buf, dst);
      }
      if (hex(sha256(buf)) !== k) throw new Error(`${what}: chunk ${i} does not match its hash`);
      await dst.seek(i * CHUNK_SIZE, Deno.SeekMode.Start);
      for (let o = 0; o < len;) o += await dst.write(buf.subarray(o));
    }
    if (await read(new Uint8Array(1), src)) throw new Error(`${what}: data left over`);
    await dst.sync();
  } finally {
    src.close();
    dst.close();
  }
}
