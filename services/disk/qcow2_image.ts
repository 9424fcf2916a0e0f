/**
 * qcow2 image backend: reads (standard, zero and compressed clusters, read-through to a
 * raw or qcow2 backing file), writes with cluster allocation and copy-on-write from the
 * backing file, discard, and crash-safe metadata write-back. Versions 2 and 3, extended L2
 * entries (subclusters); no encryption, no external data file; nothing is compressed on write. Internal
 * snapshots are kept intact: tables and clusters shared with them are copied before a write.
 *
 * All L1/L2 tables and refcount blocks are held in memory (the open-time scan reads them
 * anyway): 8 bytes (16 with extended L2) per guest cluster mapped, 128 KiB per GiB of a full
 * 64 KiB-cluster disk.
 * @module
 */

import { type BlockBackend, BlockError, type BlockInfo, hostIo } from "./block_backend.ts";
import { readAt, writeAt } from "./file_io.ts";
import { IoQueue } from "./io_queue.ts";
import { scanQcow2 } from "./qcow2_check.ts";
import { decompressCluster } from "./qcow2_compression.ts";
import {
  clearL2,
  decodeL1,
  decodeL2,
  type L2Entry,
  l2EntryBytes,
  type L2Format,
  Mapping,
  setL1Entry,
  setL2Copied,
  setL2Owned,
  setL2Zero,
} from "./qcow2_entries.ts";
import {
  decodeQcow2Header,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  l2Format,
  Qcow2FormatError,
  type Qcow2Header,
} from "./qcow2_header.ts";
import { Qcow2Refcounts } from "./qcow2_refcounts.ts";

/** Opens a backing file by name (resolved), read-only; returns its backend and size. */
export type BackingOpener = (path: string, format: string | undefined) => Promise<BlockBackend>;

/** Options for {@link Qcow2Image.open}. */
export interface Qcow2OpenOptions {
  /** Refuse writes and discards; the file is opened read-only. */
  readOnly?: boolean;
  /** Logical sector size reported in Info (default 512). */
  sectorSize?: number;
  /** Opens the backing file (required when the image has one). */
  openBacking?: BackingOpener;
  /** Use this backing file instead of the one named in the header. */
  backingPath?: string;
}

/** A run of bytes read from one source, grown while the next piece continues it. */
interface Run {
  kind: Mapping;
  /** Position in the output buffer. */
  pos: number;
  len: number;
  /** Host offset (Normal) or guest offset (Unallocated: the backing file). */
  src: number;
}

/** Resolves a backing file name the way QEMU does: relative to the image's directory. */
export function resolveBacking(imagePath: string, name: string): string {
  if (name.startsWith("/")) return name;
  const slash = imagePath.lastIndexOf("/");
  return slash < 0 ? name : imagePath.slice(0, slash + 1) + name;
}

/**
 * A qcow2 image as a block device.
 *
 * @example
 * ```ts
 * const disk = await Qcow2Image.open("vm.qcow2", { openBacking: openImageBackend });
 * await disk.write(0, new Uint8Array(4096).fill(1));
 * await disk.flush(); // now `qemu-img check vm.qcow2` is clean
 * ```
 */
export class Qcow2Image implements BlockBackend {
  readonly #queue = new IoQueue();
  readonly #cs: number;
  readonly #l2Entries: number;
  readonly #format: L2Format;
  /** Bytes of a subcluster: the cluster without extended L2, 1/32 of it with. */
  readonly #unit: number;
  readonly #l1View: DataView;
  readonly #l2: Map<number, Uint8Array>;
  readonly #dirtyL2 = new Set<number>();
  readonly #dirtyL1 = new Set<number>();
  /** Host clusters whose refcount drops once the references to them are durable. */
  #pendingFree: number[] = [];
  #backingSize = 0;

