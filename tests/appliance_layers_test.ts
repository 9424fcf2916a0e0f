/**
 * Appliance layers without a guest, fast: a snapshot manifest with a qcow2 point over a qcow2
 * base (made and written by `qemu-img`/`qemu-io`) and a read-only raw disk is put into a real
 * memory service process over a directory; `./vmesh export` writes it, and `./vmesh import
 * --no-run` into a memory service over JetStream objects rebuilds every layer byte-equal
 * (sparse where the file was), `qemu-img check` passes on the rebuilt qcow2 files and `qemu-img
 * compare` finds the rebuilt chain equal to the original; the imported manifest names the
 * rebuilt files. Then every member of the file, corrupted in turn, and cuts at several places
 * are refused by the reader with the reason.
 */
import assert from "node:assert/strict";
import { connect, memory, MEMORY_PREFIX, startEmbeddedNats } from "@vmesh/bus";
import { run } from "./snapshot_test_support.ts";
import { sha256File } from "./guest_vm.ts";
import { startService } from "./services_harness.ts";
import { sha256Hex } from "../services/cpu/snapshot/ram_pages.ts";
import { ApplianceError, readAppliance } from "../cli/appliance_read.ts";
import { BLOCK, TarReader } from "../cli/appliance_tar.ts";

const t = { prefix: MEMORY_PREFIX };

async function cmd(bin: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `${bin} ${args.join(" ")}: ${out}`);
  return out;
}

/** Byte offset and size of each member's data in the tar at `path`. */
async function members(path: string): Promise<Map<string, { at: number; size: number }>> {
  const f = await Deno.open(path);
  const out = new Map<string, { at: number; size: number }>();
  try {
    const r = new TarReader(f);
    for (let e = await r.next(); e; e = await r.next()) {
      out.set(e.name, { at: e.offset + BLOCK, size: e.size });
      for await (const _ of r.data(e.name)) { /* skip */ }
    }
  } finally {
    f.close();
  }
  return out;
}

