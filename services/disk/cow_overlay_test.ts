import assert from "node:assert/strict";
import { BlockError } from "./block_backend.ts";
import { CowOverlay, decodeHeader } from "./cow_overlay.ts";

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
}

const CLUSTER = 4096;

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cow overlay: reads fall through to base, partial writes copy up", async () => {
  await withDir(async (dir) => {
    const base = pattern(64 * 1024, 3);
    await Deno.writeFile(`${dir}/base.img`, base);
    await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`, { clusterSize: CLUSTER });
    const disk = await CowOverlay.open(`${dir}/a.cow`);
    assert.equal(disk.info().sizeBytes, base.length);
    assert.deepEqual(await disk.read(0, base.length), base);
    // A 512-byte write in the middle of cluster 2: the rest of the cluster must keep base bytes.
    const data = pattern(512, 99);
    await disk.write(2 * CLUSTER + 1024, data);
    const expected = base.slice();
    expected.set(data, 2 * CLUSTER + 1024);
    assert.deepEqual(await disk.read(0, base.length), expected);
    assert.equal(disk.allocatedClusters(), 1);
    // A write across a cluster boundary allocates both clusters.
    const span = pattern(CLUSTER, 5);
    await disk.write(5 * CLUSTER + 2048, span);
    expected.set(span, 5 * CLUSTER + 2048);
    assert.deepEqual(await disk.read(0, base.length), expected);
    assert.equal(disk.allocatedClusters(), 3);
    await disk.discard(2 * CLUSTER, CLUSTER);
    expected.fill(0, 2 * CLUSTER, 3 * CLUSTER);
    assert.deepEqual(await disk.read(0, base.length), expected);
    disk.close();
    assert.deepEqual(await Deno.readFile(`${dir}/base.img`), base);
  });
});

Deno.test("cow overlay: survives reopen, two overlays on one base are isolated", async () => {
  await withDir(async (dir) => {
    const base = pattern(32 * 1024, 11);
    await Deno.writeFile(`${dir}/base.img`, base);
    await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`, { clusterSize: CLUSTER });
    await CowOverlay.create(`${dir}/b.cow`, `${dir}/base.img`, { clusterSize: CLUSTER });
    const a = await CowOverlay.open(`${dir}/a.cow`);
    const b = await CowOverlay.open(`${dir}/b.cow`);
    const da = pattern(8192, 1);
    const db = pattern(1024, 2);
    await a.write(4096, da);
    await b.write(0, db);
    await a.flush();
    a.close();
    const reopened = await CowOverlay.open(`${dir}/a.cow`, { readOnly: true });
    assert.deepEqual(await reopened.read(4096, 8192), da);
    assert.deepEqual(await reopened.read(0, 4096), base.subarray(0, 4096));
    assert.deepEqual(await b.read(4096, 8192), base.subarray(4096, 4096 + 8192));
    assert.deepEqual(await b.read(0, 1024), db);
    assert.throws(() => reopened.write(0, db), (e) => {
      return e instanceof BlockError && e.code === "READ_ONLY";
    });
    reopened.close();
    b.close();
    assert.deepEqual(await Deno.readFile(`${dir}/base.img`), base);
  });
});

Deno.test("cow overlay: virtual size beyond the base reads zeros past it", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/base.img`, pattern(5000, 4));
    await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`, { size: 1 << 20 });
    const disk = await CowOverlay.open(`${dir}/a.cow`);
    const tail = await disk.read(4096, 8192);
    assert.deepEqual(tail.subarray(0, 904), pattern(5000, 4).subarray(4096));
    assert.deepEqual(tail.subarray(904), new Uint8Array(8192 - 904));
    await disk.write((1 << 20) - 512, pattern(512, 8));
    assert.deepEqual(await disk.read((1 << 20) - 512, 512), pattern(512, 8));
    assert.throws(() => disk.read((1 << 20) - 512, 1024), (e) => {
      return e instanceof BlockError && e.code === "OUT_OF_RANGE";
    });
    disk.close();
  });
});

Deno.test("cow overlay: broken files and a changed base are refused with a clear error", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/base.img`, pattern(8192, 4));
    await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`);
    await Deno.writeFile(`${dir}/junk.cow`, pattern(4096, 0));
    await assert.rejects(CowOverlay.open(`${dir}/junk.cow`), /bad magic/);
    const header = await Deno.readFile(`${dir}/a.cow`);
    header[12] = 3; // cluster size no longer a power of two
    await Deno.writeFile(`${dir}/bad.cow`, header);
    assert.throws(() => decodeHeader(header), /cluster size/);
    await assert.rejects(CowOverlay.open(`${dir}/bad.cow`), /cluster size/);
    await Deno.writeFile(`${dir}/base.img`, pattern(4096, 4));
    await assert.rejects(CowOverlay.open(`${dir}/a.cow`), /overlay was made over 8192/);
  });
});

Deno.test("cow overlay: concurrent allocating writes share one sync; a resolved write is on disk", async () => {
  await withDir(async (dir) => {
    const base = pattern(64 * CLUSTER, 7);
    await Deno.writeFile(`${dir}/base.img`, base);
    await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`, { clusterSize: CLUSTER });
    const disk = await CowOverlay.open(`${dir}/a.cow`);
    const file = disk.overlay;
    const sync = file.syncData.bind(file);
    let syncs = 0;
    file.syncData = () => {
      syncs++;
      return sync();
    };
    // 16 writes to fresh clusters, all queued at once (as a guest's writeback sends them).
    const writes = Array.from({ length: 16 }, (_, i) => pattern(CLUSTER, 100 + i));
    const rewrite = pattern(512, 1);
    await Promise.all([
      ...writes.map((w, i) => disk.write(i * 2 * CLUSTER, w)),
      // A write into a cluster whose bit is not on disk yet waits for that commit too.
      disk.write(0, rewrite),
    ]);
    assert.ok(syncs >= 1 && syncs <= 2, `${syncs} syncs for 17 writes`);
    // No flush: what a process killed now leaves behind must hold every resolved write.
    const again = await CowOverlay.open(`${dir}/a.cow`);
    const expected = base.slice();
    writes.forEach((w, i) => expected.set(w, i * 2 * CLUSTER));
    expected.set(rewrite, 0);
    assert.deepEqual(await again.read(0, base.length), expected);
    assert.equal(again.allocatedClusters(), 16);
    again.close();
    disk.close();
  });
});
