import assert from "node:assert/strict";
Deno.env.set("VMESH_BENCH_SKIP_BLK", "1");
const { parsePhases, parseRandread } = await import("./virtio_blk_bench.ts");

Deno.test("virtio_blk_bench: dd reports are read by phase, randread lines by queue depth", () => {
  const dd = "phase=read\n64+0 records in\n64+0 records out\n" +
    "67108864 bytes (64.0MB) copied, 2.000000 seconds, 32.0MB/s\nphase=cached\n" +
    "dd: /dev/vda: I/O error\nphase=write\n67108864 bytes (64.0MB) copied, 0.5 seconds, 128MB/s\n";
  const m = parsePhases(dd);
  assert.equal(m.get("read"), 32);
  // A phase without its own report must not take the next phase's.
  assert.equal(m.has("cached"), false);
  assert.equal(m.get("write"), 128);
  const r = parseRandread(
    "randread qd=1 ios=837 seconds=2.003 iops=418\nrandread qd=32 ios=2455 seconds=2.197 iops=1117\n",
  );
  assert.deepEqual([...r], [[1, 418], [32, 1117]]);
});
