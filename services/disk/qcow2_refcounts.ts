/**
 * qcow2 host cluster reference counts: the refcount table and its blocks, all held in memory,
 * with dirty tracking so the image writes them back in its crash-safe order, and the cluster
 * allocator (first free cluster, reusing freed ones; growing the table when it is full).
 * @module
 */

import { Qcow2FormatError, setU64 } from "./qcow2_header.ts";
import { readAt, writeAt } from "./file_io.ts";

const TWO32 = 0x1_0000_0000;

/** Where the refcount structures live and how wide an entry is. */
export interface RefcountGeometry {
  clusterSize: number;
  /** log2 of the entry width in bits (0..6). */
  order: number;
  tableOffset: number;
  tableClusters: number;
}

/**
 * Reference counts of an image's host clusters.
 *
 * @example
 * ```ts
 * const rc = await Qcow2Refcounts.load(file, geometry, fileSize);
 * const cluster = rc.allocate(); // refcount 1, the block is marked dirty
 * await rc.writeDirty(file);
 * ```
 */
export class Qcow2Refcounts {
  /** Entries per refcount block. */
  readonly perBlock: number;
  readonly #bits: number;
  readonly #blocks = new Map<number, Uint8Array>();
  readonly #dirtyBlocks = new Set<number>();
  readonly #dirtyEntries = new Set<number>();
  #table: Uint8Array;
  #tableView: DataView;
  /** Lowest cluster index that may be free. */
  #hint = 0;
  /** Clusters in use up to here (the allocator never returns one below a used one twice). */
  #end: number;

  private constructor(readonly geometry: RefcountGeometry, table: Uint8Array, end: number) {
    this.#bits = 2 ** geometry.order;
    this.perBlock = (geometry.clusterSize * 8) / this.#bits;
    this.#table = table;
    this.#tableView = new DataView(table.buffer, table.byteOffset, table.byteLength);
    this.#end = end;
  }

