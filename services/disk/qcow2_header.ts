/**
 * The qcow2 image header (QEMU docs/interop/qcow2.txt): decoding with every check an image must
 * pass before it is served, and encoding for images vmesh creates. Versions 2 and 3.
 * @module
 */

import type { L2Format } from "./qcow2_entries.ts";

/** `QFI\xfb`, the first four bytes of every qcow2 image. */
export const QCOW2_MAGIC = 0x514649fb;
/** Header extension types vmesh reads. */
export const EXT_END = 0;
/** Backing file format name string ("raw", "qcow2"). */
export const EXT_BACKING_FORMAT = 0xe2792aca;
/** Feature name table: names for feature bits, used in error messages. */
export const EXT_FEATURE_NAMES = 0x6803f857;
/** Length of a version 2 header. */
export const V2_HEADER_LENGTH = 72;
/** Length of the version 3 header QEMU 7.2 writes (with compression_type and padding). */
export const V3_HEADER_LENGTH = 112;
/** QEMU's limits: 2 MiB clusters, 32 MiB L1 table, 8 MiB refcount table. */
export const MAX_CLUSTER_BITS = 21;
const MAX_L1_BYTES = 32 << 20;
const MAX_REFCOUNT_TABLE_BYTES = 8 << 20;
const MAX_BACKING_NAME = 1023;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1;
/** The image was marked corrupt by QEMU; only reading is safe. */
export const INCOMPAT_CORRUPT = 2;
/** A compression type other than zlib is named in the compression_type field. */
const INCOMPAT_COMPRESSION = 8;
/** Extended L2 entries: 16 bytes, 32 subclusters per cluster. */
export const INCOMPAT_EXTENDED_L2 = 16;
const INCOMPAT_NAMES = [
  "dirty",
  "corrupt",
  "external data file",
  "compression type",
  "extended L2",
];

/** A qcow2 header as decoded (offsets and sizes in bytes unless named otherwise). */
export interface Qcow2Header {
  version: 2 | 3;
  /** Backing file name (as stored: relative names are relative to the image's directory). */
  backingFile?: string;
  /** Backing file format from the header extension, when present. */
  backingFormat?: string;
  clusterBits: number;
  /** Virtual disk size. */
  size: number;
  /** 0: none (the only method vmesh accepts). */
  cryptMethod: number;
  /** Entries of the active L1 table. */
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Feature bitmasks (v3; 0 for v2). Bits above 31 are refused, so they fit a number. */
  incompatibleFeatures: number;
  compatibleFeatures: number;
  autoclearFeatures: number;
  /** Autoclear bits 32..63 (cleared with the others before the first write). */
  autoclearHigh: number;
  /** Compression type of compressed clusters: 0 zlib, 1 zstd. */
  compressionType: number;
  /** log2 of the refcount width in bits (4 for v2: 16-bit refcounts). */
  refcountOrder: number;
  headerLength: number;
  /** Feature names from the feature name table, keyed `type:bit`. */
  featureNames: Map<string, string>;
}

/** Why an image is refused: its message says what is wrong and what to do. */
export class Qcow2FormatError extends Error {
  override name = "Qcow2FormatError";
}

const fail = (message: string): never => {
  throw new Qcow2FormatError(message);
};

/** Reads a big-endian u64 as a number; refuses values past 2^53 (no image is that large). */
export function u64(view: DataView, at: number, what: string): number {
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  if (hi >= 0x200000) {
    fail(`${what} ${hi.toString(16)}${lo.toString(16).padStart(8, "0")}h is too large`);
  }
  return hi * 0x1_0000_0000 + lo;
}

/** Writes a number as a big-endian u64. */
export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x1_0000_0000));
  view.setUint32(at + 4, value >>> 0);
}

/** Whether `buf` starts with the qcow2 magic. */
export function isQcow2(buf: Uint8Array): boolean {
  return buf.length >= 4 &&
    new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0) === QCOW2_MAGIC;
}

function featureList(mask: number, type: number, names: Map<string, string>): string {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (mask & (2 ** bit)) {
      out.push(names.get(`${type}:${bit}`) ?? INCOMPAT_NAMES[bit] ?? `bit ${bit}`);
    }
  }
  return out.join(", ");
}

/**
 * Decodes and checks the header in `head` (the image's first cluster, or at least its first
 * 4 KiB when the cluster is larger: it is re-read whole by the caller) of a file of `fileSize`
 * bytes. Throws a Qcow2FormatError naming the first problem.
 *
 * @example
 * ```ts
 * const head = await Deno.readFile("disk.qcow2");
 * const h = decodeQcow2Header(head, head.length);
 * console.log(h.size, h.clusterBits, h.backingFile);
 * ```
 */
