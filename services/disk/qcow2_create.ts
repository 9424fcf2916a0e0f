/**
 * Creates empty qcow2 images (as `qemu-img create -f qcow2 [-b BACKING -F FMT]` does): header,
 * refcount table and blocks counting the metadata, an all-zero L1 table.
 * @module
 */

import { writeAt } from "./file_io.ts";
import { encodeQcow2Header, MAX_CLUSTER_BITS, setU64 } from "./qcow2_header.ts";

/** Options for {@link createQcow2}. */
export interface Qcow2CreateOptions {
  /** Virtual size in bytes (default: the backing file's size; required without one). */
  size?: number;
  /** Cluster size in bytes, a power of two in 512..2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** 3 (QEMU's default, `compat=1.1`) or 2 (`compat=0.10`). */
  version?: 2 | 3;
  /** Backing file name stored in the header (absolute, or relative to the new image). */
  backingFile?: string;
  /** Backing file format stored in the header extension ("raw" or "qcow2"). */
  backingFormat?: string;
  /** Size of the backing file, used as the default `size`. */
  backingSize?: number;
}

/**
 * Writes a new, empty qcow2 image at `path` (refuses to overwrite an existing file).
 *
 * @example
 * ```ts
 * await createQcow2("base.qcow2", { size: 1 << 30 });
 * await createQcow2("vm1.qcow2", { backingFile: "base.qcow2", backingFormat: "qcow2",
 *   backingSize: 1 << 30 });
 * ```
 */
export async function createQcow2(path: string, options: Qcow2CreateOptions): Promise<void> {
  const cs = options.clusterSize ?? 65536;
  const clusterBits = Math.log2(cs);
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > MAX_CLUSTER_BITS) {
    throw new Error(`cluster size ${cs} must be a power of two in 512..2097152`);
  }
  const size = options.size ?? options.backingSize;
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw new Error("a qcow2 image needs a size (or a backing file to take it from)");
  }
  const l1Size = Math.ceil(size / (cs * (cs / 8)));
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const perBlock = (cs * 8) / 16;
  // Refcount table and blocks big enough to count themselves, the header and the L1 table.
  let tableClusters = 1, blocks = 1;
  for (;;) {
    const total = 1 + tableClusters + blocks + l1Clusters;
    const needBlocks = Math.ceil(total / perBlock);
    const needTable = Math.ceil((needBlocks * 8) / cs);
    if (needBlocks === blocks && needTable === tableClusters) break;
    blocks = needBlocks;
    tableClusters = needTable;
  }
  const tableAt = 1, blocksAt = tableAt + tableClusters, l1At = blocksAt + blocks;
  const total = l1At + l1Clusters;
  const head = encodeQcow2Header({
    version: options.version ?? 3,
    clusterBits,
    size,
    l1Size,
    l1TableOffset: l1At * cs,
    refcountTableOffset: tableAt * cs,
    refcountTableClusters: tableClusters,
    backingFile: options.backingFile,
    backingFormat: options.backingFormat,
  });
  const table = new Uint8Array(tableClusters * cs);
  const tv = new DataView(table.buffer);
  for (let b = 0; b < blocks; b++) setU64(tv, b * 8, (blocksAt + b) * cs);
  const refBlocks = new Uint8Array(blocks * cs);
  const rv = new DataView(refBlocks.buffer);
  for (let c = 0; c < total; c++) rv.setUint16(c * 2, 1);
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    await writeAt(file, 0, head);
    await writeAt(file, tableAt * cs, table);
    await writeAt(file, blocksAt * cs, refBlocks);
    await file.truncate(total * cs); // the L1 table reads as zeros: nothing allocated
    await file.syncData();
  } finally {
    file.close();
  }
}
