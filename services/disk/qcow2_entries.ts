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

/** How L2 entries are laid out: the version decides the zero flag, extended L2 the size. */
export interface L2Format {
  version: number;
  clusterBits: number;
  /** Extended L2 entries (incompatible bit 4): 16 bytes with a 32-subcluster bitmap. */
  extended: boolean;
}

/** Every subcluster of the 32. */
export const ALL_SUBCLUSTERS = 0xffffffff;

/** A decoded L2 entry. */
export interface L2Entry {
  mapping: Mapping;
  /** Host offset (cluster-aligned, or the compressed data's byte offset). */
  host: number;
  /** Compressed: bytes of host data spanned, from `host & ~511`, whole 512-byte sectors. */
  compressedSectors: number;
  /**
   * Subclusters with data at the host offset (bit x: subcluster x). Without extended L2 the
   * cluster is one subcluster: bit 0 is set for Normal.
   */
  alloc: number;
  /** Subclusters that read as zeros (without extended L2: bit 0 for Zero, ZeroAllocated). */
  zero: number;
  /** Reserved bits were set, or the bitmap contradicts itself (the image is corrupt). */
  reserved: boolean;
}

/** Bytes of one L2 entry. */
export function l2EntryBytes(f: L2Format): number {
  return f.extended ? 16 : 8;
}

/**
 * Decodes L2 entry `i` of `view`.
 *
 * @example
 * ```ts
 * const e = decodeL2(l2, 5, { version: 3, clusterBits: 16, extended: false });
 * if (e.mapping === Mapping.Normal) console.log("cluster 5 at", e.host);
 * ```
 */
export function decodeL2(view: DataView, i: number, f: L2Format): L2Entry {
  const at = i * (f.extended ? 16 : 8);
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  const zeroWord = f.extended ? view.getUint32(at + 8) : 0;
  const allocWord = f.extended ? view.getUint32(at + 12) : 0;
  if (hi & COMPRESSED_HI) {
    const shift = 62 - (f.clusterBits - 8) - 32; // the sector count starts at bit 62-(bits-8)
    const host = (hi & ((1 << shift) - 1)) * TWO32 + lo;
    const sectors = ((hi & 0x3fffffff) >>> shift) + 1;
    return {
      mapping: Mapping.Compressed,
      host,
      compressedSectors: sectors,
      alloc: 0,
      zero: 0,
      reserved: zeroWord !== 0 || allocWord !== 0,
    };
  }
  const host = (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
  if (f.extended) {
    const reserved = (lo & 0x1ff) !== 0 || (hi & 0x3f000000) !== 0 ||
      (allocWord & zeroWord) !== 0 || (host === 0 && allocWord !== 0);
    return {
      mapping: host === 0 ? Mapping.Unallocated : Mapping.Normal,
      host,
      compressedSectors: 0,
      alloc: allocWord,
      zero: zeroWord,
      reserved,
    };
  }
  const zero = f.version >= 3 && (lo & 1) !== 0;
  const reserved = (lo & 0x1fe) !== 0 || (hi & 0x3f000000) !== 0 ||
    (f.version < 3 && (lo & 1) !== 0);
  const mapping = zero
    ? (host === 0 ? Mapping.Zero : Mapping.ZeroAllocated)
    : (host === 0 ? Mapping.Unallocated : Mapping.Normal);
  return {
    mapping,
    host,
    compressedSectors: 0,
    alloc: mapping === Mapping.Normal ? 1 : 0,
    zero: zero ? 1 : 0,
    reserved,
  };
}

/** Host offset of the L2 table of L1 entry `i` (0: none); -1 when reserved bits are set. */
export function decodeL1(view: DataView, i: number): number {
  const hi = view.getUint32(i * 8);
  const lo = view.getUint32(i * 8 + 4);
  if ((lo & 0x1ff) !== 0 || (hi & 0x7f000000) !== 0) return -1;
  return (hi & 0x00ffffff) * TWO32 + lo;
}

/** Writes L1 entry `i` pointing at the L2 table at `host`, with the COPIED flag (refcount 1). */
export function setL1Entry(view: DataView, i: number, host: number): void {
  view.setUint32(i * 8, COPIED_HI | Math.floor(host / TWO32));
  view.setUint32(i * 8 + 4, host >>> 0);
}

/**
 * Writes L2 entry `i`: data at `host` with the COPIED flag; with extended L2, the subclusters
 * `alloc` hold data and `zero` read as zeros (default: the whole cluster holds data).
 */
export function setL2Owned(
  view: DataView,
  i: number,
  host: number,
  f: L2Format,
  alloc = ALL_SUBCLUSTERS,
  zero = 0,
): void {
  const at = i * (f.extended ? 16 : 8);
  view.setUint32(at, COPIED_HI | Math.floor(host / TWO32));
  view.setUint32(at + 4, host >>> 0);
  if (f.extended) {
    view.setUint32(at + 8, zero >>> 0);
    view.setUint32(at + 12, alloc >>> 0);
  }
}

/** Writes an L2 entry reading as zeros without a host cluster (skips the backing file). */
export function setL2Zero(view: DataView, i: number, f: L2Format): void {
  const at = i * (f.extended ? 16 : 8);
  view.setUint32(at, 0);
  view.setUint32(at + 4, f.extended ? 0 : 1); // v3 zero flag, or every subcluster's zero bit
  if (f.extended) {
    view.setUint32(at + 8, ALL_SUBCLUSTERS);
    view.setUint32(at + 12, 0);
  }
}

/** Writes an unallocated L2 entry. */
export function clearL2(view: DataView, i: number, f: L2Format): void {
  const at = i * (f.extended ? 16 : 8);
  for (let b = 0; b < (f.extended ? 16 : 8); b += 4) view.setUint32(at + b, 0);
}

/** Sets or clears the COPIED flag of L2 entry `i`. */
export function setL2Copied(view: DataView, i: number, f: L2Format, copied: boolean): void {
  const at = i * (f.extended ? 16 : 8);
  const hi = view.getUint32(at) & ~COPIED_HI;
  view.setUint32(at, copied ? (hi | COPIED_HI) >>> 0 : hi);
}