Deno.test("appliance: qcow2 and raw layers round-trip through export/import; damage is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-appliance-layers-" });
  const nats = await startEmbeddedNats();
  const bus = await connect({ url: nats.url, name: "test-appliance-layers", log: () => {} });
  const env = { NATS_URL: nats.url };
  let svc = await startService("memory", ["--store", `dir:${dir}/storeA`], nats.url);
  try {
    // Disks: disk0 a qcow2 point over a qcow2 base, disk1 a read-only raw image.
    const [base, point, raw] = [`${dir}/base.qcow2`, `${dir}/point.qcow2`, `${dir}/ro.raw`];
    await cmd("qemu-img", "create", "-q", "-f", "qcow2", base, "8M");
    await cmd("qemu-io", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 5M 192k", base);
    await cmd("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, point);
    await cmd("qemu-io", "-c", "write -P 0x33 512k 1M", "-c", "write -P 0x22 7M 64k", point);
    const rawData = new Uint8Array(3 * 65536 + 1000);
    rawData.fill(7, 65536, 2 * 65536); // chunk 0 zero, chunk 1 data, chunk 2 zero, a short tail
    rawData.fill(9, 3 * 65536);
    await Deno.writeFile(raw, rawData);

    // A small machine's snapshot: 16 RAM pages (2 distinct non-zero), one kernel image.
    const ram = [new Uint8Array(4096).fill(1), new Uint8Array(4096).fill(2)];
    const index = new Uint8Array(16 * 32);
    const bin = (h: string) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16));
    index.set(bin(sha256Hex(ram[0])), 0);
    index.set(bin(sha256Hex(ram[1])), 5 * 32);
    index.set(bin(sha256Hex(ram[0])), 9 * 32);
    const kernel = new Uint8Array(5000).fill(0x5a);
    const kpages = [kernel.subarray(0, 4096), kernel.subarray(4096)];
    for (const p of [...ram, index, ...kpages]) {
      await bus.request(t, memory.ops.put_page, { hash: sha256Hex(p), data: p.slice() });
    }
    const manifest: memory.SnapshotManifest = {
      vm: "lay",
      pages: [],
      cpuState: new Uint8Array(),
      devices: [],
      harts: [{ device: "hart0", kind: "test", state: new Uint8Array([1, 2, 3]), version: 1 }],
      pageSize: 4096,
      ramBase: 0x8000_0000,
      ramSize: 16 * 4096,
      pageIndex: [sha256Hex(index)],
      images: [{ role: "kernel", size: kernel.length, pages: kpages.map(sha256Hex) }],
      machine: JSON.stringify({
        ramSize: 16 * 4096,
        disks: ["disk0", "disk1"],
        nics: [],
        rng: false,
      }),
      mtime: 12345,
      createdUnixMs: Date.now(),
      ramPagesStored: 2,
      disks: [
        { device: "disk0", backend: "qcow2", image: base, overlay: point, frozen: true },
        { device: "disk1", backend: "raw", image: raw, overlay: raw, frozen: true },
      ],
    };
    await bus.request(t, memory.ops.put_manifest, { name: "lay-1", manifest });

    const tar = `${dir}/lay.tar`;
    const exp = await run(["export", "lay-1", "-o", tar], env);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(
      exp.stdout,
      / 5 pages .*disk0 [\d.]+ MiB base \+ [\d.]+ MiB point, disk1 0\.1 MiB base;/,
    );

    // Import into another store (JetStream): every layer rebuilt byte-equal, the chain readable by QEMU's tools.
    await svc.stop();
    svc = await startService("memory", ["--store", "objects"], nats.url);
    const disks = `${dir}/disksB`;
    const imp = await run(
      ["import", tar, "--no-run", "--snapshot", "lay-2", "--disk-dir", disks],
      env,
    );
    assert.equal(imp.code, 0, imp.stderr);
    const [rb, rp, rr] = [
      `${disks}/lay-2.disk0.base`,
      `${disks}/lay-2.disk0.point.qcow2`,
      `${disks}/lay-2.disk1.base`,
    ];
    for (const [got, want] of [[rb, base], [rp, point], [rr, raw]]) {
      assert.equal(await sha256File(got), await sha256File(want), got);
    }
    assert.ok((await Deno.stat(rr)).blocks! * 512 < rawData.length, "zero chunks stay holes");
    await cmd("qemu-img", "check", "-q", rb);
    const chain = `${dir}/chain.qcow2`;
    await cmd("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", rb, chain);
    await Deno.copyFile(rp, `${dir}/rp.qcow2`);
    await cmd("qemu-img", "rebase", "-u", "-F", "qcow2", "-b", rb, `${dir}/rp.qcow2`);
    await cmd("qemu-img", "check", "-q", `${dir}/rp.qcow2`);
    await cmd("qemu-img", "compare", "-q", `${dir}/rp.qcow2`, point);
    const { manifest: m } = await bus.request(t, memory.ops.get_manifest, { name: "lay-2" });
    assert.deepEqual(
      m!.disks!.map((d) => [d.device, d.image, d.overlay]),
      [["disk0", rb, rp], ["disk1", rr, rr]],
    );
    const { missing } = await bus.request(t, memory.ops.has_pages, {
      hashes: [...ram, index, ...kpages].map(sha256Hex),
    });
    assert.deepEqual(missing, []);

    // Damage: a flipped byte in each member, a flipped header, cuts; the reader says why.
    const bytes = await Deno.readFile(tar);
    const at = await members(tar);
    const cases: [string, Uint8Array, RegExp][] = [];
    for (const [name, { at: o, size }] of at) {
      const b = bytes.slice();
      b[o + Math.floor(size / 2)] ^= 0x01;
      cases.push([
        `flip in ${name}`,
        b,
        name === "SHA256SUMS"
          ? /does not match its SHA-256|not in SHA256SUMS|bad line|is missing/
          : /does not match its SHA-256/,
      ]);
    }
    const h = bytes.slice();
    h[at.get("pages.bin")!.at - BLOCK + 3] ^= 0x01;
    cases.push(["flip in a header", h, /header at byte \d+ is corrupt/]);
    const sums = at.get("SHA256SUMS")!;
    for (
      const [what, cut, why] of [
        ["cut in pages.bin", at.get("pages.bin")!.at + 100, /truncated at byte/],
        ["cut before SHA256SUMS", sums.at - BLOCK, /truncated at byte .* member header/],
        [
          "cut before the end marker",
          sums.at + Math.ceil(sums.size / BLOCK) * BLOCK,
          /truncated at byte .* member header/,
        ],
      ] as const
    ) cases.push([what, bytes.subarray(0, cut), why]);
    for (const [what, data, why] of cases) {
      const bad = `${dir}/bad.tar`;
      await Deno.writeFile(bad, data);
      const staging = await Deno.makeTempDir({ dir });
      await assert.rejects(readAppliance(bad, staging), (e) => {
        assert.ok(e instanceof ApplianceError, `${what}: ${e}`);
        assert.match(e.message, why, what);
        return true;
      });
    }
    console.log(`${cases.length} damaged copies refused: ${cases.map((c) => c[0]).join(", ")}`);
  } finally {
    await svc.stop();
    await bus.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
