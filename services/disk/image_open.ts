/**
 * Opens a disk image by format: `raw` or `qcow2`, given or probed from the first bytes (as QEMU
 * does without `format=`), with qcow2 backing chains opened the same way, read-only.
 * @module
 */

import type { BlockBackend } from "./block_backend.ts";
import { readAt } from "./file_io.ts";
import { ProbedRawGuard } from "./probed_raw_guard.ts";
import { isQcow2 } from "./qcow2_header.ts";
import { Qcow2Image } from "./qcow2_image.ts";
import { RawFile } from "./raw_file.ts";

/** Image formats the disk service serves. */
export type ImageFormat = "raw" | "qcow2";

/** QEMU's limit on a backing chain's length; also catches a chain that loops. */
const MAX_CHAIN = 64;

/** Options for {@link openImage}. */
export interface OpenImageOptions {
  /** The format; probed from the file when absent. */
  format?: ImageFormat;
  readOnly?: boolean;
  sectorSize?: number;
  /** qcow2: use this backing file instead of the one named in the header. */
  backingPath?: string;
  /** qcow2: the format of `backingPath` (probed when absent). */
  backingFormat?: ImageFormat;
}

/** Checks a format name from a flag or a header extension. */
export function parseImageFormat(name: string): ImageFormat {
  if (name === "raw" || name === "qcow2") return name;
  throw new Error(`unsupported image format '${name}' (want raw or qcow2)`);
}

/**
 * The format of the image at `path`: qcow2 when it starts with the qcow2 magic, else raw.
 *
 * @example
 * ```ts
 * if (await probeFormat("disk.img") === "qcow2") console.log("a qcow2 image");
 * ```
 */
export async function probeFormat(path: string): Promise<ImageFormat> {
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(4);
    await readAt(file, 0, head);
    return isQcow2(head) ? "qcow2" : "raw";
  } finally {
    file.close();
  }
}

/**
 * Opens `path` as a block backend of its format; a qcow2 image's backing files are opened
 * read-only, each by its recorded (or probed) format. A writable raw image whose format was
 * probed refuses writes that would make it probe as qcow2 ({@link ProbedRawGuard}).
 *
 * @example
 * ```ts
 * const disk = await openImage("vm1.qcow2"); // probed; opens its backing file too
 * console.log(disk.info().sizeBytes);
 * ```
 */
export function openImage(path: string, options: OpenImageOptions = {}): Promise<BlockBackend> {
  return openChain(path, options, []);
}

async function openChain(
  path: string,
  options: OpenImageOptions,
  chain: string[],
): Promise<BlockBackend> {
  const real = await Deno.realPath(path);
  if (chain.includes(real)) throw new Error(`backing chain loops back to ${real}`);
  if (chain.length >= MAX_CHAIN) throw new Error(`backing chain longer than ${MAX_CHAIN}`);
  const format = options.format ?? await probeFormat(path);
  if (format === "raw") {
    const raw = await RawFile.open(path, {
      readOnly: options.readOnly,
      sectorSize: options.sectorSize,
    });
    return options.format || options.readOnly ? raw : new ProbedRawGuard(raw);
  }
  const override = options.backingPath;
  return await Qcow2Image.open(path, {
    readOnly: options.readOnly,
    sectorSize: options.sectorSize,
    backingPath: override,
    openBacking: (backing, fmt) => {
      const format = override ? options.backingFormat : fmt ? parseImageFormat(fmt) : undefined;
      return openChain(backing, { format, readOnly: true }, [...chain, real]);
    },
  });
}
