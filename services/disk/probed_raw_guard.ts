/**
 * Guards an image whose raw format was probed, not given: a guest write that would make its
 * first bytes the qcow2 magic is refused, so the next probe cannot open the guest's bytes as a
 * qcow2 image with a backing file of the guest's choosing (a host file). QEMU restricts
 * probed raw images the same way; `--format raw` lifts the restriction.
 * @module
 */

import { type BlockBackend, BlockError, type BlockInfo } from "./block_backend.ts";
import { isQcow2 } from "./qcow2_header.ts";

/** Bytes of the image the probe looks at. */
const PROBED_BYTES = 4;

/**
 * A raw backend whose format was guessed.
 *
 * @example
 * ```ts
 * const disk = new ProbedRawGuard(await RawFile.open("disk.img"));
 * await disk.write(0, qcow2Header); // rejects with IO_ERROR
 * ```
 */
export class ProbedRawGuard implements BlockBackend {
  /** Reads through into `dst`, when the image can (see `BlockBackend.readInto`). */
  readonly readInto?: (offset: number, dst: Uint8Array) => Promise<void>;

  /** Wraps `inner`, a raw image opened by probing. */
  constructor(readonly inner: BlockBackend) {
    if (inner.readInto) this.readInto = (offset, dst) => inner.readInto!(offset, dst);
  }

  /** Geometry and features of the raw image. */
  info(): BlockInfo {
    return this.inner.info();
  }

  /** Reads through. */
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  /** Writes through, unless the image would then probe as qcow2. */
  async write(offset: number, data: Uint8Array, fua?: boolean): Promise<void> {
    if (offset < PROBED_BYTES && data.length > 0) {
      const next = new Uint8Array(PROBED_BYTES);
      if (offset !== 0 || data.length < PROBED_BYTES) {
        next.set(await this.inner.read(0, Math.min(PROBED_BYTES, this.info().sizeBytes)));
      }
      next.set(data.subarray(0, PROBED_BYTES - offset), offset);
      if (isQcow2(next)) {
        throw new BlockError(
          "IO_ERROR",
          "refused: this write would make a probed raw image look like qcow2 " +
            "(serve it with --format raw, or --drive PATH,format=raw, to allow it)",
        );
      }
    }
    return this.inner.write(offset, data, fua);
  }

  /** Flushes through. */
  flush(): Promise<void> {
    return this.inner.flush();
  }

  /** Discards through (zeros never look like qcow2). */
  discard(offset: number, length: number): Promise<void> {
    return this.inner.discard(offset, length);
  }

  /** Closes the image. */
  close(): void {
    this.inner.close();
  }
}