export function decodeQcow2Header(head: Uint8Array, fileSize: number): Qcow2Header {
  if (head.length < V2_HEADER_LENGTH) fail("file too short for a qcow2 header");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) fail("not a qcow2 image (bad magic)");
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) fail(`unsupported qcow2 version ${version} (want 2 or 3)`);
  const clusterBits = view.getUint32(20);
  if (clusterBits < 9 || clusterBits > MAX_CLUSTER_BITS) {
    fail(`cluster_bits ${clusterBits} out of range 9..${MAX_CLUSTER_BITS}`);
  }
  const cs = 2 ** clusterBits;
  const h: Qcow2Header = {
    version: version as 2 | 3,
    clusterBits,
    size: u64(view, 24, "size"),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, "l1_table_offset"),
    refcountTableOffset: u64(view, 48, "refcount_table_offset"),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(view, 64, "snapshots_offset"),
    incompatibleFeatures: 0,
    compatibleFeatures: 0,
    autoclearFeatures: 0,
    autoclearHigh: 0,
    compressionType: 0,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    featureNames: new Map(),
  };
  if (version === 3) {
    if (head.length < 104) fail("file too short for a version 3 header");
    h.headerLength = view.getUint32(100);
    if (h.headerLength < 104 || h.headerLength % 8 !== 0 || h.headerLength > cs) {
      fail(`header_length ${h.headerLength} invalid (multiple of 8, 104..cluster size)`);
    }
    if (view.getUint32(72) !== 0) {
      fail(`unsupported incompatible features: bits above 31 (${view.getUint32(72)}h << 32)`);
    }
    // Unknown compatible bits may be ignored; unknown autoclear bits are cleared before writing.
    h.incompatibleFeatures = view.getUint32(76);
    h.compatibleFeatures = view.getUint32(84);
    h.autoclearFeatures = view.getUint32(92);
    h.autoclearHigh = view.getUint32(88);
    h.refcountOrder = view.getUint32(96);
    if (h.refcountOrder > 6) fail(`refcount_order ${h.refcountOrder} exceeds 6`);
    if (h.headerLength > 104) h.compressionType = head[104];
    const named = (h.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0;
    if (named !== (h.compressionType !== 0)) {
      fail(`compression_type ${h.compressionType} disagrees with the compression type feature bit`);
    }
    if (h.compressionType > 1) {
      fail(`unknown compression type ${h.compressionType} (want 0 zlib or 1 zstd)`);
    }
  }
  if (h.headerLength > head.length) fail("header truncated");
  readExtensions(head, view, h, cs);
  const backingOffset = u64(view, 8, "backing_file_offset");
  if (backingOffset !== 0) {
    const len = view.getUint32(16);
    if (len > MAX_BACKING_NAME) fail(`backing file name length ${len} exceeds ${MAX_BACKING_NAME}`);
    if (backingOffset + len > cs || backingOffset + len > head.length) {
      fail("backing file name lies outside the first cluster");
    }
    h.backingFile = new TextDecoder().decode(head.subarray(backingOffset, backingOffset + len));
    if (h.backingFile === "") fail("backing file name is empty");
  }
  checkLayout(h, fileSize);
  return h;
}

function readExtensions(head: Uint8Array, view: DataView, h: Qcow2Header, cs: number): void {
  let at = h.headerLength;
  const end = Math.min(cs, head.length);
  const seen = new Set<number>();
  while (at + 8 <= end) {
    const type = view.getUint32(at);
    const len = view.getUint32(at + 4);
    if (type === EXT_END) return;
    if (at + 8 + len > end) {
      fail(`header extension ${type.toString(16)}h runs past the first cluster`);
    }
    if (seen.has(type)) fail(`header extension ${type.toString(16)}h appears twice`);
    seen.add(type);
    const data = head.subarray(at + 8, at + 8 + len);
    if (type === EXT_BACKING_FORMAT) h.backingFormat = new TextDecoder().decode(data);
    if (type === EXT_FEATURE_NAMES) {
      for (let i = 0; i + 48 <= len; i += 48) {
        const raw = data.subarray(i + 2, i + 48);
        const nul = raw.indexOf(0);
        h.featureNames.set(
          `${data[i]}:${data[i + 1]}`,
          new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul)),
        );
      }
    }
    at += 8 + Math.ceil(len / 8) * 8;
  }
  // Version 2 images from old tools may end the header cluster without an end marker.
}

