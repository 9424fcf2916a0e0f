/**
 * Guest RAM as content-addressed pages: each 4 KiB page is named by its SHA-256, zero pages
 * are not stored, and the per-page hashes are themselves packed into index pages (2048
 * binary hashes each), so a manifest stays small for any RAM size (256 MiB: 32 index pages).
 * @module
 */
import { createHash } from "node:crypto";

/** Bytes of one RAM page in a snapshot. */
export const PAGE_SIZE = 4096;
/** Bytes of one binary SHA-256. */
export const HASH_BYTES = 32;
/** Page hashes per index page (an index page is then 64 KiB, the store's default limit). */
export const HASHES_PER_INDEX = 2048;

/** The lowercase hex SHA-256 of `data` (the memory service's page name). */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A copy of RAM at one instant, as the pages to store. */
export interface RamScan {
  /** Page count. */
  pages: number;
  /** Zero pages (not stored). */
  zeroPages: number;
  /** The binary hash of every page in order (32 zero bytes for a zero page). */
  hashes: Uint8Array;
  /** Distinct non-zero pages by hex hash: copies taken during the scan. */
  distinct: Map<string, Uint8Array>;
}

function isZero(words: Int32Array, from: number, count: number): boolean {
  for (let i = from, end = from + count; i < end; i++) if (words[i] !== 0) return false;
  return true;
}

/**
 * Hashes every page of `ram` synchronously (so the result is one instant of the guest),
 * copying the distinct non-zero pages.
 *
 * @example
 * ```ts
 * const scan = scanRam(new Uint8Array(3 * 4096).fill(7, 4096, 8192));
 * // scan.pages === 3, scan.zeroPages === 2, scan.distinct.size === 1
 * ```
 */
export function scanRam(ram: Uint8Array): RamScan {
  if (ram.length % PAGE_SIZE !== 0 || ram.byteOffset % 4 !== 0) {
    throw new RangeError(`RAM of ${ram.length} bytes is not whole aligned ${PAGE_SIZE}-byte pages`);
  }
  const pages = ram.length / PAGE_SIZE;
  const words = new Int32Array(ram.buffer, ram.byteOffset, ram.length / 4);
  const hashes = new Uint8Array(pages * HASH_BYTES);
  const distinct = new Map<string, Uint8Array>();
  let zeroPages = 0;
  for (let p = 0; p < pages; p++) {
    if (isZero(words, p * (PAGE_SIZE / 4), PAGE_SIZE / 4)) {
      zeroPages++;
      continue;
    }
    // A copy: the shared memory keeps changing once the guest runs again.
    const page = ram.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    const digest = createHash("sha256").update(page).digest();
    hashes.set(digest, p * HASH_BYTES);
    const hex = hexOf(digest);
    if (!distinct.has(hex)) distinct.set(hex, page);
  }
  return { pages, zeroPages, hashes, distinct };
}

/** Splits the packed page hashes into index pages of {@link HASHES_PER_INDEX} hashes. */
export function indexPages(hashes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const step = HASHES_PER_INDEX * HASH_BYTES;
  for (let o = 0; o < hashes.length; o += step) out.push(hashes.slice(o, o + step));
  return out;
}

/** The hex hash of page `i` of packed `hashes`, or undefined for a zero page. */
export function pageHashAt(hashes: Uint8Array, i: number): string | undefined {
  const h = hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
  for (const b of h) if (b !== 0) return hexOf(h);
  return undefined;
}

/** Lowercase hex of `bytes`. */
export function hexOf(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** `data` in {@link PAGE_SIZE} chunks (the last may be shorter; none for empty data). */
export function chunks(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < data.length; o += PAGE_SIZE) out.push(data.subarray(o, o + PAGE_SIZE));
  return out;
}
