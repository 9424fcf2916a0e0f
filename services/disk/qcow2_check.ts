/**
 * The open-time scan of a qcow2 image: loads the active L2 tables and proves the metadata sane
 * before anything is served: every table inside the file and cluster-aligned, no two
 * structures on one host cluster, no reserved bits, and (for writing) every stored refcount
 * at least the number of references, so the allocator can never hand out a cluster in use.
 * @module
 */

import { readAt } from "./file_io.ts";
import { decodeL1, decodeL2, type L2Entry, l2EntryBytes, Mapping } from "./qcow2_entries.ts";
import { l2Format, Qcow2FormatError, type Qcow2Header, u64 } from "./qcow2_header.ts";
import type { Qcow2Refcounts } from "./qcow2_refcounts.ts";

/** What the scan found. */
export interface Qcow2Scan {
  /** Active L2 tables by L1 index. */
  l2: Map<number, Uint8Array>;
  /** Clusters whose stored refcount exceeds their references (harmless; never reused). */
  leaked: number;
  /** References to each host cluster of the file (saturating at 65535). */
  uses: Uint16Array;
}

const KIND_NAMES = [
  "",
  "the header",
  "the L1 table",
  "the refcount table",
  "a refcount block",
  "an L2 table",
  "the snapshot table",
  "a snapshot L1 table",
  "guest data",
  "compressed data",
];
const HEADER = 1, L1 = 2, RT = 3, RB = 4, L2 = 5, SNAP = 6, SNAP_L1 = 7, DATA = 8, COMP = 9;

const fail = (message: string): never => {
  throw new Qcow2FormatError(message);
};

/**
 * Scans an image whose header and refcounts are loaded. `strictRefcounts`: refuse an image
 * whose refcounts undercount references (needed before writing, unless they are rebuilt).
 *
 * @example
 * ```ts
 * const { l2, leaked } = await scanQcow2(file, header, l1, refcounts, fileSize, true);
 * ```
 */