/** Checks sizes and table placement against each other and the file size. */
function checkLayout(h: Qcow2Header, fileSize: number): void {
  const cs = 2 ** h.clusterBits;
  if (h.cryptMethod !== 0) {
    fail(
      `encrypted images (crypt_method ${h.cryptMethod}) are not supported; ` +
        `decrypt with qemu-img convert -O qcow2`,
    );
  }
  const unsupported = h.incompatibleFeatures &
    ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2);
  if (unsupported) {
    fail(
      `unsupported incompatible features: ${featureList(unsupported, 0, h.featureNames)}; ` +
        `convert the image with qemu-img convert -O qcow2`,
    );
  }
  const extended = (h.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0;
  if (extended && h.clusterBits < 14) {
    fail(`extended L2 entries need clusters of at least 16 KiB, not ${cs} bytes`);
  }
  const l2Entries = cs / (extended ? 16 : 8);
  const needL1 = Math.ceil(h.size / (cs * l2Entries));
  if (h.l1Size < needL1) fail(`L1 table has ${h.l1Size} entries, size ${h.size} needs ${needL1}`);
  if (h.l1Size * 8 > MAX_L1_BYTES) fail(`L1 table of ${h.l1Size} entries exceeds 32 MiB`);
  const inFile = (offset: number, bytes: number, what: string) => {
    if (offset % cs !== 0) fail(`${what} offset ${offset} not aligned to ${cs}-byte clusters`);
    if (offset === 0 && bytes > 0) fail(`${what} at offset 0 overlaps the header`);
    if (offset + bytes > fileSize) {
      fail(
        `${what} at ${offset}+${bytes} lies past the end of the file (${fileSize} bytes): ` +
          `the image is truncated`,
      );
    }
  };
  if (h.l1Size > 0) inFile(h.l1TableOffset, h.l1Size * 8, "L1 table");
  if (h.refcountTableClusters === 0) fail("refcount table has 0 clusters");
  if (h.refcountTableClusters * cs > MAX_REFCOUNT_TABLE_BYTES) {
    fail(`refcount table of ${h.refcountTableClusters} clusters exceeds 8 MiB`);
  }
  inFile(h.refcountTableOffset, h.refcountTableClusters * cs, "refcount table");
  if (h.nbSnapshots > 0) inFile(h.snapshotsOffset, 40 * h.nbSnapshots, "snapshot table");
  const overlaps = (a: number, al: number, b: number, bl: number) => a < b + bl && b < a + al;
  const l1Bytes = Math.ceil((h.l1Size * 8) / cs) * cs;
  if (
    h.l1Size > 0 &&
    overlaps(h.l1TableOffset, l1Bytes, h.refcountTableOffset, h.refcountTableClusters * cs)
  ) {
    fail("L1 table and refcount table overlap");
  }
}

/** The L2 entry layout of an image. */
export function l2Format(h: Qcow2Header): L2Format {
  return {
    version: h.version,
    clusterBits: h.clusterBits,
    extended: (h.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0,
  };
}

/** What {@link encodeQcow2Header} needs for a fresh image. */
export interface NewHeader {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  backingFile?: string;
  backingFormat?: string;
}

/**
 * Encodes the first cluster of a new image: header, extensions, backing file name.
 *
 * @example
 * ```ts
 * const head = encodeQcow2Header({ version: 3, clusterBits: 16, size: 1 << 30, l1Size: 2,
 *   l1TableOffset: 3 << 16, refcountTableOffset: 1 << 16, refcountTableClusters: 1 });
 * ```
 */
export function encodeQcow2Header(h: NewHeader): Uint8Array {
  const cs = 2 ** h.clusterBits;
  const buf = new Uint8Array(cs);
  const view = new DataView(buf.buffer);
  const enc = new TextEncoder();
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, h.version);
  view.setUint32(20, h.clusterBits);
  setU64(view, 24, h.size);
  view.setUint32(36, h.l1Size);
  setU64(view, 40, h.l1TableOffset);
  setU64(view, 48, h.refcountTableOffset);
  view.setUint32(56, h.refcountTableClusters);
  let at = V2_HEADER_LENGTH;
  if (h.version === 3) {
    view.setUint32(96, 4); // 16-bit refcounts, as QEMU's default
    view.setUint32(100, V3_HEADER_LENGTH);
    at = V3_HEADER_LENGTH;
  }
  if (h.backingFormat) {
    const fmt = enc.encode(h.backingFormat);
    view.setUint32(at, EXT_BACKING_FORMAT);
    view.setUint32(at + 4, fmt.length);
    buf.set(fmt, at + 8);
    at += 8 + Math.ceil(fmt.length / 8) * 8;
  }
  at += 8; // end-of-extensions marker: type 0, length 0 (already zero)
  if (h.backingFile) {
    const name = enc.encode(h.backingFile);
    if (name.length > MAX_BACKING_NAME) fail(`backing file name longer than ${MAX_BACKING_NAME}`);
    if (at + name.length > cs) fail("backing file name does not fit in the header cluster");
    setU64(view, 8, at);
    view.setUint32(16, name.length);
    buf.set(name, at);
  }
  return buf;
}
