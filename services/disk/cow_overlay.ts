/**
 * Copy-on-write overlay over a read-only base image. Many VMs can share one base: each
 * gets its own overlay file, and the base is only ever opened read-only.
 *
 * Overlay file format (version 1, little-endian), documented in README.md:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 8 | magic `VMESHCOW` |
 * | 8 | 4 | version (1) |
 * | 12 | 4 | cluster size in bytes (power of two, 512 .. 1 MiB) |
 * | 16 | 8 | virtual device size in bytes |
 * | 24 | 8 | base image size in bytes when the overlay was made (checked at open) |
 * | 32 | 8 | bitmap offset (4096) |
 * | 40 | 8 | bitmap length in bytes = ceil(clusters / 8) |
 * | 48 | 8 | data offset (a multiple of the cluster size) |
 * | 56 | 4 | base path length n |
 * | 60 | n | base path, UTF-8 (absolute) |
 *
 * Bit `i` of the bitmap (byte `i >> 3`, bit `i & 7`) set means cluster `i` lives in the
 * overlay at `data offset + i * cluster size` (a sparse file); clear means it reads
 * from the base (zeros past the end of the base).
 * @module
 */

import { type BlockBackend, BlockError, type BlockInfo, hostIo } from "./block_backend.ts";
import { readAt, writeAt } from "./file_io.ts";
import { IoQueue } from "./io_queue.ts";

const MAGIC = "VMESHCOW";
const VERSION = 1;
const HEADER_SIZE = 4096;
const PATH_FIELD = 60;
const MIN_CLUSTER = 512;
const MAX_CLUSTER = 1 << 20;
/** Default cluster size: 64 KiB, as qcow2. */
export const DEFAULT_CLUSTER_SIZE = 64 * 1024;

/** Options for {@link CowOverlay.create}. */
export interface CowCreateOptions {
  /** Cluster size in bytes (default 64 KiB). */
  clusterSize?: number;
  /** Virtual size in bytes (default: the base image size). */
  size?: number;
}

/** Options for {@link CowOverlay.open}. */
export interface CowOpenOptions {
  /** Refuse writes and discards; the overlay file is opened read-only. */
  readOnly?: boolean;
  /** Use this base path instead of the one recorded in the overlay (moved base). */
  basePath?: string;
  /** Logical sector size reported in Info (default 512). */
  sectorSize?: number;
}

/** The parsed overlay header. */
export interface CowHeader {
  /** Cluster size in bytes (copy-on-write granularity). */
  clusterSize: number;
  /** Virtual device size in bytes. */
  size: number;
  /** Base image size when the overlay was made. */
  baseSize: number;
  /** File offset of the allocation bitmap (4096). */
  bitmapOffset: number;
  /** Bitmap length in bytes. */
  bitmapLength: number;
  /** File offset of cluster 0's data. */
  dataOffset: number;
  /** Absolute path of the base image. */
  basePath: string;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Encodes a header into its 4096-byte on-disk form. */
export function encodeHeader(h: CowHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_SIZE);
  const view = new DataView(buf.buffer);
  buf.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, h.clusterSize, true);
  view.setBigUint64(16, BigInt(h.size), true);
  view.setBigUint64(24, BigInt(h.baseSize), true);
  view.setBigUint64(32, BigInt(h.bitmapOffset), true);
  view.setBigUint64(40, BigInt(h.bitmapLength), true);
  view.setBigUint64(48, BigInt(h.dataOffset), true);
  const path = new TextEncoder().encode(h.basePath);
  if (path.length > HEADER_SIZE - PATH_FIELD) throw new Error("base path too long for header");
  view.setUint32(56, path.length, true);
  buf.set(path, PATH_FIELD);
  return buf;
}

/** Parses and validates an on-disk header; throws an Error saying what is wrong. */
export function decodeHeader(buf: Uint8Array): CowHeader {
  if (buf.length < HEADER_SIZE) throw new Error("overlay header truncated");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (new TextDecoder().decode(buf.subarray(0, 8)) !== MAGIC) {
    throw new Error("not a vmesh COW overlay (bad magic)");
  }
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new Error(`unsupported overlay version ${version}`);
  const num = (at: number) => Number(view.getBigUint64(at, true));
  const h: CowHeader = {
    clusterSize: view.getUint32(12, true),
    size: num(16),
    baseSize: num(24),
    bitmapOffset: num(32),
    bitmapLength: num(40),
    dataOffset: num(48),
    basePath: "",
  };
  const pathLength = view.getUint32(56, true);
  if (pathLength > HEADER_SIZE - PATH_FIELD) throw new Error("overlay base path length corrupt");
  h.basePath = new TextDecoder().decode(buf.subarray(PATH_FIELD, PATH_FIELD + pathLength));
  if (!isPowerOfTwo(h.clusterSize) || h.clusterSize < MIN_CLUSTER || h.clusterSize > MAX_CLUSTER) {
    throw new Error(`overlay cluster size ${h.clusterSize} invalid`);
  }
  const clusters = Math.ceil(h.size / h.clusterSize);
  if (
    !Number.isSafeInteger(h.size) || h.bitmapOffset !== HEADER_SIZE ||
    h.bitmapLength !== Math.ceil(clusters / 8) ||
    h.dataOffset < h.bitmapOffset + h.bitmapLength || h.dataOffset % h.clusterSize !== 0 ||
    !Number.isSafeInteger(h.dataOffset + clusters * h.clusterSize)
  ) {
    throw new Error("overlay header layout corrupt");
  }
  return h;
}