export async function scanQcow2(
  file: Deno.FsFile,
  h: Qcow2Header,
  l1: DataView,
  rc: Qcow2Refcounts,
  fileSize: number,
  strictRefcounts: boolean,
): Promise<Qcow2Scan> {
  const cs = 2 ** h.clusterBits;
  const clusters = Math.ceil(fileSize / cs);
  const kinds = new Uint8Array(clusters);
  const uses = new Uint16Array(clusters);
  const mark = (c: number, kind: number, what: string) => {
    if (c >= clusters) {
      fail(
        `${what} at ${c * cs} lies past the end of the file (${fileSize} bytes): ` +
          `the image is truncated`,
      );
    }
    const prev = kinds[c];
    // Data and L2 tables may be shared (internal snapshots); nothing else may.
    if (prev !== 0 && !(prev === kind && (kind === DATA || kind === COMP || kind === L2))) {
      fail(`${what} at ${c * cs} overlaps ${KIND_NAMES[prev]}: the image is corrupt`);
    }
    kinds[c] = kind;
    if (uses[c] < 0xffff) uses[c]++;
  };
  const markRange = (offset: number, bytes: number, kind: number, what: string) => {
    for (let c = Math.floor(offset / cs); c * cs < offset + bytes; c++) mark(c, kind, what);
  };
  mark(0, HEADER, "the header");
  markRange(h.l1TableOffset, h.l1Size * 8, L1, "the L1 table");
  markRange(h.refcountTableOffset, h.refcountTableClusters * cs, RT, "the refcount table");
  for (const c of rc.blockClusters()) mark(c, RB, "a refcount block");
  const snapshotL1s = h.nbSnapshots > 0 ? await markSnapshots(file, h, fileSize, markRange) : [];

  const format = l2Format(h);
  const l2Entries = cs / l2EntryBytes(format);
  // A table shared by several L1 tables (snapshots) counts its clusters once per L1 table, as
  // QEMU counts them (taking a snapshot increments the L2 tables and the data they map).
  const walkL1 = async (
    table: DataView,
    size: number,
    what: string,
    keep?: Map<number, Uint8Array>,
  ) => {
    for (let i = 0; i < size; i++) {
      const off = decodeL1(table, i);
      if (off < 0) fail(`${what} entry ${i} has reserved bits set: the image is corrupt`);
      if (off === 0) continue;
      if (off % cs !== 0) {
        fail(`L2 table ${i} of ${what} at ${off} is not cluster-aligned: the image is corrupt`);
      }
      mark(off / cs, L2, `L2 table ${i} of ${what}`);
      const l2 = new Uint8Array(cs);
      await readAt(file, off, l2);
      keep?.set(i, l2);
      const view = new DataView(l2.buffer);
      for (let j = 0; j < l2Entries; j++) {
        const e: L2Entry = decodeL2(view, j, format);
        const guest = (i * l2Entries + j) * cs;
        if (e.reserved) {
          fail(`L2 entry for guest offset ${guest} has reserved or contradictory bits set`);
        }
        if (e.mapping === Mapping.Normal || e.mapping === Mapping.ZeroAllocated) {
          if (e.host % cs !== 0) {
            fail(`data cluster for guest offset ${guest} at ${e.host} is not cluster-aligned`);
          }
          mark(e.host / cs, DATA, `the data cluster for guest offset ${guest}`);
        } else if (e.mapping === Mapping.Compressed) {
          const start = e.host - (e.host % 512);
          if (start + e.compressedSectors * 512 > clusters * cs) {
            fail(`compressed data for guest offset ${guest} lies past the end of the file`);
          }
          markRange(start, e.compressedSectors * 512, COMP, `compressed data of ${guest}`);
        }
      }
    }
  };
  const l2 = new Map<number, Uint8Array>();
  await walkL1(l1, h.l1Size, "the L1 table", l2);
  for (const [s, snap] of snapshotL1s.entries()) {
    const table = new Uint8Array(snap.l1Size * 8);
    await readAt(file, snap.l1Offset, table);
    await walkL1(new DataView(table.buffer), snap.l1Size, `snapshot ${s}'s L1 table`);
  }

  let leaked = 0;
  for (let c = 0; c < clusters; c++) {
    const stored = rc.get(c);
    if (stored < uses[c] && strictRefcounts) {
      fail(
        `host cluster ${c} (offset ${c * cs}) has refcount ${stored} but ${uses[c]} ` +
          `references: repair the image with qemu-img check -r all`,
      );
    }
    if (stored > uses[c]) leaked++;
  }
  return { l2, leaked, uses };
}

/** Marks the snapshot table and the snapshots' L1 tables; returns where those tables are. */
async function markSnapshots(
  file: Deno.FsFile,
  h: Qcow2Header,
  fileSize: number,
  markRange: (offset: number, bytes: number, kind: number, what: string) => void,
): Promise<Array<{ l1Offset: number; l1Size: number }>> {
  const tables: Array<{ l1Offset: number; l1Size: number }> = [];
  let at = h.snapshotsOffset;
  const fixed = new Uint8Array(40);
  for (let s = 0; s < h.nbSnapshots; s++) {
    if (at + 40 > fileSize) fail(`snapshot ${s} lies past the end of the file`);
    await readAt(file, at, fixed);
    const v = new DataView(fixed.buffer);
    const l1Offset = u64(v, 0, `snapshot ${s} L1 offset`);
    const l1Size = v.getUint32(8);
    const len = 40 + v.getUint32(36) + v.getUint16(12) + v.getUint16(14);
    if (l1Size > 0) {
      if (l1Offset % 2 ** h.clusterBits !== 0 || l1Offset + l1Size * 8 > fileSize) {
        fail(`snapshot ${s} L1 table at ${l1Offset} is misplaced: the image is corrupt`);
      }
      markRange(l1Offset, l1Size * 8, SNAP_L1, `snapshot ${s} L1 table`);
      tables.push({ l1Offset, l1Size });
    }
    at += Math.ceil(len / 8) * 8;
  }
  markRange(h.snapshotsOffset, at - h.snapshotsOffset, SNAP, "the snapshot table");
  return tables;
}
