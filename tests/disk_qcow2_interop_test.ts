/**
 * qcow2 interoperability with the real qemu-img/qemu-io (qemu-utils) through the real disk
 * service process on a real nats-server: images QEMU made read the same as QEMU reads them,
 * images vmesh wrote pass `qemu-img check` and QEMU reads them the same, a random workload
 * against a raw mirror, qcow2 overlays (clones) over one base, corrupt images refused.
 */
import assert from "node:assert/strict";
import { block, BusError, type DeviceClient } from "@vmesh/bus";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

const KiB = 1024;
const MiB = 1 << 20;
const CHUNK = 512 * KiB;

/** Runs a QEMU tool; throws with its output unless it exits with `expect` (default 0). */
async function qemu(tool: string, args: string[], expect = 0): Promise<string> {
  const out = await new Deno.Command(tool, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (out.code !== expect) {
    throw new Error(`${tool} ${args.join(" ")} exited ${out.code}:\n${text}`);
  }
  return text;
}

/** What QEMU sees: the image converted to raw by qemu-img. */
async function qemuRaw(image: string, dir: string): Promise<Uint8Array> {
  const out = `${dir}/qemu-view-${crypto.randomUUID()}.raw`;
  await qemu("qemu-img", ["convert", "-U", "-O", "raw", image, out]);
  const data = await Deno.readFile(out);
  await Deno.remove(out);
  return data;
}

/** `qemu-img check` must find no errors and no leaks (exit 0). */
async function assertCheckClean(image: string): Promise<void> {
  const text = await qemu("qemu-img", ["check", "-U", image]);
  assert.match(text, /No errors were found on the image/, text);
}

type Disk = DeviceClient<typeof block.ops>;

/** What the first bytes of `path` probe as, the way the disk service probes. */
async function probeAfter(path: string): Promise<"raw" | "qcow2"> {
  const head = (await Deno.readFile(path)).subarray(0, 4);
  return head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb
    ? "qcow2"
    : "raw";
}

async function readAll(disk: Disk, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += CHUNK) {
    const r = await disk.call("read", { offset: at, length: Math.min(CHUNK, size - at) });
    out.set(r.data, at);
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + (i >> 10)) & 0xff);
}

/** Text-like bytes that deflate well, so `qemu-img convert -c` really compresses clusters. */
function compressible(n: number): Uint8Array {
  const line = new TextEncoder().encode("vmesh qcow2 compressed cluster line ");
  return Uint8Array.from(
    { length: n },
    (_, i) => (i % 4096 < 3000 ? line[i % line.length] : i & 0xff),
  );
}

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

