/**
 * Raw image file backend: the device is the file's bytes, offset for offset.
 * @module
 */

import { type BlockBackend, BlockError, type BlockInfo, hostIo } from "./block_backend.ts";
import { readAt, writeAt, zeroAt } from "./file_io.ts";
import { IoQueue } from "./io_queue.ts";

/** Options for {@link RawFile.open}. */
export interface RawFileOptions {
  /** Open the image read-only; writes and discards are refused with READ_ONLY. */
  readOnly?: boolean;
  /** Logical sector size reported in Info (default 512). */
  sectorSize?: number;
}

/** A raw image file as a block device. Its size is the file size at open. */
export class RawFile implements BlockBackend {
  readonly #queue = new IoQueue();

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
    this.#checkBounds(offset, length);
    return this.#queue.run(() =>
      hostIo("read", async () => {
        const buf = new Uint8Array(length);
        await readAt(this.file, offset, buf);
        return buf;
      })
    );
  }

  /** Writes `data` at `offset`; with `fua`, durable before it resolves. */
  write(offset: number, data: Uint8Array, fua = false): Promise<void> {
    this.#checkWritable(offset, data.length);
    return this.#queue.run(() =>
      hostIo("write", async () => {
        await writeAt(this.file, offset, data);
        if (fua) await this.file.syncData();
      })
    );
  }

  /** fsyncs the written file before it resolves. */
  flush(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    return this.#queue.run(() => hostIo("flush", () => this.file.syncData()));
  }

  /** Zeroes a range. */
  discard(offset: number, length: number): Promise<void> {
    this.#checkWritable(offset, length);
    // Zero-fill rather than punch a hole: Deno exposes no fallocate, and zeros are what
    // a reader of a discarded range must see either way.
    return this.#queue.run(() => hostIo("discard", () => zeroAt(this.file, offset, length)));
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
