/**
 * Raw image file backend: the device is the file's bytes, offset for offset. Reads and writes
 * are synchronous seek + read/write calls done when the request arrives (no queue: nothing can
 * run between the seek and the transfer), so requests in flight never wait on each other and
 * the replies of a batch of requests leave together. A write is in the page cache when it
 * resolves, so a later flush's fsync covers it; fsync itself is async.
 * @module
 */

import { type BlockBackend, BlockError, type BlockInfo, ioError } from "./block_backend.ts";
import { readAtSync, writeAtSync, zeroAt } from "./file_io.ts";

/** Options for {@link RawFile.open}. */
export interface RawFileOptions {
  /** Open the image read-only; writes and discards are refused with READ_ONLY. */
  readOnly?: boolean;
  /** Logical sector size reported in Info (default 512). */
  sectorSize?: number;
}

/** A raw image file as a block device. Its size is the file size at open. */
export class RawFile implements BlockBackend {
  private constructor(
    readonly path: string,
    readonly file: Deno.FsFile,
    readonly size: number,
    readonly readOnly: boolean,
    readonly sectorSize: number,
  ) {}

  /** Opens an existing image file. */
  static async open(path: string, options: RawFileOptions = {}): Promise<RawFile> {
    const readOnly = options.readOnly ?? false;
    const file = await Deno.open(path, { read: true, write: !readOnly });
    const { size } = await file.stat();
    return new RawFile(path, file, size, readOnly, options.sectorSize ?? 512);
  }

  /** Creates (or truncates) a sparse image file of `size` bytes. */
  static async create(path: string, size: number): Promise<void> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    try {
      await file.truncate(size);
    } finally {
      file.close();
    }
  }

  /** Geometry and features. */
  info(): BlockInfo {
    return {
      sizeBytes: this.size,
      sectorSize: this.sectorSize,
      readOnly: this.readOnly,
      discard: !this.readOnly,
    };
  }

  /** Reads `length` bytes at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    return this.readInto(offset, buf).then(() => buf);
  }

  /** Reads `dst.length` bytes at `offset` into `dst`. */
  readInto(offset: number, dst: Uint8Array): Promise<void> {
    this.#checkBounds(offset, dst.length);
    try {
      readAtSync(this.file, offset, dst);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(ioError("read", e));
    }
  }

  /** Writes `data` at `offset`; with `fua`, durable before it resolves. */
  write(offset: number, data: Uint8Array, fua = false): Promise<void> {
    this.#checkWritable(offset, data.length);
    try {
      writeAtSync(this.file, offset, data);
    } catch (e) {
      return Promise.reject(ioError("write", e));
    }
    return fua ? this.#sync("write") : Promise.resolve();
  }

  /** fsyncs the written file before it resolves. */
  flush(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    return this.#sync("flush");
  }

  /** Zeroes a range. */
  discard(offset: number, length: number): Promise<void> {
    this.#checkWritable(offset, length);
    // Zero-fill rather than punch a hole: Deno exposes no fallocate, and zeros are what
    // a reader of a discarded range must see either way.
    return zeroAt(this.file, offset, length).catch((e) => {
      throw ioError("discard", e);
    });
  }

  #sync(what: string): Promise<void> {
    return this.file.syncData().catch((e) => {
      throw ioError(what, e);
    });
  }

  /** Closes the files. */
  close(): void {
    this.file.close();
  }

  #checkBounds(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockError("OUT_OF_RANGE", `range ${offset}+${length} beyond size ${this.size}`);
    }
  }

  #checkWritable(offset: number, length: number): void {
    if (this.readOnly) throw new BlockError("READ_ONLY", `${this.path} is read-only`);
    this.#checkBounds(offset, length);
  }
}