Deno.test("qcow2 images interoperate with qemu-img through the disk service", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-qcow2-interop-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  let n = 0;
  /** Serves `image` (extra flags after it) and returns a client of it. */
  const serve = async (image: string, ...extra: string[]) => {
    const device = `q${n++}`;
    const p = await startService(
      "disk",
      ["--vm", "qt", "--device", device, "--image", image, ...extra],
      tb.nats.url,
    );
    procs.push(p);
    const client = tb.bus.client({ vm: "qt", device }, block.ops, { timeoutMs: 20_000 });
    return { p, client };
  };
  try {
    // Images made by QEMU's tools.
    const base = `${dir}/base.raw`;
    const baseData = pattern(6 * MiB, 1);
    await Deno.writeFile(base, baseData);
    await qemu("qemu-img", ["create", "-f", "qcow2", `${dir}/empty.qcow2`, "8M"]);
    await qemu("qemu-io", [
      "-c",
      "write -P 0x5a 100k 300k",
      "-c",
      "write -P 0x11 5M 70k",
      "-c",
      "write -z 5100k 4k",
      `${dir}/empty.qcow2`,
    ]);
    await qemu("qemu-img", ["convert", "-O", "qcow2", base, `${dir}/converted.qcow2`]);
    await Deno.writeFile(`${dir}/text.raw`, compressible(3 * MiB));
    await qemu("qemu-img", [
      "convert",
      "-c",
      "-O",
      "qcow2",
      `${dir}/text.raw`,
      `${dir}/comp.qcow2`,
    ]);
    await qemu("qemu-img", [
      "convert",
      "-c",
      "-O",
      "qcow2",
      "-o",
      "compression_type=zstd",
      `${dir}/text.raw`,
      `${dir}/zstd.qcow2`,
    ]);
    for (const name of ["comp", "zstd"]) {
      const compInfo = await qemu("qemu-img", ["check", `${dir}/${name}.qcow2`]);
      assert.match(compInfo, /[1-9][\d.]*% compressed clusters/, `${name} really is compressed`);
    }
    await qemu("qemu-img", [
      "create",
      "-f",
      "qcow2",
      "-b",
      "converted.qcow2",
      "-F",
      "qcow2",
      `${dir}/overlay.qcow2`,
      "8M",
    ]);
    await qemu("qemu-io", ["-c", "write -P 0x77 1M 128k", `${dir}/overlay.qcow2`]);
    await qemu("qemu-img", [
      "create",
      "-f",
      "qcow2",
      "-o",
      "compat=0.10,cluster_size=4096",
      "-b",
      base,
      "-F",
      "raw",
      `${dir}/v2.qcow2`,
    ]);
    await qemu("qemu-io", ["-c", "write -P 0x33 12k 20k", `${dir}/v2.qcow2`]);

    await qemu("qemu-img", [
      "create",
      "-f",
      "qcow2",
      "-o",
      "extended_l2=on",
      "-b",
      base,
      "-F",
      "raw",
      `${dir}/ext.qcow2`,
      "8M",
    ]);
    await qemu("qemu-io", [
      "-c",
      "write -P 0x61 4k 4k",
      "-c",
      "write -z 20k 8k",
      "-c",
      "write -c -P 0x62 1M 64k",
      "-c",
      "discard 2M 64k",
      `${dir}/ext.qcow2`,
    ]);

    await t.step("images made by qemu-img read as QEMU reads them", async () => {
      for (const name of ["empty", "converted", "comp", "zstd", "overlay", "v2", "ext"]) {
        const image = `${dir}/${name}.qcow2`;
        const want = await qemuRaw(image, dir);
        const { p, client } = await serve(image, "--read-only");
        assert.match(p.ready, / qcow2 /, p.ready);
        const info = await client.call("info", {});
        assert.equal(info.sizeBytes, want.length, name);
        assert.ok((await readAll(client, want.length)).every((b, i) => b === want[i]), name);
      }
    });

    await t.step("images vmesh writes pass qemu-img check and read the same in QEMU", async () => {
      for (const name of ["empty", "comp", "zstd", "overlay", "v2", "ext"]) {
        const image = `${dir}/${name}.qcow2`;
        const mirror = await qemuRaw(image, dir);
        const { p, client } = await serve(image);
        const writes: Array<[number, Uint8Array]> = [
          [0, pattern(4 * KiB, 2)],
          [1 * MiB + 512, pattern(200 * KiB, 3)], // partial clusters at both ends: copy-on-write
          [mirror.length - CHUNK, pattern(CHUNK, 4)],
        ];
        for (const [offset, data] of writes) {
          assert.equal((await client.call("write", { offset, data })).written, data.length);
          mirror.set(data, offset);
        }
        await client.call("discard", { offset: 2 * MiB, length: 256 * KiB });
        mirror.fill(0, 2 * MiB, 2 * MiB + 256 * KiB);
        await client.call("flush", {});
        // Consistent on disk after every flush, while the service still has it open.
        await assertCheckClean(image);
        assert.deepEqual(await qemuRaw(image, dir), mirror, `${name}: QEMU's view after flush`);
        assert.equal(await p.stop(), 0);
        await assertCheckClean(image);
        assert.deepEqual(await qemuRaw(image, dir), mirror, `${name}: QEMU's view after stop`);
      }
      // qemu-io checks a pattern vmesh wrote, from its own reader.
      await qemu("qemu-io", ["-r", "-c", "read -P 0 2M 256k", `${dir}/overlay.qcow2`]);
      const text = await qemu("qemu-io", [
        "-r",
        "-c",
        "read -P 0x77 1M 512",
        `${dir}/overlay.qcow2`,
      ]);
      assert.doesNotMatch(text, /Pattern verification failed/);
    });

    for (const opts of ["cluster_size=4096", "extended_l2=on,cluster_size=65536"]) {
      await t.step(
        `random writes, discards and flushes against a raw mirror (${opts})`,
        async () => {
          const image = `${dir}/fuzz-${opts.replaceAll(/[=,]/g, "-")}.qcow2`;
          await qemu("qemu-img", [
            "create",
            "-f",
            "qcow2",
            "-o",
            opts,
            "-b",
            base,
            "-F",
            "raw",
            image,
            "8M",
          ]);
          // QEMU allocates some subclusters (and clusters) first, so vmesh meets its layout.
          await qemu("qemu-io", ["-c", "write -P 9 4k 4k", "-c", "write -P 8 300k 9k", image]);
          const size = 8 * MiB;
          const mirror = await qemuRaw(image, dir);
          const { p, client } = await serve(image);
          const rand = rng(0x9e3779b9);
          for (let op = 0; op < 400; op++) {
            const offset = Math.floor(rand() * (size / 512)) * 512;
            const length = Math.min(size - offset, (1 + Math.floor(rand() * 300)) * 512);
            const r = rand();
            if (r < 0.5) {
              const data = pattern(length, op + 7);
              await client.call("write", { offset, data, fua: r < 0.05 });
              mirror.set(data, offset);
            } else if (r < 0.65) {
              await client.call("discard", { offset, length });
              mirror.fill(0, offset, offset + length);
            } else if (r < 0.97) {
              const got = (await client.call("read", { offset, length })).data;
              assert.ok(
                got.every((b, i) => b === mirror[offset + i]),
                `op ${op}: read ${offset}+${length} differs from the mirror`,
              );
            } else {
              await client.call("flush", {});
              await assertCheckClean(image);
            }
          }
          await client.call("flush", {});
          assert.ok((await readAll(client, size)).every((b, i) => b === mirror[i]), "vmesh's view");
          assert.equal(await p.stop(), 0);
          await assertCheckClean(image);
          assert.deepEqual(await qemuRaw(image, dir), mirror, "QEMU's view of the fuzzed image");
          assert.deepEqual(await Deno.readFile(base), baseData, "the backing file is untouched");
        },
      );
    }

    await t.step("refcount widths, dirty images, internal snapshots, bitmaps", async () => {
      for (const bits of [1, 8, 64]) {
        const image = `${dir}/rb${bits}.qcow2`;
        await qemu("qemu-img", [
          "create",
          "-f",
          "qcow2",
          "-o",
          `refcount_bits=${bits},cluster_size=4096`,
          image,
          "4M",
        ]);
        await qemu("qemu-io", ["-c", "write -P 0x21 0 100k", image]);
        const mirror = await qemuRaw(image, dir);
        const { p, client } = await serve(image);
        await client.call("write", { offset: 64 * KiB + 512, data: pattern(300 * KiB, bits) });
        mirror.set(pattern(300 * KiB, bits), 64 * KiB + 512);
        await client.call("discard", { offset: 0, length: 8 * KiB });
        mirror.fill(0, 0, 8 * KiB);
        assert.equal(await p.stop(), 0);
        await assertCheckClean(image);
        assert.deepEqual(await qemuRaw(image, dir), mirror, `refcount_bits=${bits}`);
      }
      // QEMU killed with lazy refcounts: the dirty image is rebuilt on open, as QEMU does.
      const lazy = `${dir}/lazy.qcow2`;
      await qemu("qemu-img", ["create", "-f", "qcow2", "-o", "lazy_refcounts=on", lazy, "4M"]);
      const killed = await new Deno.Command("qemu-io", {
        args: ["-c", "write -P 0x44 0 300k", "-c", "sigraise 9", lazy],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(killed.signal, "SIGKILL");
      assert.match(await qemu("qemu-img", ["check", lazy], 2), /ERROR cluster/, "left dirty");
      const repaired = await serve(lazy);
      assert.ok(
        repaired.p.log.some((l) => /refcounts were rebuilt/.test(l)),
        repaired.p.log.join(),
      );
      assert.equal(await repaired.p.stop(), 0);
      await assertCheckClean(lazy);
      await qemu("qemu-io", ["-r", "-c", "read -P 0x44 0 300k", lazy]);
      // Internal snapshots (qemu-img snapshot, libvirt's internal snapshots) stay intact.
      const snap = `${dir}/snap.qcow2`;
      await qemu("qemu-img", ["create", "-f", "qcow2", "-o", "cluster_size=4096", snap, "4M"]);
      await qemu("qemu-io", ["-c", "write -P 1 0 1M", "-c", "write -c -P 7 2M 64k", snap]);
      const atSnapshot = await qemuRaw(snap, dir);
      await qemu("qemu-img", ["snapshot", "-c", "s1", snap]);
      await qemu("qemu-io", ["-c", "write -P 2 0 64k", snap]);
      const active = await qemuRaw(snap, dir);
      const s = await serve(snap);
      assert.deepEqual(await readAll(s.client, active.length), active, "the active layer");
      const edits: Array<[number, Uint8Array]> = [
        [4096, pattern(8192, 1)], // in a cluster QEMU already copied after the snapshot
        [512 * KiB + 512, pattern(300 * KiB, 2)], // clusters shared with the snapshot
        [2 * MiB + 4096, pattern(4096, 3)], // a compressed cluster shared with the snapshot
      ];
      for (const [offset, data] of edits) {
        await s.client.call("write", { offset, data });
        active.set(data, offset);
      }
      await s.client.call("discard", { offset: 3 * MiB, length: 64 * KiB });
      active.fill(0, 3 * MiB, 3 * MiB + 64 * KiB);
      assert.equal(await s.p.stop(), 0);
      await assertCheckClean(snap);
      assert.deepEqual(await qemuRaw(snap, dir), active, "QEMU's view of the active layer");
      const applied = `${dir}/snap-applied.qcow2`;
      await Deno.copyFile(snap, applied);
      await qemu("qemu-img", ["snapshot", "-a", "s1", applied]);
      assert.deepEqual(await qemuRaw(applied, dir), atSnapshot, "the snapshot is untouched");
      await qemu("qemu-img", ["snapshot", "-d", "s1", snap]);
      await assertCheckClean(snap);
      const bm = `${dir}/bitmap.qcow2`;
      await qemu("qemu-img", ["create", "-f", "qcow2", bm, "4M"]);
      await qemu("qemu-img", ["bitmap", "--add", bm, "b0"]);
      const withBitmap = await serve(bm);
      assert.ok(
        withBitmap.p.log.some((l) =>
          /persistent bitmaps in this image are now inconsistent/.test(l)
        ),
        withBitmap.p.log.join("\n"),
      );
      await withBitmap.client.call("write", { offset: 0, data: pattern(4096, 1) });
      assert.equal(await withBitmap.p.stop(), 0);
      const info = await qemu("qemu-img", ["check", bm], 3); // the bitmap's clusters leaked
      assert.match(info, /leaked clusters/, info);
      assert.doesNotMatch(info, /ERROR/, info);
    });

    await t.step("a SIGKILLed service leaves no corruption; flushed data is intact", async () => {
      const image = `${dir}/crash.qcow2`;
      await qemu("qemu-img", [
        "create",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=4096",
        "-b",
        base,
        "-F",
        "raw",
        image,
        "8M",
      ]);
      const size = 8 * MiB;
      const mirror = new Uint8Array(size);
      mirror.set(baseData);
      const { p, client } = await serve(image);
      const rand = rng(0x2545f491);
      for (let op = 0; op < 120; op++) {
        const offset = Math.floor(rand() * (size / 512)) * 512;
        const length = Math.min(size - offset, (1 + Math.floor(rand() * 200)) * 512);
        if (rand() < 0.8) {
          const data = pattern(length, op + 100);
          await client.call("write", { offset, data });
          mirror.set(data, offset);
        } else {
          await client.call("discard", { offset, length });
          mirror.fill(0, offset, offset + length);
        }
      }
      await client.call("flush", {});
      // Unflushed writes into distinct 64 KiB slots, some still in flight at the kill.
      const SLOT = 64 * KiB;
      const slots = [...Array(size / SLOT).keys()].sort(() => rand() - 0.5).slice(0, 40);
      const late = slots.map((slot, i) => {
        const offset = slot * SLOT + Math.floor(rand() * 64) * 512;
        const data = pattern(Math.min(SLOT - (offset - slot * SLOT), 16 * KiB + i * 512), i + 500);
        return { offset, data };
      });
      const inFlight = late.map(({ offset, data }) =>
        client.call("write", { offset, data }, { retries: 0, timeoutMs: 5000 }).catch(() => {})
      );
      await Promise.race([
        Promise.all(inFlight.slice(0, 15)),
        new Promise((r) => setTimeout(r, 3000)),
      ]);
      await p.stop("SIGKILL");
      await Promise.all(inFlight);
      const check = await new Deno.Command("qemu-img", { args: ["check", image], stdout: "piped" })
        .output();
      const report = new TextDecoder().decode(check.stdout);
      assert.ok(
        check.code === 0 || check.code === 3,
        `qemu-img check exited ${check.code}:\n${report}`,
      );
      assert.doesNotMatch(report, /ERROR|corruptions/, report);
      const view = await qemuRaw(image, dir);
      const touched = new Uint8Array(size);
      for (const { offset, data } of late) touched.fill(1, offset, offset + data.length);
      for (let at = 0; at < size; at += 512) {
        const got = view.subarray(at, at + 512);
        const old = mirror.subarray(at, at + 512);
        if (!touched[at]) {
          assert.ok(got.every((b, i) => b === old[i]), `flushed sector ${at} changed`);
          continue;
        }
        const w = late.find(({ offset, data }) => at >= offset && at < offset + data.length)!;
        const fresh = w.data.subarray(at - w.offset, at - w.offset + 512);
        assert.ok(
          got.every((b, i) => b === old[i]) || got.every((b, i) => b === fresh[i]),
          `sector ${at} is neither its flushed nor its new content`,
        );
      }
      // The image opens again for writing (refcounts never below references). Clusters whose
      // refcount was written back before the kill but whose L2 entry was not stay leaked: harmless
      // (`qemu-img check -r leaks` reclaims them), and a write in flight at a kill may leave some
      // now that every allocating write has its metadata written back before it is answered.
      const again = await serve(image);
      assert.ok((await readAll(again.client, size)).every((b, i) => b === view[i]));
      assert.equal(await again.p.stop(), 0);
      const after = await new Deno.Command("qemu-img", {
        args: ["check", "-U", image],
        stdout: "piped",
      })
        .output();
      const afterReport = new TextDecoder().decode(after.stdout);
      assert.ok(
        after.code === 0 || after.code === 3,
        `qemu-img check exited ${after.code}:\n${afterReport}`,
      );
      assert.doesNotMatch(afterReport, /ERROR|corruptions/, afterReport);
    });

    await t.step("clones: qcow2 overlays over one base, made by the service", async () => {
      const baseQ = `${dir}/converted.qcow2`;
      const before = await Deno.readFile(baseQ);
      const a = await serve(baseQ, "--overlay", `${dir}/cloneA.qcow2`);
      const b = await serve(baseQ, "--overlay", `${dir}/cloneB.qcow2`, "--overlay-format", "qcow2");
      await a.client.call("write", { offset: 0, data: pattern(64 * KiB, 5) });
      await b.client.call("write", { offset: 32 * KiB, data: pattern(64 * KiB, 6) });
      const ra = (await a.client.call("read", { offset: 0, length: 128 * KiB })).data;
      const rb = (await b.client.call("read", { offset: 0, length: 128 * KiB })).data;
      const wantA = baseData.slice(0, 128 * KiB);
      wantA.set(pattern(64 * KiB, 5), 0);
      const wantB = baseData.slice(0, 128 * KiB);
      wantB.set(pattern(64 * KiB, 6), 32 * KiB);
      assert.deepEqual(ra, wantA);
      assert.deepEqual(rb, wantB);
      assert.equal(await a.p.stop(), 0);
      assert.equal(await b.p.stop(), 0);
      for (const clone of ["cloneA", "cloneB"]) {
        const image = `${dir}/${clone}.qcow2`;
        const info = await qemu("qemu-img", ["info", image]);
        assert.match(info, new RegExp(`backing file: ${baseQ}`), info);
        assert.match(info, /backing file format: qcow2/, info);
        await assertCheckClean(image);
      }
      assert.deepEqual((await qemuRaw(`${dir}/cloneA.qcow2`, dir)).subarray(0, 128 * KiB), wantA);
      assert.deepEqual((await qemuRaw(`${dir}/cloneB.qcow2`, dir)).subarray(0, 128 * KiB), wantB);
      assert.deepEqual(await Deno.readFile(baseQ), before, "the base is untouched");
    });

    await t.step("a probed raw disk cannot be turned into qcow2 by its guest", async () => {
      const raw = `${dir}/guest.raw`;
      await Deno.writeFile(raw, new Uint8Array(MiB));
      const evil = await Deno.readFile(`${dir}/overlay.qcow2`).then((b) => b.slice(0, 4096));
      const probed = await serve(raw);
      await assert.rejects(
        probed.client.call("write", { offset: 0, data: evil }),
        (e) => {
          assert.ok(e instanceof BusError, String(e));
          assert.equal(e.status, "IO_ERROR");
          assert.match(e.message, /would make a probed raw image look like qcow2/);
          return true;
        },
      );
      assert.equal(await probeAfter(raw), "raw");
      const given = await serve(raw, "--format", "raw");
      await given.client.call("write", { offset: 0, data: evil });
      assert.equal(await probeAfter(raw), "qcow2", "--format raw: the guest's bytes are data");
    });

    await t.step(
      "a truncated or corrupt image is refused before the service is ready",
      async () => {
        const bad = `${dir}/bad.qcow2`;
        await Deno.copyFile(`${dir}/converted.qcow2`, bad);
        await Deno.truncate(bad, (await Deno.stat(bad)).size - 256 * KiB);
        await assert.rejects(serve(bad), (e) => {
          assert.match((e as Error).message, /exited with 1 before ready/);
          assert.match((e as Error).message, /cannot open .*bad\.qcow2: .*truncated/);
          return true;
        });
        const loop = `${dir}/loop.qcow2`;
        await qemu("qemu-img", [
          "create",
          "-f",
          "qcow2",
          "-b",
          "converted.qcow2",
          "-F",
          "qcow2",
          loop,
        ]);
        // Point the image at itself: a backing chain that never ends.
        const img = await Deno.readFile(loop);
        const name = new TextEncoder().encode("converted.qcow2");
        const at = img.findIndex((_, i) => name.every((c, j) => img[i + j] === c));
        img.set(new TextEncoder().encode("loop.qcow2\0\0\0\0\0"), at);
        const view = new DataView(img.buffer);
        view.setUint32(16, "loop.qcow2".length);
        await Deno.writeFile(loop, img);
        await assert.rejects(serve(loop), /backing chain loops/);
      },
    );
  } finally {
    for (const p of procs) await p.stop();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
