import assert from "node:assert/strict";
import { deflateRawSync, zstdCompressSync } from "node:zlib";
import {
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  decompressCluster,
  zstdFrameLength,
} from "./qcow2_compression.ts";

const cs = 65536;
const cluster = Uint8Array.from({ length: cs }, (_, i) => (i % 97 < 60 ? 65 + (i % 7) : i & 0xff));

/** Compressed bytes followed by the start of a neighbour, as in a shared last sector. */
function withTail(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 300);
  out.set(data);
  out.fill(0x28, data.length);
  return out;
}

Deno.test("compressed clusters: zlib and zstd inflate despite the sector's tail", () => {
  const zlib = withTail(deflateRawSync(cluster));
  assert.deepEqual(decompressCluster(COMPRESSION_ZLIB, zlib, cs), cluster);
  const frame = zstdCompressSync(cluster);
  assert.equal(zstdFrameLength(withTail(frame)), frame.length);
  assert.deepEqual(decompressCluster(COMPRESSION_ZSTD, withTail(frame), cs), cluster);
});

Deno.test("compressed clusters: corrupt or short data is an error", () => {
  assert.throws(() => decompressCluster(COMPRESSION_ZLIB, new Uint8Array(512).fill(0xff), cs));
  const short = deflateRawSync(cluster.subarray(0, 1000));
  assert.throws(() => decompressCluster(COMPRESSION_ZLIB, short, cs), /inflates to 1000 bytes/);
  assert.throws(
    () => decompressCluster(COMPRESSION_ZSTD, new Uint8Array(512), cs),
    /not a complete zstd frame/,
  );
  const frame = zstdCompressSync(cluster);
  assert.equal(zstdFrameLength(frame.subarray(0, frame.length - 10)), -1, "a cut frame");
  assert.throws(() => decompressCluster(7, new Uint8Array(512), cs), /unknown compression type 7/);
});
