import assert from "node:assert/strict";
import { Qcow2FormatError, setU64 } from "./qcow2_header.ts";
import { Qcow2Refcounts } from "./qcow2_refcounts.ts";

const cs = 4096;

/** A file with a one-cluster refcount table at cluster 1 and one block at cluster 2. */
async function refcountFile(path: string): Promise<void> {
  const buf = new Uint8Array(3 * cs);
  setU64(new DataView(buf.buffer), cs, 2 * cs);
  await Deno.writeFile(path, buf);
}

Deno.test("refcounts: every width from 1 to 64 bits reads back what was set", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (let order = 0; order <= 6; order++) {
      const path = `${dir}/rc${order}`;
      await refcountFile(path);
      const file = await Deno.open(path, { read: true, write: true });
      const g = { clusterSize: cs, order, tableOffset: cs, tableClusters: 1 };
      const rc = await Qcow2Refcounts.load(file, g, 3 * cs);
      const bits = 2 ** order;
      assert.equal(rc.perBlock, (cs * 8) / bits);
      const max = bits >= 53 ? 2 ** 40 : 2 ** bits - 1;
      const want = new Map<number, number>();
      for (let i = 0; i < 200; i++) {
        const c = (i * 7919) % rc.perBlock;
        const v = (i * 31) % (Math.min(max, 1000) + 1);
        rc.set(c, v);
        want.set(c, v);
      }
      rc.set(rc.perBlock - 1, max);
      want.set(rc.perBlock - 1, max);
      for (const [c, v] of want) assert.equal(rc.get(c), v, `order ${order} cluster ${c}`);
      if (bits < 53) assert.throws(() => rc.set(5, max + 1), Qcow2FormatError);
      // Written and loaded again: the same counts.
      await rc.writeDirty(file);
      const again = await Qcow2Refcounts.load(file, g, 3 * cs);
      for (const [c, v] of want) assert.equal(again.get(c), v, `reloaded order ${order}`);
      file.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refcounts: allocation takes free clusters first and adds blocks as needed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rc`;
    await refcountFile(path);
    const file = await Deno.open(path, { read: true, write: true });
    // 16-bit refcounts: one 4 KiB block counts 2048 clusters; the table has room for 512.
    const rc = await Qcow2Refcounts.load(
      file,
      { clusterSize: cs, order: 4, tableOffset: cs, tableClusters: 1 },
      3 * cs,
    );
    for (const c of [0, 1, 2]) rc.set(c, 1);
    assert.equal(rc.allocate(), 3);
    assert.equal(rc.allocate(), 4);
    rc.set(3, 0); // freed: reused first
    assert.equal(rc.allocate(), 3);
    for (let c = 5; c < 2048; c++) rc.set(c, 1);
    // Cluster 2048 is the first one the existing block does not count: a new block takes it.
    assert.equal(rc.allocate(), 2049);
    assert.equal(rc.blockOffset(1), 2048 * cs);
    assert.equal(rc.get(2048), 1, "the new block counts itself");
    file.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