/** A copy-on-write overlay file over a read-only base image. */
export class CowOverlay implements BlockBackend {
  readonly #queue = new IoQueue();

  private constructor(
    readonly path: string,
    readonly header: CowHeader,
    readonly overlay: Deno.FsFile,
    readonly base: Deno.FsFile,
    readonly bitmap: Uint8Array,
    readonly readOnly: boolean,
    readonly sectorSize: number,
  ) {}

  /** Creates a new, empty overlay file at `overlayPath` over `basePath`. */
  static async create(
    overlayPath: string,
    basePath: string,
    options: CowCreateOptions = {},
  ): Promise<void> {
    const absoluteBase = await Deno.realPath(basePath);
    const baseSize = (await Deno.stat(absoluteBase)).size;
    const clusterSize = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
    if (!isPowerOfTwo(clusterSize) || clusterSize < MIN_CLUSTER || clusterSize > MAX_CLUSTER) {
      throw new Error(`cluster size ${clusterSize} must be a power of two in 512..1048576`);
    }
    const size = options.size ?? baseSize;
    const clusters = Math.ceil(size / clusterSize);
    const bitmapLength = Math.ceil(clusters / 8);
    const dataOffset = Math.ceil((HEADER_SIZE + bitmapLength) / clusterSize) * clusterSize;
    const header = encodeHeader({
      clusterSize,
      size,
      baseSize,
      bitmapOffset: HEADER_SIZE,
      bitmapLength,
      dataOffset,
      basePath: absoluteBase,
    });
    const file = await Deno.open(overlayPath, { write: true, createNew: true });
    try {
      await writeAt(file, 0, header);
      await file.truncate(dataOffset); // the bitmap region reads as zeros: nothing allocated
      await file.syncData();
    } finally {
      file.close();
    }
  }

  /** Opens an overlay and its base image; throws a clear Error when either is unusable. */
  static async open(overlayPath: string, options: CowOpenOptions = {}): Promise<CowOverlay> {
    const readOnly = options.readOnly ?? false;
    const overlay = await Deno.open(overlayPath, { read: true, write: !readOnly });
    let base: Deno.FsFile | undefined;
    try {
      const head = new Uint8Array(HEADER_SIZE);
      await readAt(overlay, 0, head);
      const header = decodeHeader(head);
      const basePath = options.basePath ?? header.basePath;
      base = await Deno.open(basePath, { read: true });
      const baseSize = (await base.stat()).size;
      if (baseSize !== header.baseSize) {
        throw new Error(
          `base image ${basePath} is ${baseSize} bytes, overlay was made over ${header.baseSize}`,
        );
      }
      const bitmap = new Uint8Array(header.bitmapLength);
      await readAt(overlay, header.bitmapOffset, bitmap);
      return new CowOverlay(
        overlayPath,
        header,
        overlay,
        base,
        bitmap,
        readOnly,
        options.sectorSize ?? 512,
      );
    } catch (err) {
      overlay.close();
      base?.close();
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

  /** Whether cluster `c` lives in the overlay. */
  allocated(c: number): boolean {
    return (this.bitmap[c >> 3] & (1 << (c & 7))) !== 0;
  }

  /** Number of clusters held in the overlay. */
  allocatedClusters(): number {
    let n = 0;
    for (const byte of this.bitmap) {
      for (let b = byte; b !== 0; b &= b - 1) n++;
    }
    return n;
  }

  /** Reads `length` bytes at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    return this.readInto(offset, out).then(() => out);
  }

  /** Reads `dst.length` bytes at `offset` into `dst`. */
  readInto(offset: number, dst: Uint8Array): Promise<void> {
    this.#checkBounds(offset, dst.length);
    return this.#queue.run(() => hostIo("read", () => this.#read(offset, dst)));
  }

  /**
   * Writes `data` at `offset`; with `fua`, durable before it resolves. A write that fills new
   * clusters resolves once their bits are on disk (after the data was synced): the bits of
   * every write queued meanwhile go out with one sync (`#commit`).
   */
  write(offset: number, data: Uint8Array, fua = false): Promise<void> {
    this.#checkWritable(offset, data.length);
    return this.#afterWrite(
      this.#queue.run(() => hostIo("write", () => this.#write(offset, data))),
      fua,
    );
  }

  /** fsyncs the written file before it resolves. */
  flush(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    return this.#queue.run(() =>
      hostIo("flush", async () => {
        await this.#writeBits();
        await this.overlay.syncData();
      })
    );
  }