  /** Reads the table and every block; throws Qcow2FormatError on a bad block offset. */
  static async load(
    file: Deno.FsFile,
    g: RefcountGeometry,
    fileSize: number,
  ): Promise<Qcow2Refcounts> {
    const table = new Uint8Array(g.tableClusters * g.clusterSize);
    await readAt(file, g.tableOffset, table);
    const rc = new Qcow2Refcounts(g, table, Math.ceil(fileSize / g.clusterSize));
    for (let t = 0; t < rc.tableEntries; t++) {
      const off = rc.blockOffset(t);
      if (off === 0) continue;
      if (off + g.clusterSize > fileSize) {
        throw new Qcow2FormatError(
          `refcount block ${t} at ${off} lies past the end of the file (${fileSize} bytes): ` +
            `the image is truncated`,
        );
      }
      const block = new Uint8Array(g.clusterSize);
      await readAt(file, off, block);
      rc.#blocks.set(t, block);
    }
    // A leaked refcount past the end of the file still marks its cluster in use.
    for (const t of [...rc.#blocks.keys()].sort((a, b) => b - a)) {
      for (let c = (t + 1) * rc.perBlock - 1; c >= t * rc.perBlock && c >= rc.#end; c--) {
        if (rc.get(c) !== 0) {
          rc.#end = c + 1;
          break;
        }
      }
    }
    return rc;
  }

  /** Entries in the refcount table. */
  get tableEntries(): number {
    return this.#table.length / 8;
  }

  /** Host offset of refcount block `t` (0: not allocated). */
  blockOffset(t: number): number {
    const hi = this.#tableView.getUint32(t * 8);
    const lo = this.#tableView.getUint32(t * 8 + 4);
    if ((lo & 0x1ff) !== 0 || hi >= 0x01000000) {
      throw new Qcow2FormatError(`refcount table entry ${t} has reserved bits set`);
    }
    const off = hi * TWO32 + lo;
    if (off % this.geometry.clusterSize !== 0) {
      throw new Qcow2FormatError(`refcount block ${t} at ${off} is not cluster-aligned`);
    }
    return off;
  }

  /** Clusters that hold refcount blocks (for the overlap check). */
  blockClusters(): number[] {
    const out: number[] = [];
    for (const t of this.#blocks.keys()) out.push(this.blockOffset(t) / this.geometry.clusterSize);
    return out;
  }

  /** Refcount of host cluster `c` (0 when its block is not allocated). */
  get(c: number): number {
    const block = this.#blocks.get(Math.floor(c / this.perBlock));
    if (!block) return 0;
    const i = c % this.perBlock;
    const bits = this.#bits;
    if (bits < 8) {
      const bit = i * bits;
      return (block[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
    }
    const at = i * (bits >> 3);
    const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (bits === 8) return block[at];
    if (bits === 16) return v.getUint16(at);
    if (bits === 32) return v.getUint32(at);
    return v.getUint32(at) * TWO32 + v.getUint32(at + 4);
  }

  /** Sets the refcount of `c`, whose block must exist; marks the block dirty. */
  set(c: number, value: number): void {
    const t = Math.floor(c / this.perBlock);
    const block = this.#blocks.get(t);
    if (!block) throw new Error(`refcount block for cluster ${c} is not allocated`);
    const bits = this.#bits;
    if (value < 0 || (bits < 53 && value >= 2 ** bits)) {
      throw new Qcow2FormatError(`refcount of cluster ${c} would overflow ${bits} bits`);
    }
    const i = c % this.perBlock;
    if (bits < 8) {
      const bit = i * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      block[bit >> 3] = (block[bit >> 3] & ~mask) | (value << (bit & 7));
    } else {
      const at = i * (bits >> 3);
      const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
      if (bits === 8) block[at] = value;
      else if (bits === 16) v.setUint16(at, value);
      else if (bits === 32) v.setUint32(at, value);
      else setU64(v, at, value);
    }
    this.#dirtyBlocks.add(t);
    if (value === 0 && c < this.#hint) this.#hint = c;
  }

  /** Whether any block or table entry waits to be written. */
  get dirty(): boolean {
    return this.#dirtyBlocks.size > 0 || this.#dirtyEntries.size > 0;
  }

  /** Writes the dirty blocks and table entries (no sync: the caller orders and syncs). */
  async writeDirty(file: Deno.FsFile): Promise<void> {
    for (const t of [...this.#dirtyBlocks].sort((a, b) => a - b)) {
      await writeAt(file, this.blockOffset(t), this.#blocks.get(t)!);
    }
    for (const t of [...this.#dirtyEntries].sort((a, b) => a - b)) {
      await writeAt(
        file,
        this.geometry.tableOffset + t * 8,
        this.#table.subarray(t * 8, t * 8 + 8),
      );
    }
    this.#dirtyBlocks.clear();
    this.#dirtyEntries.clear();
  }

  /** One past the highest cluster index in use (the file's end, in clusters). */
  get end(): number {
    return this.#end;
  }

  /**
   * Allocates one free host cluster with refcount 1 and returns its index, adding a refcount
   * block (placed in the range it covers) when needed. Returns -1 when the refcount table is
   * full: the caller then calls {@link grow} (which writes to the file) and retries.
   */
  allocate(): number {
    for (;;) {
      let c = this.#hint;
      while (this.get(c) !== 0) c++;
      this.#hint = c + 1;
      const t = Math.floor(c / this.perBlock);
      if (t >= this.tableEntries) {
        this.#hint = c;
        return -1;
      }
      if (!this.#blocks.has(t)) {
        // The new block takes this cluster and counts itself.
        this.#setBlock(t, c);
        this.set(c, 1);
        this.#end = Math.max(this.#end, c + 1);
        continue;
      }
      this.set(c, 1);
      this.#end = Math.max(this.#end, c + 1);
      return c;
    }
  }

  /**
   * Rebuilds every refcount from `uses` (the references the open-time scan counted; the
   * clusters past it are unused), as QEMU does for an image left dirty by lazy refcounts.
   * Adds the blocks that were missing; writes nothing (every block is left dirty).
   */
  rebuild(uses: Uint16Array): void {
    const missing: number[] = [];
    for (let t = 0; t * this.perBlock < uses.length; t++) {
      if (this.#blocks.has(t)) continue;
      const from = t * this.perBlock;
      if (uses.subarray(from, from + this.perBlock).some((u) => u > 0)) {
        if (t >= this.tableEntries) {
          throw new Qcow2FormatError(
            "cannot rebuild the refcounts (the refcount table is too small): repair the image " +
              "with qemu-img check -r all",
          );
        }
        this.#blocks.set(t, new Uint8Array(this.geometry.clusterSize));
        missing.push(t);
      }
    }
    for (const t of this.#blocks.keys()) {
      for (let c = t * this.perBlock; c < (t + 1) * this.perBlock; c++) {
        this.set(c, c < uses.length ? uses[c] : 0);
      }
    }
    this.#hint = 0;
    this.#end = uses.length;
    // Place the new blocks now that every used cluster counts: allocate() skips them.
    for (const t of missing) {
      const c = this.allocate();
      if (c < 0) {
        throw new Qcow2FormatError(
          "cannot rebuild the refcounts (no room for a refcount block): repair the image " +
            "with qemu-img check -r all",
        );
      }
      setU64(this.#tableView, t * 8, c * this.geometry.clusterSize);
      this.#dirtyEntries.add(t);
    }
  }

  #setBlock(t: number, c: number): void {
    this.#blocks.set(t, new Uint8Array(this.geometry.clusterSize));
    setU64(this.#tableView, t * 8, c * this.geometry.clusterSize);
    this.#dirtyBlocks.add(t);
    this.#dirtyEntries.add(t);
  }

  /**
   * Replaces a full refcount table with one twice as large (or more), appended at the end of
   * the file with the blocks that count it. Call only with nothing dirty (after a write-back):
   * it writes the new blocks and table, syncs, points the header at them, syncs, and leaves
   * the old table's clusters to free, returned for the caller's deferred decrement.
   */
  async grow(file: Deno.FsFile): Promise<number[]> {
    const cs = this.geometry.clusterSize;
    const p = this.#end;
    const oldEntries = this.tableEntries;
    const entriesFor = (clusters: number) => Math.ceil(clusters / this.perBlock) + 1;
    let n = Math.max(
      this.geometry.tableClusters * 2,
      Math.ceil((entriesFor(p + 64) * 8) / cs),
    );
    let k = 0;
    let missing: number[] = [];
    for (;;) {
      const end = p + n + k;
      missing = [];
      for (let t = Math.floor(p / this.perBlock); t <= Math.floor((end - 1) / this.perBlock); t++) {
        if (t >= oldEntries || !this.#blocks.has(t)) missing.push(t);
      }
      const needN = Math.ceil((entriesFor(end) * 8) / cs);
      if (missing.length === k && needN <= n) break;
      k = missing.length;
      n = Math.max(n, needN);
    }
    const table = new Uint8Array(n * cs);
    table.set(this.#table);
    const oldOffset = this.geometry.tableOffset;
    const oldClusters = this.geometry.tableClusters;
    this.#table = table;
    this.#tableView = new DataView(table.buffer);
    missing.forEach((t, i) => this.#setBlock(t, p + n + i));
    for (let c = p; c < p + n + k; c++) this.set(c, 1);
    this.geometry.tableOffset = p * cs;
    this.geometry.tableClusters = n;
    this.#end = p + n + k;
    this.#hint = Math.min(this.#hint, p + n + k);
    for (const t of missing) await writeAt(file, this.blockOffset(t), this.#blocks.get(t)!);
    for (const t of this.#dirtyBlocks) {
      if (!missing.includes(t)) await writeAt(file, this.blockOffset(t), this.#blocks.get(t)!);
    }
    await writeAt(file, p * cs, table);
    this.#dirtyBlocks.clear();
    this.#dirtyEntries.clear();
    await file.syncData();
    const head = new Uint8Array(12);
    const hv = new DataView(head.buffer);
    setU64(hv, 0, p * cs);
    hv.setUint32(8, n);
    await writeAt(file, 48, head); // refcount_table_offset, refcount_table_clusters
    await file.syncData();
    const freed: number[] = [];
    for (let i = 0; i < oldClusters; i++) freed.push(oldOffset / cs + i);
    return freed;
  }
}
