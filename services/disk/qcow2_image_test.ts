import assert from "node:assert/strict";
import { BlockError } from "./block_backend.ts";
import { openImage } from "./image_open.ts";
import { createQcow2 } from "./qcow2_create.ts";
import { Qcow2FormatError } from "./qcow2_header.ts";
import type { Qcow2Image } from "./qcow2_image.ts";

const KiB = 1024;
const MiB = 1 << 20;

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-qcow2-unit-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A small deterministic PRNG (xorshift32), so a failing fuzz run can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 0xff);
}

/** Opens writable and asserts the open-time scan found exact refcounts (no leaks). */
async function reopenClean(path: string): Promise<Qcow2Image> {
  const disk = await openImage(path) as Qcow2Image;
  assert.equal(disk.leakedClusters, 0, `${path}: leaked clusters after flush`);
  return disk;
}

Deno.test("qcow2: a new image reads zeros; writes survive flush and reopen", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.qcow2`;
    await createQcow2(path, { size: 4 * MiB });
    let disk = await reopenClean(path);
    assert.deepEqual(disk.info(), {
      sizeBytes: 4 * MiB,
      sectorSize: 512,
      readOnly: false,
      discard: true,
    });
    assert.deepEqual(await disk.read(0, 64 * KiB), new Uint8Array(64 * KiB));
    const data = pattern(100 * KiB, 1);
    await disk.write(3 * MiB - 1024, data);
    await disk.flush();
    disk.close();
    disk = await reopenClean(path);
    assert.deepEqual(await disk.read(3 * MiB - 1024, data.length), data);
    assert.deepEqual(await disk.read(3 * MiB - 2048, 1024), new Uint8Array(1024));
    disk.close();
  });
});

Deno.test("qcow2: random writes, discards and reopens match a raw mirror", async (t) => {
  const cases = [
    { cs: 512, version: 3 as const, backed: false, size: 3 * MiB },
    { cs: 4096, version: 2 as const, backed: true, size: 3 * MiB },
    { cs: 65536, version: 3 as const, backed: true, size: 3 * MiB },
    // A disk that ends inside a cluster (qemu-img allows any multiple of 512).
    { cs: 65536, version: 3 as const, backed: true, size: 3 * MiB - 1536 },
  ];
  for (const { cs, version, backed, size } of cases) {
    const name = `cluster ${cs}, v${version}${backed ? ", raw backing file" : ""}, ${size} bytes`;
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const mirror = new Uint8Array(size);
        if (backed) {
          const base = pattern(2 * MiB + 4096, 9); // shorter than the disk: the rest reads zero
          await Deno.writeFile(`${dir}/base.raw`, base);
          mirror.set(base);
        }
        const path = `${dir}/f.qcow2`;
        await createQcow2(path, {
          size,
          clusterSize: cs,
          version,
          ...(backed ? { backingFile: "base.raw", backingFormat: "raw" } : {}),
        });
        const rand = rng(cs + version);
        let disk = await reopenClean(path);
        for (let op = 0; op < 300; op++) {
          const offset = Math.floor(rand() * (size / 512)) * 512;
          const length = Math.min(size - offset, (1 + Math.floor(rand() * 256)) * 512);
          const r = rand();
          if (r < 0.55) {
            const data = pattern(length, op);
            await disk.write(offset, data);
            mirror.set(data, offset);
          } else if (r < 0.7) {
            await disk.discard(offset, length);
            mirror.fill(0, offset, offset + length);
          } else if (r < 0.95) {
            assert.deepEqual(
              await disk.read(offset, length),
              mirror.subarray(offset, offset + length),
              `op ${op}: read ${offset}+${length}`,
            );
          } else {
            await disk.flush();
            disk.close();
            disk = await reopenClean(path);
          }
        }
        await disk.flush();
        disk.close();
        disk = await reopenClean(path);
        for (let at = 0; at < size; at += 512 * KiB) {
          const n = Math.min(512 * KiB, size - at);
          assert.deepEqual(
            await disk.read(at, n),
            mirror.subarray(at, at + n),
            `final ${at}`,
          );
        }
        disk.close();
      });
    });
  }
});

Deno.test("qcow2: 512-byte clusters fill the refcount table, which grows", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/g.qcow2`;
    await createQcow2(path, { size: 16 * MiB, clusterSize: 512 });
    let disk = await reopenClean(path);
    const table0 = disk.header.refcountTableOffset;
    const data = pattern(12 * MiB, 3); // 24576 clusters: past one table cluster's 16384
    for (let at = 0; at < data.length; at += 512 * KiB) {
      await disk.write(at, data.subarray(at, at + 512 * KiB));
    }
    await disk.flush();
    assert.notEqual(disk.header.refcountTableOffset, table0, "the refcount table moved");
    disk.close();
    disk = await reopenClean(path);
    assert.deepEqual(await disk.read(0, 512 * KiB), data.subarray(0, 512 * KiB));
    assert.deepEqual(await disk.read(12 * MiB - 4096, 4096), data.subarray(12 * MiB - 4096));
    disk.close();
  });
});

