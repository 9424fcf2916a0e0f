/**
 * Page garbage collection in the memory service, on a real nats-server: the memory service as
 * a process over a directory store and `./vmesh snapshots --gc` as a user runs it; then the
 * JetStream object store. Pages named by a manifest — through its index pages, images and disk
 * layer maps — stay; an unnamed page stays while young, a dry run removes nothing, and after
 * `--rm` of a snapshot the pages only it named go while the ones another shares stay.
 */
import assert from "node:assert/strict";
import { type Bus, connect, memory, MEMORY_PREFIX, startEmbeddedNats } from "@vmesh/bus";
import { run } from "./snapshot_test_support.ts";
import { startService } from "./services_harness.ts";
import { JetStreamStore } from "../services/memory/object_store.ts";
import { servePages } from "../services/memory/page_service.ts";
import { sha256Hex } from "../services/cpu/snapshot/ram_pages.ts";

const t = { prefix: MEMORY_PREFIX };
const page = (fill: number, size = 4096) => new Uint8Array(size).fill(fill);
const bin = (hex: string) => Uint8Array.from(hex.match(/../g)!, (x) => parseInt(x, 16));
/** An index/map page listing `hashes` (undefined: a zero entry). */
const listing = (hashes: (string | undefined)[]) => {
  const p = new Uint8Array(hashes.length * 32);
  hashes.forEach((h, i) => h && p.set(bin(h), i * 32));
  return p;
};
const manifest = (o: Partial<memory.SnapshotManifest>): memory.SnapshotManifest => ({
  vm: "gc",
  pages: [],
  cpuState: new Uint8Array(),
  devices: [],
  pageSize: 4096,
  ramBase: 0x8000_0000,
  ...o,
});

/** The pages of the test and two manifests over them: m1 (RAM index, image), m2 (disk layer). */
function fixture() {
  const [r1, r2, img, chunk, orphan] = [page(1), page(2), page(3, 100), page(4, 65536), page(5)];
  const h = (b: Uint8Array) => sha256Hex(b);
  const idx1 = listing([h(r1), undefined, h(r2)]);
  const idx2 = listing([h(r1)]);
  const map = listing([undefined, h(chunk)]);
  const pages = [r1, r2, img, chunk, orphan, idx1, idx2, map];
  const m1 = manifest({
    pageIndex: [h(idx1)],
    images: [{ role: "bios", size: 100, pages: [h(img)] }],
  });
  const m2 = manifest({
    pageIndex: [h(idx2)],
    disks: [{
      device: "disk0",
      backend: "cow",
      image: "/x/base",
      overlay: "/x/point",
      frozen: true,
      baseLayer: { size: 131072, chunkSize: 65536, mapPages: [h(map)] },
    }],
  });
  return { pages, m1, m2, h, r1, r2, img, chunk, orphan, idx1, idx2, map };
}

async function held(bus: Bus, pages: Uint8Array[]): Promise<boolean[]> {
  const { missing } = await bus.request(t, memory.ops.has_pages, {
    hashes: pages.map(sha256Hex),
  });
  return pages.map((_, i) => !missing.includes(i));
}

Deno.test("./vmesh snapshots --gc over a directory store: named pages stay, unnamed ones go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-gc-" });
  const nats = await startEmbeddedNats();
  const bus = await connect({ url: nats.url, name: "test-gc", log: () => {} });
  const env = { NATS_URL: nats.url };
  const svc = await startService("memory", ["--store", `dir:${dir}/store`], nats.url);
  try {
    const f = fixture();
    for (const p of f.pages) {
      await bus.request(t, memory.ops.put_page, { hash: sha256Hex(p), data: p });
    }
    await bus.request(t, memory.ops.put_manifest, { name: "m1", manifest: f.m1 });
    await bus.request(t, memory.ops.put_manifest, { name: "m2", manifest: f.m2 });

    const young = await run(["snapshots", "--gc"], env);
    assert.equal(young.code, 0, young.stderr);
    assert.match(young.stdout, /^2 snapshots name 7 stored pages; removed 0 .*kept 1 young ones\n/);
    const dry = await run(["snapshots", "--gc", "--gc-min-age", "0", "--dry-run"], env);
    assert.match(dry.stdout, /would remove 1 unnamed pages .*kept 0 young/);
    assert.deepEqual(await held(bus, [f.orphan]), [true], "a dry run removes nothing");

    const gc = await run(["snapshots", "--gc", "--gc-min-age", "0"], env);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, /removed 1 unnamed pages \(0\.0 MiB\)/);
    assert.deepEqual(await held(bus, f.pages), [true, true, true, true, false, true, true, true]);

    const rm = await run(["snapshots", "--rm", "m1"], env);
    assert.equal(rm.code, 0, rm.stderr);
    const after = await run(["snapshots", "--gc", "--gc-min-age", "0"], env);
    assert.match(after.stdout, /^1 snapshots name 4 stored pages; removed 3 unnamed pages/);
    // m1's own: r2, the image page, idx1; r1 stays (m2's index names it), so do chunk and map.
    assert.deepEqual(
      await held(bus, [f.r1, f.r2, f.img, f.chunk, f.idx1, f.idx2, f.map]),
      [true, false, false, true, false, true, true],
    );

    // A manifest whose index page is gone is reported, and what it names otherwise kept.
    const lost = sha256Hex(page(9));
    await bus.request(t, memory.ops.put_manifest, {
      name: "m3",
      manifest: manifest({
        pageIndex: [lost],
        images: [{ role: "bios", size: 100, pages: [f.h(f.chunk)] }],
      }),
    });
    const broken = await run(["snapshots", "--gc", "--gc-min-age", "0"], env);
    assert.match(broken.stdout, /removed 0 .*; incomplete snapshots: m3\n/);
  } finally {
    await svc.stop();
    await bus.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collect_garbage over the JetStream object store", async () => {
  const nats = await startEmbeddedNats();
  const bus = await connect({ url: nats.url, name: "test-gc-js", log: () => {} });
  try {
    const store = await JetStreamStore.open(bus.nc, "gc-pages");
    const svc = await servePages(bus, store, { version: "0.0.0", maxPage: 65536 });
    const f = fixture();
    for (const p of f.pages) {
      await bus.request(t, memory.ops.put_page, { hash: sha256Hex(p), data: p });
    }
    await bus.request(t, memory.ops.put_manifest, { name: "m2", manifest: f.m2 });
    const keep = await bus.request(t, memory.ops.collect_garbage, {});
    assert.equal(keep.removed, 0);
    assert.equal(keep.keptYoung, 4);
    const r = await bus.request(t, memory.ops.collect_garbage, { noGrace: true });
    assert.deepEqual([r.manifests, r.referenced, r.removed], [1, 4, 4]);
    assert.deepEqual(
      await held(bus, f.pages),
      [true, false, false, true, false, false, true, true],
    );
    await svc.stop();
  } finally {
    await bus.close();
    await nats.stop();
  }
});