  private constructor(
    readonly path: string,
    readonly header: Qcow2Header,
    readonly file: Deno.FsFile,
    readonly l1: Uint8Array,
    l2: Map<number, Uint8Array>,
    readonly refcounts: Qcow2Refcounts,
    readonly backing: BlockBackend | undefined,
    readonly readOnly: boolean,
    readonly sectorSize: number,
    /** Clusters counted in refcounts but referenced by nothing, found at open. */
    readonly leakedClusters: number,
    /** What the user should know about how the image was opened (one line each). */
    readonly notes: string[],
  ) {
    this.#cs = 2 ** header.clusterBits;
    this.#format = l2Format(header);
    this.#l2Entries = this.#cs / l2EntryBytes(this.#format);
    this.#unit = this.#format.extended ? this.#cs / 32 : this.#cs;
    this.#l1View = new DataView(l1.buffer);
    this.#l2 = l2;
    if (backing) this.#backingSize = backing.info().sizeBytes;
  }

  /**
   * Opens an image after checking it whole (header, table placement, overlaps, refcounts);
   * throws a Qcow2FormatError saying what is wrong and what to do.
   */
  static async open(path: string, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const readOnly = options.readOnly ?? false;
    const file = await Deno.open(path, { read: true, write: !readOnly });
    let backing: BlockBackend | undefined;
    try {
      const fileSize = (await file.stat()).size;
      const head = new Uint8Array(Math.min(fileSize, 1 << 21)); // up to the largest cluster
      await readAt(file, 0, head);
      const h = decodeQcow2Header(head, fileSize);
      if (!readOnly) {
        if (h.incompatibleFeatures & INCOMPAT_CORRUPT) {
          throw new Qcow2FormatError(
            "image is marked corrupt: open it read-only or repair it with qemu-img check -r all",
          );
        }
      }
      const dirty = (h.incompatibleFeatures & INCOMPAT_DIRTY) !== 0;
      const cs = 2 ** h.clusterBits;
      const l1 = new Uint8Array(h.l1Size * 8);
      await readAt(file, h.l1TableOffset, l1);
      const refcounts = await Qcow2Refcounts.load(file, {
        clusterSize: cs,
        order: h.refcountOrder,
        tableOffset: h.refcountTableOffset,
        tableClusters: h.refcountTableClusters,
      }, fileSize);
      const scan = await scanQcow2(
        file,
        h,
        new DataView(l1.buffer),
        refcounts,
        fileSize,
        !readOnly && !dirty,
      );
      // The backing chain opens before anything is written to this image.
      const backingName = options.backingPath ?? h.backingFile;
      if (backingName !== undefined) {
        if (backingName.startsWith("json:")) {
          throw new Qcow2FormatError(`backing file ${backingName} (json:) is not supported`);
        }
        if (!options.openBacking) throw new Qcow2FormatError("image has a backing file");
        const resolved = options.backingPath ?? resolveBacking(path, backingName);
        try {
          backing = await options.openBacking(resolved, h.backingFormat);
        } catch (err) {
          throw new Qcow2FormatError(
            `cannot open backing file ${resolved}: ${(err as Error).message}`,
          );
        }
      }
      const notes: string[] = [];
      if (dirty && !readOnly) {
        // Lazy refcounts left unflushed (QEMU was not closed cleanly): rebuild them, as QEMU.
        refcounts.rebuild(scan.uses);
        await refcounts.writeDirty(file);
        await file.syncData();
        const incompat = new Uint8Array(8);
        new DataView(incompat.buffer).setUint32(4, h.incompatibleFeatures & ~INCOMPAT_DIRTY);
        await writeAt(file, 72, incompat);
        await file.syncData();
        h.incompatibleFeatures &= ~INCOMPAT_DIRTY;
        notes.push("the image was not closed cleanly (dirty bit): its refcounts were rebuilt");
        scan.leaked = 0;
      }
      if (!readOnly && (h.autoclearFeatures !== 0 || h.autoclearHigh !== 0)) {
        // Unknown autoclear features (e.g. bitmaps) must be cleared before the first write.
        await writeAt(file, 88, new Uint8Array(8));
        await file.syncData();
        h.autoclearFeatures = 0;
        h.autoclearHigh = 0;
        notes.push(
          "cleared the autoclear features: persistent bitmaps in this image are now " +
            "inconsistent (QEMU warns; qemu-img check -r leaks reclaims their clusters)",
        );
      }
      if (scan.leaked > 0) {
        notes.push(
          `${scan.leaked} leaked cluster(s) (harmless, never reused; qemu-img check -r leaks ` +
            `reclaims them)`,
        );
      }
      return new Qcow2Image(
        path,
        h,
        file,
        l1,
        scan.l2,
        refcounts,
        backing,
        readOnly,
        options.sectorSize ?? 512,
        scan.leaked,
        notes,
      );
    } catch (err) {
      file.close();
      backing?.close();
      throw err;
    }
  }

