import assert from "node:assert/strict";
import { BlockError } from "./block_backend.ts";
import { openImage } from "./image_open.ts";
import { ProbedRawGuard } from "./probed_raw_guard.ts";

const MAGIC = [0x51, 0x46, 0x49, 0xfb]; // "QFI\xfb"

Deno.test("a probed raw image refuses writes that would make it probe as qcow2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/disk.img`;
    await Deno.writeFile(path, new Uint8Array(64 * 1024));
    const probed = await openImage(path);
    assert.ok(probed instanceof ProbedRawGuard);
    const header = new Uint8Array(512);
    header.set(MAGIC);
    await assert.rejects(() => probed.write(0, header), (e) => {
      assert.ok(e instanceof BlockError);
      assert.equal(e.code, "IO_ERROR");
      assert.match(e.message, /--format raw/);
      return true;
    });
    // Byte-granular writes that complete the magic piece by piece are refused too.
    await probed.write(0, Uint8Array.from(MAGIC.slice(0, 2)));
    await assert.rejects(() => probed.write(2, Uint8Array.from(MAGIC.slice(2))), BlockError);
    await probed.write(512, header); // elsewhere the magic is just data
    await probed.write(0, new Uint8Array(512).fill(7));
    // Reads into a caller's buffer go through too (the disk service's zero-copy read replies).
    assert.ok(probed.readInto, "a probed raw image keeps readInto");
    const dst = new Uint8Array(1024);
    await probed.readInto(0, dst);
    assert.deepEqual(dst.subarray(0, 512), new Uint8Array(512).fill(7));
    assert.deepEqual(dst.subarray(512, 516), Uint8Array.from(MAGIC));
    probed.close();
    assert.deepEqual((await Deno.readFile(path)).subarray(0, 4), Uint8Array.from([7, 7, 7, 7]));

    const given = await openImage(path, { format: "raw" });
    assert.ok(!(given instanceof ProbedRawGuard), "--format raw: no restriction");
    await given.write(0, header);
    given.close();
    assert.deepEqual((await Deno.readFile(path)).subarray(0, 4), Uint8Array.from(MAGIC));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