  /** Runs `fn` after every earlier request, written back, with no I/O meanwhile. */
  quiesced<T>(fn: () => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (!this.readOnly) {
        await hostIo("flush", async () => {
          await this.#writeBits();
          await this.overlay.syncData();
        });
      }
      return await fn();
    });
  }

  /** Zeroes a range. */
  discard(offset: number, length: number): Promise<void> {
    this.#checkWritable(offset, length);
    // A discarded range must not fall through to the base, so it becomes overlay zeros.
    return this.#afterWrite(
      this.#queue.run(() =>
        hostIo("discard", async () => {
          const chunk = new Uint8Array(Math.min(length, this.header.clusterSize * 16));
          let fresh = false;
          for (let done = 0; done < length; done += chunk.length) {
            const n = Math.min(chunk.length, length - done);
            if (await this.#write(offset + done, chunk.subarray(0, n))) fresh = true;
          }
          return fresh;
        })
      ),
      false,
    );
  }

  /** Clusters whose data is written and whose bit is set in memory, not yet on disk. */
  readonly #pending = new Set<number>();
  /** The commit queued and not started yet, which a write that filled clusters joins. */
  #nextCommit: Promise<void> | undefined;

  /** Waits for a queued data write, then for its clusters' commit, then (fua) a sync. */
  async #afterWrite(written: Promise<boolean>, fua: boolean): Promise<void> {
    const fresh = await written;
    if (fresh) await this.#commit();
    if (fua) await this.#queue.run(() => hostIo("flush", () => this.overlay.syncData()));
  }

  /** Joins the next commit of pending bits (one sync for every write queued before it). */
  #commit(): Promise<void> {
    if (!this.#nextCommit) {
      this.#nextCommit = this.#queue.run(() => {
        this.#nextCommit = undefined;
        return hostIo("write", () => this.#writeBits());
      });
    }
    return this.#nextCommit;
  }

  /** Data before bitmap, so after a host crash a set bit never points at missing data. */
  async #writeBits(): Promise<void> {
    if (this.#pending.size === 0) return;
    const bits = [...this.#pending];
    this.#pending.clear();
    try {
      await this.overlay.syncData();
      let first = Infinity, last = -1;
      for (const c of bits) {
        first = Math.min(first, c >> 3);
        last = Math.max(last, c >> 3);
      }
      await writeAt(
        this.overlay,
        this.header.bitmapOffset + first,
        this.bitmap.subarray(first, last + 1),
      );
    } catch (err) {
      // Tried again by the next commit or flush; the in-memory bits stay set.
      for (const c of bits) this.#pending.add(c);
      throw err;
    }
  }

  /** Closes the files. */
  close(): void {
    this.overlay.close();
    this.base.close();
  }

  async #read(offset: number, out: Uint8Array): Promise<void> {
    const length = out.length;
    const cs = this.header.clusterSize;
    let pos = 0;
    while (pos < length) {
      const at = offset + pos;
      const c = Math.floor(at / cs);
      const within = at - c * cs;
      // Extend the run over following clusters from the same source: one host read each.
      const fromOverlay = this.allocated(c);
      let end = Math.min(length, pos + cs - within);
      while (end < length && this.allocated(Math.floor((offset + end) / cs)) === fromOverlay) {
        end = Math.min(length, end + cs);
      }
      const piece = out.subarray(pos, end);
      if (fromOverlay) await readAt(this.overlay, this.header.dataOffset + at, piece);
      else await readAt(this.base, at, piece); // past the base's end stays zero
      pos = end;
    }
  }

  /**
   * Writes the data; a cluster written for the first time (the rest copied up from the base)
   * gets its bit in memory and joins `#pending`. True when the write touched a cluster whose
   * bit is not on disk yet (it must wait for the commit).
   */
  async #write(offset: number, data: Uint8Array): Promise<boolean> {
    const cs = this.header.clusterSize;
    const fresh: number[] = [];
    let uncommitted = false;
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const c = Math.floor(at / cs);
      const within = at - c * cs;
      const n = Math.min(cs - within, data.length - pos);
      const piece = data.subarray(pos, pos + n);
      if (this.allocated(c)) {
        await writeAt(this.overlay, this.header.dataOffset + at, piece);
        // Its bit is not on disk yet: this write, too, completes with that commit.
        if (this.#pending.has(c)) uncommitted = true;
      } else {
        // First write to this cluster: copy the rest of it up from the base.
        let cluster = piece;
        if (n !== cs) {
          cluster = new Uint8Array(cs);
          await readAt(this.base, c * cs, cluster);
          cluster.set(piece, within);
        }
        await writeAt(this.overlay, this.header.dataOffset + c * cs, cluster);
        fresh.push(c);
      }
      pos += n;
    }
    for (const c of fresh) {
      this.bitmap[c >> 3] |= 1 << (c & 7);
      this.#pending.add(c);
    }
    return fresh.length > 0 || uncommitted;
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