  /** Geometry and features. */
  info(): BlockInfo {
    return {
      sizeBytes: this.header.size,
      sectorSize: this.sectorSize,
      readOnly: this.readOnly,
      discard: !this.readOnly,
    };
  }

  /** Reads `length` bytes at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array> {
    this.#checkBounds(offset, length);
    return this.#queue.run(() => hostIo("read", () => this.#read(offset, length)));
  }

  /**
   * Writes `data` at `offset`; with `fua`, durable (data and metadata) before it resolves. A
   * write that changed metadata (a new cluster or table) resolves only once that metadata is in
   * the file too: the guest may be told "done" and flush later through another instance of this
   * service (a restarted disk service), which never saw this one's in-memory tables.
   */
  write(offset: number, data: Uint8Array, fua = false): Promise<void> {
    this.#checkWritable(offset, data.length);
    return this.#queue.run(() =>
      hostIo("write", async () => {
        await this.#write(offset, data);
        if (fua || this.refcounts.dirty || this.#dirtyL2.size > 0 || this.#dirtyL1.size > 0) {
          await this.#writeBack();
        }
      })
    );
  }

  /** Writes back every metadata change in crash-safe order and fsyncs. */
  flush(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    return this.#queue.run(() => hostIo("flush", () => this.#writeBack()));
  }

  /** Runs `fn` after every earlier request, metadata written back, with no I/O meanwhile. */
  quiesced<T>(fn: () => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (!this.readOnly) await hostIo("flush", () => this.#writeBack());
      return await fn();
    });
  }

  /** Releases a range: it reads back as zeros; whole clusters are freed for reuse. */
  discard(offset: number, length: number): Promise<void> {
    this.#checkWritable(offset, length);
    return this.#queue.run(() => hostIo("discard", () => this.#discard(offset, length)));
  }

  /** Closes the image and its backing chain (flush first to keep the changes). */
  close(): void {
    this.file.close();
    this.backing?.close();
  }

  // --- mapping -------------------------------------------------------------------------

  #l2For(gc: number): { table: DataView; index: number } | undefined {
    const t = this.#l2.get(Math.floor(gc / this.#l2Entries));
    if (!t) return undefined;
    return { table: new DataView(t.buffer), index: gc % this.#l2Entries };
  }

  #entry(gc: number): L2Entry {
    const at = this.#l2For(gc);
    if (!at) {
      return {
        mapping: Mapping.Unallocated,
        host: 0,
        compressedSectors: 0,
        alloc: 0,
        zero: 0,
        reserved: false,
      };
    }
    return decodeL2(at.table, at.index, this.#format);
  }

  // --- read ----------------------------------------------------------------------------

  async #read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const cs = this.#cs;
    let run: Run | undefined;
    let pos = 0;
    const unit = this.#unit;
    while (pos < length) {
      const at = offset + pos;
      const gc = Math.floor(at / cs);
      const within = at - gc * cs;
      const sc = Math.floor(within / unit); // the subcluster (0 without extended L2)
      const e = this.#entry(gc);
      const compressed = e.mapping === Mapping.Compressed;
      const n = Math.min((compressed ? cs : (sc + 1) * unit) - within, length - pos);
      let kind: Mapping;
      let src = 0;
      if (compressed) kind = Mapping.Compressed;
      else if ((e.alloc >>> sc) & 1) {
        kind = Mapping.Normal;
        src = e.host + within;
      } else if ((e.zero >>> sc) & 1) kind = Mapping.Zero;
      else if (!this.backing || at >= this.#backingSize) kind = Mapping.Zero;
      else {
        kind = Mapping.Unallocated;
        src = at;
      }
      if (run && run.kind === kind && run.src + run.len === src && kind !== Mapping.Compressed) {
        run.len += n;
      } else {
        if (run) await this.#fill(out, run);
        run = { kind, pos, len: n, src };
      }
      if (kind === Mapping.Compressed) {
        const cluster = await this.#decompress(e.host, e.compressedSectors, gc);
        out.set(cluster.subarray(within, within + n), pos);
        run = undefined;
      }
      pos += n;
    }
    if (run) await this.#fill(out, run);
    return out;
  }

  async #fill(out: Uint8Array, run: Run): Promise<void> {
    const piece = out.subarray(run.pos, run.pos + run.len);
    if (run.kind === Mapping.Normal) await readAt(this.file, run.src, piece);
    else if (run.kind === Mapping.Unallocated) {
      const len = Math.min(run.len, this.#backingSize - run.src);
      piece.set(await this.backing!.read(run.src, len)); // past the backing's end stays zero
    }
  }

  async #decompress(host: number, sectors: number, gc: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(sectors * 512 - (host % 512));
    await readAt(this.file, host, bytes);
    try {
      return decompressCluster(this.header.compressionType, bytes, this.#cs);
    } catch (err) {
      throw new BlockError(
        "IO_ERROR",
        `compressed cluster for guest offset ${gc * this.#cs} is corrupt: ${
          (err as Error).message
        }`,
      );
    }
  }

  /** The current content of a whole guest cluster (for copy-on-write). */
  async #readCluster(gc: number): Promise<Uint8Array> {
    const start = gc * this.#cs;
    const data = await this.#read(start, Math.min(this.#cs, this.header.size - start));
    if (data.length === this.#cs) return data;
    const full = new Uint8Array(this.#cs); // the last cluster of a disk not a cluster multiple
    full.set(data);
    return full;
  }

  // --- write ---------------------------------------------------------------------------

  /*
   * Crash-safe ordering. Guest data goes to the file at once; metadata changes are written back
   * before the write that made them resolves (and at a flush, FUA write or close), in this order:
   *   1. refcount increments (new data clusters, L2 tables, refcount blocks) — then fsync,
   *      which also makes the data written so far durable;
   *   2. L2 tables — fsync;  3. L1 entries — fsync;
   *   4. refcount decrements of clusters no longer referenced — fsync; only then are those
   *      clusters reused.
   * So on disk a refcount is never below its references and an entry never points at data
   * that did not reach the disk: a crash at any point loses only unflushed writes and at most
   * leaks clusters (qemu-img check reports leaks, never corruption).
   */

  async #allocate(): Promise<number> {
    let c = this.refcounts.allocate();
    if (c < 0) {
      await this.#writeBack();
      this.#pendingFree.push(...await this.refcounts.grow(this.file));
      this.header.refcountTableOffset = this.refcounts.geometry.tableOffset;
      this.header.refcountTableClusters = this.refcounts.geometry.tableClusters;
      c = this.refcounts.allocate();
    }
    return c;
  }

  /**
   * Makes the L2 table of guest cluster `gc` this image's own before an entry changes: a table
   * shared with an internal snapshot (refcount > 1) is copied. The clusters it maps keep their
   * refcounts (QEMU counted the snapshot's path to them when it was taken), so a cluster shared
   * with the snapshot is still copied on its next write.
   */
  async #unshareL2(gc: number): Promise<void> {
    const i = Math.floor(gc / this.#l2Entries);
    const table = this.#l2.get(i);
    if (!table) return;
    const cs = this.#cs;
    const old = decodeL1(this.#l1View, i);
    if (this.refcounts.get(old / cs) <= 1) return;
    const c = await this.#allocate();
    const copy = table.slice();
    const view = new DataView(copy.buffer);
    for (let j = 0; j < this.#l2Entries; j++) {
      const e = decodeL2(view, j, this.#format);
      if (e.mapping === Mapping.Normal || e.mapping === Mapping.ZeroAllocated) {
        // The active table's COPIED flags must say whether the refcount is exactly one.
        setL2Copied(view, j, this.#format, this.refcounts.get(e.host / cs) === 1);
      }
    }
    this.#l2.set(i, copy);
    this.#dirtyL2.add(i);
    setL1Entry(this.#l1View, i, c * cs);
    this.#dirtyL1.add(i);
    this.#pendingFree.push(old / cs);
  }

  /** The L2 table of guest cluster `gc`, allocating an empty one when there is none. */
  async #ensureL2(gc: number): Promise<{ table: DataView; index: number }> {
    const i = Math.floor(gc / this.#l2Entries);
    await this.#unshareL2(gc);
    if (!this.#l2.has(i)) {
      const c = await this.#allocate();
      this.#l2.set(i, new Uint8Array(this.#cs));
      this.#dirtyL2.add(i);
      setL1Entry(this.#l1View, i, c * this.#cs);
      this.#dirtyL1.add(i);
    }
    return this.#l2For(gc)!;
  }

  /** Frees the host cluster(s) behind an entry once the entry's change is durable. */
  #release(e: { mapping: Mapping; host: number; compressedSectors: number }): void {
    const cs = this.#cs;
    if (e.mapping === Mapping.Normal || e.mapping === Mapping.ZeroAllocated) {
      this.#pendingFree.push(e.host / cs);
    } else if (e.mapping === Mapping.Compressed) {
      const start = e.host - (e.host % 512);
      for (let c = Math.floor(start / cs); c * cs < start + e.compressedSectors * 512; c++) {
        this.#pendingFree.push(c);
      }
    }
  }

  async #write(offset: number, data: Uint8Array): Promise<void> {
    const cs = this.#cs;
    // Pieces headed for consecutive host offsets from consecutive data go out as one write.
    let runHost = -1, runStart = 0, runEnd = 0;
    const remaps: Array<() => void> = [];
    const flushRun = async () => {
      if (runHost >= 0) await writeAt(this.file, runHost, data.subarray(runStart, runEnd));
      runHost = -1;
    };
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const gc = Math.floor(at / cs);
      const within = at - gc * cs;
      const n = Math.min(cs - within, data.length - pos);
      await this.#unshareL2(gc); // first: a shared table's clusters count it twice after
      const e = this.#entry(gc);
      const owned = e.mapping === Mapping.Normal && this.refcounts.get(e.host / cs) === 1;
      const zeroInPlace = e.mapping === Mapping.ZeroAllocated &&
        this.refcounts.get(e.host / cs) === 1;
      let host: number;
      const touched = this.#subclusterMask(within, n);
      if (owned && (e.alloc & touched) !== touched) {
        // Extended L2: subclusters without data yet get their old content (backing file or
        // zeros) around the new bytes, then they are marked allocated.
        const unit = this.#unit;
        const from = Math.floor(within / unit) * unit;
        const to = Math.ceil((within + n) / unit) * unit;
        const span = await this.#read(
          gc * cs + from,
          Math.min(to, this.header.size - gc * cs) - from,
        );
        span.set(data.subarray(pos, pos + n), within - from);
        await flushRun();
        await writeAt(this.file, e.host + from, span);
        const l2 = this.#l2For(gc)!;
        remaps.push(() => {
          setL2Owned(
            l2.table,
            l2.index,
            e.host,
            this.#format,
            e.alloc | touched,
            e.zero & ~touched,
          );
          this.#dirtyL2.add(Math.floor(gc / this.#l2Entries));
        });
        pos += n;
        continue;
      }
      if (owned) host = e.host + within;
      else {
        // Copy-on-write: a fresh cluster holding the old content with the new bytes over it.
        let fill: Uint8Array | undefined;
        if (n !== cs && e.mapping !== Mapping.Zero && e.mapping !== Mapping.ZeroAllocated) {
          fill = await this.#readCluster(gc);
        } else if (n !== cs) fill = new Uint8Array(cs);
        const l2 = await this.#ensureL2(gc); // before the data cluster, as QEMU lays them out
        const c = zeroInPlace ? e.host / cs : await this.#allocate();
        if (fill) {
          fill.set(data.subarray(pos, pos + n), within);
          await flushRun();
          await writeAt(this.file, c * cs, fill);
        }
        host = c * cs + within;
        remaps.push(() => {
          setL2Owned(l2.table, l2.index, c * cs, this.#format);
          this.#dirtyL2.add(Math.floor(gc / this.#l2Entries));
          if (!zeroInPlace) this.#release(e);
        });
        if (fill) {
          pos += n;
          continue;
        }
      }
      if (runHost >= 0 && runHost + (runEnd - runStart) === host && runEnd === pos) runEnd += n;
      else {
        await flushRun();
        runHost = host;
        runStart = pos;
        runEnd = pos + n;
      }
      pos += n;
    }
    await flushRun();
    for (const remap of remaps) remap(); // entries change only after their data was written
  }

  /** Subclusters (bit x: subcluster x) that bytes `within`..`within + n` of a cluster touch. */
  #subclusterMask(within: number, n: number): number {
    if (!this.#format.extended) return 1;
    const first = Math.floor(within / this.#unit);
    const last = Math.floor((within + n - 1) / this.#unit);
    return last - first === 31 ? 0xffffffff : (((1 << (last - first + 1)) - 1) << first) >>> 0;
  }

  // --- discard -------------------------------------------------------------------------

  async #discard(offset: number, length: number): Promise<void> {
    const cs = this.#cs;
    let pos = 0;
    while (pos < length) {
      const at = offset + pos;
      const gc = Math.floor(at / cs);
      const within = at - gc * cs;
      const n = Math.min(cs - within, length - pos);
      pos += n;
      await this.#unshareL2(gc);
      const e = this.#entry(gc);
      const backed = this.backing !== undefined && gc * cs < this.#backingSize;
      const allZero = this.#format.extended ? 0xffffffff : 1;
      const readsZero = e.mapping !== Mapping.Compressed && e.alloc === 0 &&
        (!backed || e.zero === allZero);
      if (readsZero) continue;
      const whole = n === cs || (within === 0 && at + n === this.header.size);
      if (!whole || (backed && this.header.version === 2)) {
        // Partial cluster, or a v2 image (no zero flag) over a backing file: write zeros.
        await this.#write(at, new Uint8Array(n));
        continue;
      }
      const l2 = await this.#ensureL2(gc);
      if (backed) setL2Zero(l2.table, l2.index, this.#format);
      else clearL2(l2.table, l2.index, this.#format);
      this.#dirtyL2.add(Math.floor(gc / this.#l2Entries));
      this.#release(e);
    }
  }

  // --- write-back ----------------------------------------------------------------------

  /** Writes metadata in the order of the comment above #allocate, with an fsync per step. */
  async #writeBack(): Promise<void> {
    const f = this.file;
    let synced = false;
    if (this.refcounts.dirty || this.#dirtyL2.size > 0 || this.#dirtyL1.size > 0) {
      await this.refcounts.writeDirty(f);
      await f.syncData();
      synced = true;
    }
    if (this.#dirtyL2.size > 0) {
      for (const i of [...this.#dirtyL2].sort((a, b) => a - b)) {
        await writeAt(f, decodeL1(this.#l1View, i), this.#l2.get(i)!);
      }
      this.#dirtyL2.clear();
      await f.syncData();
    }
    if (this.#dirtyL1.size > 0) {
      for (const i of [...this.#dirtyL1].sort((a, b) => a - b)) {
        await writeAt(f, this.header.l1TableOffset + i * 8, this.l1.subarray(i * 8, i * 8 + 8));
      }
      this.#dirtyL1.clear();
      await f.syncData();
    }
    if (this.#pendingFree.length > 0) {
      const freed = this.#pendingFree;
      this.#pendingFree = [];
      for (const c of freed) this.refcounts.set(c, this.refcounts.get(c) - 1);
      await this.refcounts.writeDirty(f);
      await f.syncData();
      synced = true;
    }
    if (!synced) await f.syncData();
  }

  #checkBounds(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.header.size) {
      throw new BlockError(
        "OUT_OF_RANGE",
        `range ${offset}+${length} beyond size ${this.header.size}`,
      );
    }
  }

  #checkWritable(offset: number, length: number): void {
    if (this.readOnly) throw new BlockError("READ_ONLY", `${this.path} is read-only`);
    this.#checkBounds(offset, length);
  }
}
