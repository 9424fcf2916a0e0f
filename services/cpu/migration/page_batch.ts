/**
 * Guest RAM pages on the wire (`migration.PageBatch`): page numbers as little-endian uint32,
 * 4 KiB of data per non-zero page, and the numbers of pages that are all zero (sent as a number
 * only, as QEMU's zero-page flag).
 * @module
 */
import type { migration } from "@vmesh/bus";

/** Bytes of one page. */
export const PAGE_SIZE = 4096;

/** True when page `p` of `ram32` (RAM as int32 words) is all zero. */
export function isZeroPage(ram32: Int32Array, p: number): boolean {
  const w = ram32;
  let i = p * (PAGE_SIZE / 4);
  const end = i + PAGE_SIZE / 4;
  // 16 words a test: about 1.6x faster than one (measured on 256 MiB here).
  for (; i < end; i += 16) {
    if (
      (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7] |
        w[i + 8] | w[i + 9] | w[i + 10] | w[i + 11] | w[i + 12] | w[i + 13] | w[i + 14] |
        w[i + 15]) !== 0
    ) return false;
  }
  return true;
}

/** RAM as int32 words (a view). */
export function ramWords(ram: Uint8Array): Int32Array {
  return new Int32Array(ram.buffer, ram.byteOffset, ram.byteLength >> 2);
}

/**
 * Page numbers of every non-zero page of `ram`, read a slice at a time with a turn of the event
 * loop between slices (the guest runs on meanwhile).
 */
export async function nonZeroPagesAsync(ram: Uint8Array, slice = 4096): Promise<number[]> {
  const w = ramWords(ram);
  const out: number[] = [];
  const n = ram.length / PAGE_SIZE;
  for (let p0 = 0; p0 < n; p0 += slice) {
    for (let p = p0; p < Math.min(n, p0 + slice); p++) if (!isZeroPage(w, p)) out.push(p);
    await new Promise((r) => setTimeout(r, 0));
  }
  return out;
}

/** Page numbers of every non-zero page of `ram`. */
export function nonZeroPages(ram: Uint8Array): number[] {
  const w = ramWords(ram);
  const out: number[] = [];
  for (let p = 0; p < ram.length / PAGE_SIZE; p++) if (!isZeroPage(w, p)) out.push(p);
  return out;
}

/** Copies pages `pages` of `ram` into one batch (zero pages by number only). */
export function encodePages(ram: Uint8Array, pages: readonly number[], round: number): {
  batch: migration.PageBatch;
  bytes: number;
} {
  const w = ramWords(ram);
  const data: number[] = [];
  const zero: number[] = [];
  for (const p of pages) (isZeroPage(w, p) ? zero : data).push(p);
  const out = new Uint8Array(data.length * PAGE_SIZE);
  data.forEach((p, i) => out.set(ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), i * PAGE_SIZE));
  const batch = {
    round,
    indices: new Uint8Array(new Uint32Array(data).buffer),
    data: out,
    zero: new Uint8Array(new Uint32Array(zero).buffer),
  };
  return { batch, bytes: out.length + batch.indices.length + batch.zero.length };
}

/** Writes a batch into `ram`; returns the pages written. Throws on a malformed batch. */
export function applyPages(ram: Uint8Array, b: migration.PageBatch): number {
  const idx = u32s(b.indices, "indices");
  const zero = u32s(b.zero, "zero");
  if (b.data.length !== idx.length * PAGE_SIZE) {
    throw new RangeError(`a batch of ${idx.length} pages carries ${b.data.length} bytes`);
  }
  const pages = ram.length / PAGE_SIZE;
  for (const p of [...idx, ...zero]) {
    if (p >= pages) throw new RangeError(`page ${p} is outside the ${pages} pages of RAM`);
  }
  idx.forEach((p, i) =>
    ram.set(b.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), p * PAGE_SIZE)
  );
  for (const p of zero) ram.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  return idx.length + zero.length;
}

function u32s(b: Uint8Array, what: string): Uint32Array {
  if (b.length % 4 !== 0) throw new RangeError(`${what} is not a list of uint32`);
  return new Uint32Array(b.slice().buffer);
}
