/**
 * qcow2 L1 and L2 table entries, decoded from their two big-endian 32-bit halves (no BigInt on
 * the I/O path): what a guest cluster maps to, and the entries vmesh writes.
 * @module
 */

const TWO32 = 0x1_0000_0000;
/** Bit 63 (in the high half): refcount is exactly one, writes may go in place. */
export const COPIED_HI = 0x80000000;
/** Bit 62 (in the high half): compressed cluster. */
const COMPRESSED_HI = 0x40000000;

/** What a guest cluster reads as. */
export enum Mapping {
  /** Not allocated: read from the backing file, or zeros. */
  Unallocated,
  /** Reads as zeros, no host cluster (v3 zero flag). */
  Zero,
  /** Reads as zeros, a host cluster is preallocated (v3 zero flag with an offset). */
  ZeroAllocated,
  /** Data at a host offset. */
  Normal,
  /** Deflate-compressed data at a byte offset (not cluster-aligned). */
  Compressed,
}

/** A decoded L2 entry. */
export interface L2Entry {
  mapping: Mapping;
  /** Host offset (cluster-aligned, or the compressed data's byte offset). */
  host: number;
  /** Compressed: bytes of host data spanned, from `host & ~511`, whole 512-byte sectors. */
  compressedSectors: number;
  /** Reserved bits were set (the image is corrupt). */
  reserved: boolean;
}

/**
 * Decodes L2 entry `i` of `table`; `version` decides whether bit 0 is the zero flag.
 *
 * @example
 * ```ts
 * const e = decodeL2(l2, 5, 3, 16);
 * if (e.mapping === Mapping.Normal) console.log("cluster 5 at", e.host);
 * ```
 */
export function decodeL2(view: DataView, i: number, version: number, clusterBits: number): L2Entry {
  const hi = view.getUint32(i * 8);
  const lo = view.getUint32(i * 8 + 4);
  if (hi & COMPRESSED_HI) {
    const shift = 62 - (clusterBits - 8) - 32; // the sector count starts at bit 62-(bits-8)
    const host = (hi & ((1 << shift) - 1)) * TWO32 + lo;
    const sectors = ((hi & 0x3fffffff) >>> shift) + 1;
    return { mapping: Mapping.Compressed, host, compressedSectors: sectors, reserved: false };
  }
  const host = (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
  const zero = version >= 3 && (lo & 1) !== 0;
  const reserved = (lo & 0x1fe) !== 0 || (hi & 0x3f000000) !== 0 ||
    (version < 3 && (lo & 1) !== 0);
  const mapping = zero
    ? (host === 0 ? Mapping.Zero : Mapping.ZeroAllocated)
    : (host === 0 ? Mapping.Unallocated : Mapping.Normal);
  return { mapping, host, compressedSectors: 0, reserved };
}

/** Host offset of the L2 table of L1 entry `i` (0: none); -1 when reserved bits are set. */
export function decodeL1(view: DataView, i: number): number {
  const hi = view.getUint32(i * 8);
  const lo = view.getUint32(i * 8 + 4);
  if ((lo & 0x1ff) !== 0 || (hi & 0x7f000000) !== 0) return -1;
  return (hi & 0x00ffffff) * TWO32 + lo;
}

/** Writes a table entry pointing at `host` with the COPIED flag (refcount 1). */
export function setOwnedEntry(view: DataView, i: number, host: number): void {
  view.setUint32(i * 8, COPIED_HI | Math.floor(host / TWO32));
  view.setUint32(i * 8 + 4, host >>> 0);
}

/** Writes an L2 entry: v3 zero flag without a host cluster (reads zeros, skips the backing). */
export function setZeroEntry(view: DataView, i: number): void {
  view.setUint32(i * 8, 0);
  view.setUint32(i * 8 + 4, 1);
}

/** Writes an unallocated L2 entry. */
export function clearEntry(view: DataView, i: number): void {
  view.setUint32(i * 8, 0);
  view.setUint32(i * 8 + 4, 0);
}