Deno.test("qcow2: a qcow2 backing chain reads through and stays untouched", async () => {
  await withDir(async (dir) => {
    await createQcow2(`${dir}/base.qcow2`, { size: 2 * MiB, clusterSize: 4096 });
    const base = await openImage(`${dir}/base.qcow2`);
    await base.write(0, pattern(2 * MiB, 5));
    await base.flush();
    base.close();
    const before = await Deno.readFile(`${dir}/base.qcow2`);
    await createQcow2(`${dir}/mid.qcow2`, {
      backingFile: "base.qcow2",
      backingFormat: "qcow2",
      backingSize: 2 * MiB,
    });
    await createQcow2(`${dir}/top.qcow2`, {
      backingFile: `${dir}/mid.qcow2`,
      backingSize: 2 * MiB, // no format: probed
    });
    const top = await openImage(`${dir}/top.qcow2`);
    const expected = pattern(2 * MiB, 5);
    await top.write(4096 + 100 * 512, pattern(512, 8)); // copy-on-write of a partial cluster
    expected.set(pattern(512, 8), 4096 + 100 * 512);
    await top.discard(64 * KiB, 64 * KiB); // must not fall through to the base
    expected.fill(0, 64 * KiB, 128 * KiB);
    assert.deepEqual(await top.read(0, 2 * MiB), expected);
    await top.flush();
    top.close();
    assert.deepEqual(await Deno.readFile(`${dir}/base.qcow2`), before);
    const again = await reopenClean(`${dir}/top.qcow2`);
    assert.deepEqual(await again.read(0, 2 * MiB), expected);
    again.close();
  });
});

/** Patches big-endian bytes of a file. */
async function patch(path: string, at: number, bytes: number[]): Promise<void> {
  const f = await Deno.open(path, { write: true });
  await f.seek(at, Deno.SeekMode.Start);
  await f.write(Uint8Array.from(bytes));
  f.close();
}

const be32 = (v: number) => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const be64 = (v: number) => [...be32(Math.floor(v / 0x1_0000_0000)), ...be32(v >>> 0)];

Deno.test("qcow2: bad and corrupt images are refused before anything is served", async (t) => {
  await withDir(async (dir) => {
    const cs = 65536;
    // Layout of createQcow2 for 4 MiB: header, refcount table, one refcount block, L1.
    const fresh = async (name: string) => {
      const path = `${dir}/${name}.qcow2`;
      await createQcow2(path, { size: 4 * MiB });
      const d = await openImage(path);
      await d.write(0, pattern(cs, 1)); // the L2 table at 4*cs, data at 5*cs
      await d.flush();
      d.close();
      return path;
    };
    const cases: Array<[string, (p: string) => Promise<void>, RegExp, boolean?]> = [
      ["bad magic", (p) => patch(p, 0, [0, 0, 0, 0]), /bad magic/],
      ["version 4", (p) => patch(p, 4, be32(4)), /unsupported qcow2 version 4/],
      ["cluster bits 30", (p) => patch(p, 20, be32(30)), /cluster_bits 30/],
      ["encrypted", (p) => patch(p, 32, be32(2)), /encrypted/],
      ["L1 too small", (p) => patch(p, 36, be32(0)), /L1 table has 0 entries/],
      ["L1 unaligned", (p) => patch(p, 40, be64(3 * cs + 8)), /not aligned/],
      ["L1 past the end", (p) => patch(p, 40, be64(1 << 30)), /truncated/],
      ["L1 over the refcount table", (p) => patch(p, 40, be64(cs)), /overlap/],
      ["unknown feature", (p) => patch(p, 72, be64(1 << 20)), /bit 20/],
      [
        "L2 table on a refcount block",
        (p) => patch(p, 3 * cs, [0x80, 0, 0, 0, ...be32(2 * cs)]),
        /overlaps a refcount block/,
      ],
      [
        "data on the L1 table",
        (p) => patch(p, 4 * cs, [0x80, 0, 0, 0, ...be32(3 * cs)]),
        /overlaps the L1 table/,
      ],
      ["data past the end", (p) => patch(p, 4 * cs, [0x80, 0, 0, 0x10, 0, 0, 0, 0]), /truncated/],
      [
        "reserved L2 bits",
        (p) => patch(p, 4 * cs + 4, be32(5 * cs + 2)),
        /reserved or contradictory bits/,
      ],
      ["truncated file", (p) => Deno.truncate(p, 5 * cs), /truncated/],
      ["refcount too low", (p) => patch(p, 2 * cs + 10, [0, 0]), /refcount 0 but 1 references/],
    ];
    for (const [name, damage, message] of cases) {
      await t.step(name, async () => {
        const path = await fresh(name.replaceAll(" ", "-"));
        await damage(path);
        await assert.rejects(openImage(path, { format: "qcow2" }), (e) => {
          assert.ok(e instanceof Qcow2FormatError, `${name}: ${e}`);
          assert.match(e.message, message);
          return true;
        });
      });
    }
    await t.step("extended L2 entries with clusters under 16 KiB", async () => {
      const path = `${dir}/ext-small.qcow2`;
      await createQcow2(path, { size: MiB, clusterSize: 4096 });
      await patch(path, 72, be64(16));
      await assert.rejects(openImage(path), /extended L2 entries need clusters of at least 16 KiB/);
    });
    await t.step("a dirty image (lazy refcounts) has its refcounts rebuilt", async () => {
      const path = await fresh("dirty");
      await patch(path, 2 * cs + 10, [0, 0]); // the data cluster's refcount was never written
      await patch(path, 72, be64(1));
      const d = await openImage(path) as Qcow2Image;
      assert.match(d.notes.join("\n"), /refcounts were rebuilt/);
      assert.equal(d.header.incompatibleFeatures, 0);
      d.close();
      const again = await reopenClean(path);
      assert.deepEqual(await again.read(0, cs), pattern(cs, 1));
      again.close();
    });
    await t.step("refcount too low and dirty images still open read-only", async () => {
      const path = await fresh("ro");
      await patch(path, 2 * cs + 10, [0, 0]);
      await patch(path, 72, be64(1));
      const d = await openImage(path, { readOnly: true });
      assert.deepEqual(await d.read(0, cs), pattern(cs, 1));
      await assert.rejects(async () => await d.write(0, new Uint8Array(512)), BlockError);
      d.close();
    });
  });
});
