/**
 * Decompression of qcow2 compressed clusters: zlib (raw deflate, compression type 0) and zstd
 * (type 1), with `node:zlib`. A compressed cluster's last sector may hold the start of the next
 * one, so the input is cut at the end of the deflate stream or of the zstd frames.
 * @module
 */

import { constants, inflateRawSync, zstdDecompressSync } from "node:zlib";

/** Compression type codes of the header's compression_type field. */
export const COMPRESSION_ZLIB = 0;
/** zstd, with incompatible feature bit 3 set. */
export const COMPRESSION_ZSTD = 1;

const ZSTD_MAGIC = 0xfd2fb528;

/** Length in bytes of the zstd frame at the start of `buf` (RFC 8878), or -1 if it is not one. */
export function zstdFrameLength(buf: Uint8Array): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 6 || v.getUint32(0, true) !== ZSTD_MAGIC) return -1;
  const fhd = buf[4];
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag];
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  let at = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
  for (;;) {
    if (at + 3 > buf.length) return -1;
    const header = buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) return -1;
    at += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  if ((fhd >> 2) & 1) at += 4; // content checksum
  return at <= buf.length ? at : -1;
}

/**
 * Inflates one compressed cluster; throws an Error when the data is corrupt or short.
 *
 * @example
 * ```ts
 * const cluster = decompressCluster(COMPRESSION_ZLIB, sectors, 65536);
 * ```
 */
export function decompressCluster(type: number, data: Uint8Array, clusterSize: number): Uint8Array {
  let out: Uint8Array;
  if (type === COMPRESSION_ZLIB) {
    // Z_SYNC_FLUSH: stop at the end of the deflate stream, ignoring the sector's tail.
    out = inflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  } else if (type === COMPRESSION_ZSTD) {
    const parts: Uint8Array[] = [];
    let total = 0, at = 0;
    while (total < clusterSize) {
      const len = zstdFrameLength(data.subarray(at));
      if (len < 0) throw new Error("not a complete zstd frame");
      const part = zstdDecompressSync(data.subarray(at, at + len));
      parts.push(part);
      total += part.length;
      at += len;
    }
    out = new Uint8Array(total);
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
  } else throw new Error(`unknown compression type ${type}`);
  if (out.length < clusterSize) throw new Error(`inflates to ${out.length} bytes`);
  return new Uint8Array(out.buffer, out.byteOffset, clusterSize); // a plain view, not a Buffer
}
