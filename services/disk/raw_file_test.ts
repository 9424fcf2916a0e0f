import assert from "node:assert/strict";
import { BlockError, checkRange } from "./block_backend.ts";
import { RawFile } from "./raw_file.ts";

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

Deno.test("raw file: write/read round trip, flush, discard", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/disk.img`;
    await RawFile.create(path, 1 << 20);
    const disk = await RawFile.open(path);
    assert.deepEqual(disk.info(), {
      sizeBytes: 1 << 20,
      sectorSize: 512,
      readOnly: false,
      discard: true,
    });
    const data = pattern(4096, 7);
    await disk.write(8192, data);
    assert.deepEqual(await disk.read(8192, 4096), data);
    assert.deepEqual(await disk.read(0, 512), new Uint8Array(512));
    await disk.flush();
    // What flush made durable is in the file itself, seen through another handle.
    const onDisk = await Deno.readFile(path);
    assert.deepEqual(onDisk.subarray(8192, 8192 + 4096), data);
    await disk.discard(8192, 1024);
    const after = await disk.read(8192, 4096);
    assert.deepEqual(after.subarray(0, 1024), new Uint8Array(1024));
    assert.deepEqual(after.subarray(1024), data.subarray(1024));
    disk.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("raw file: read-only refuses writes and discards, out of range refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/disk.img`;
    await Deno.writeFile(path, pattern(65536, 1));
    const disk = await RawFile.open(path, { readOnly: true });
    assert.equal(disk.info().readOnly, true);
    assert.throws(() => disk.write(0, new Uint8Array(512)), (e) => {
      return e instanceof BlockError && e.code === "READ_ONLY";
    });
    assert.throws(() => disk.discard(0, 512), (e) => {
      return e instanceof BlockError && e.code === "READ_ONLY";
    });
    assert.throws(() => disk.read(65536 - 512, 1024), (e) => {
      return e instanceof BlockError && e.code === "OUT_OF_RANGE";
    });
    assert.deepEqual(await disk.read(512, 512), pattern(65536, 1).subarray(512, 1024));
    disk.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkRange: alignment, size limit, range", () => {
  const info = { sizeBytes: 1 << 20, sectorSize: 512, readOnly: false, discard: true };
  const limits = { maxTransfer: 65536, requireAlignment: true };
  checkRange(info, 0, 65536, limits);
  const code = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as BlockError).code;
    }
    return "OK";
  };
  assert.equal(code(() => checkRange(info, 100, 512, limits)), "INVALID_ARGUMENT");
  assert.equal(code(() => checkRange(info, 0, 65536 + 512, limits)), "TOO_LARGE");
  assert.equal(code(() => checkRange(info, 0, 1 << 21, limits, false)), "OUT_OF_RANGE");
  assert.equal(code(() => checkRange(info, (1 << 20) - 512, 1024, limits)), "OUT_OF_RANGE");
  assert.equal(code(() => checkRange(info, -512, 512, limits)), "INVALID_ARGUMENT");
});

Deno.test("raw file: requests in flight do not wait on each other (a read passes a flush)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/disk.img`;
    await RawFile.create(path, 1 << 20);
    const disk = await RawFile.open(path);
    await disk.write(0, pattern(4096, 3));
    const order: string[] = [];
    const flushed = disk.flush().then(() => order.push("flush"));
    const read = disk.read(0, 4096).then((d) => {
      order.push("read");
      return d;
    });
    assert.deepEqual(await read, pattern(4096, 3));
    await flushed;
    // The fsync is a host call in flight; the read is served from the file meanwhile.
    assert.deepEqual(order, ["read", "flush"]);
    disk.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
