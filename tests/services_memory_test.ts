/**
 * The memory service as a real process, on the JetStream object store and on a
 * directory: pages by hash, dedup, manifests, typed errors, restart, discovery.
 */
import assert from "node:assert/strict";
import { Objm } from "@nats-io/obj";
import { BusError, memory, Status } from "@vmesh/bus";
import { pageHash } from "@vmesh/memory";
import {
  discover,
  MALFORMED,
  rawErrorRequest,
  type ServiceProcess,
  startService,
  startTestBus,
} from "./services_harness.ts";

function page(seed: number, size = 4096): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 5 + seed * 29 + (i >> 9)) & 0xff);
}

async function rejectsWith(p: Promise<unknown>, status: keyof typeof Status): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof BusError, `expected a BusError, got ${e}`);
    assert.equal(e.status, status, e.message);
    return true;
  });
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    n += e.isDirectory ? await countFiles(`${dir}/${e.name}`) : 1;
  }
  return n;
}

for (const backend of ["objects", "dir"] as const) {
  Deno.test(`memory service (${backend}): pages by hash, dedup, manifests`, async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "vmesh-memory-test-" });
    const tb = await startTestBus();
    const procs: ServiceProcess[] = [];
    const args = [
      "--store",
      backend === "objects" ? "objects" : `dir:${dir}`,
      "--max-request",
      "262144",
    ];
    try {
      procs.push(await startService("memory", args, tb.nats.url));
      const mem = tb.bus.client({ prefix: "vmesh.memory" }, memory.ops);
      const pages = [page(1), page(2), page(3)];
      const hashes = await Promise.all(pages.map(pageHash));
      const stored = async () => {
        if (backend === "dir") return await countFiles(`${dir}/pages`);
        const os = await new Objm(tb.bus.nc).open("vmesh-pages");
        return (await os.list()).length;
      };

      await t.step("put/get by hash; the same page is stored once", async () => {
        for (let i = 0; i < 3; i++) {
          const r = await mem.call("put_page", { hash: hashes[i], data: pages[i] });
          assert.equal(r.existed, false);
        }
        const again = await mem.call("put_page", { hash: hashes[0], data: pages[0] });
        assert.equal(again.existed, true);
        // Concurrent puts of one new page: one write, one `existed: false`.
        const fresh = page(4);
        const h4 = await pageHash(fresh);
        const both = await Promise.all([
          mem.call("put_page", { hash: h4, data: fresh }),
          mem.call("put_page", { hash: h4, data: fresh }),
        ]);
        assert.deepEqual(both.map((r) => r.existed).sort(), [false, true]);
        assert.equal(await stored(), 4);
        for (let i = 0; i < 3; i++) {
          assert.deepEqual((await mem.call("get_page", { hash: hashes[i] })).data, pages[i]);
        }
        await rejectsWith(mem.call("get_page", { hash: "0".repeat(64) }), "NOT_FOUND");
        await rejectsWith(
          mem.call("put_page", { hash: hashes[1], data: pages[0] }),
          "INVALID_ARGUMENT",
        );
        await rejectsWith(mem.call("get_page", { hash: "nope" }), "INVALID_ARGUMENT");
      });

      const manifest: memory.SnapshotManifest = {
        vm: "vm1",
        pages: [hashes[0], hashes[1], hashes[0], hashes[2]],
        cpuState: new Uint8Array([1, 2, 3, 4]),
        devices: [{ device: "uart0", kind: "ns16550", state: new Uint8Array([9, 8]), version: 1 }],
        pageSize: 4096,
        ramBase: 0x8000_0000,
        // Every field set, as a decoded manifest has them (proto3 defaults filled in).
        ramSize: 4 * 4096,
        pageIndex: [],
        images: [{ role: "kernel", size: 4097, pages: [hashes[0], hashes[1]] }],
        machine: '{"ramSize":16384}',
        mtime: 12345,
        createdUnixMs: 1_764_720_000_000,
        ramPagesStored: 3,
        disks: [{
          device: "disk0",
          backend: "cow",
          image: "/b",
          overlay: "/p",
          frozen: true,
          baseLayer: null,
          pointLayer: null,
        }],
        harts: [{ device: "hart0", kind: "rv64-hart", state: new Uint8Array([5]), version: 3 }],
      };

      await t.step("snapshot manifest round trip", async () => {
        await mem.call("put_manifest", { name: "snap-1", manifest });
        const got = await mem.call("get_manifest", { name: "snap-1" });
        assert.deepEqual(got.manifest, manifest);
        await rejectsWith(mem.call("get_manifest", { name: "snap-2" }), "NOT_FOUND");
        await rejectsWith(mem.call("put_manifest", { name: "../x", manifest }), "INVALID_ARGUMENT");
      });

      await t.step(
        "malformed, unknown op, oversized: typed errors, then still serving",
        async () => {
          assert.equal(
            (await rawErrorRequest(tb.bus, "vmesh.memory.put_page", MALFORMED)).header,
            "MALFORMED",
          );
          assert.equal(
            (await rawErrorRequest(tb.bus, "vmesh.memory.forget", new Uint8Array())).code,
            Status.UNKNOWN_OP,
          );
          const huge = await rawErrorRequest(
            tb.bus,
            "vmesh.memory.put_page",
            new Uint8Array(300_000),
          );
          assert.equal(huge.header, "TOO_LARGE");
          const big = page(5, 100 * 1024);
          await rejectsWith(
            mem.call("put_page", { hash: await pageHash(big), data: big }),
            "TOO_LARGE",
          );
          assert.deepEqual((await mem.call("get_page", { hash: hashes[2] })).data, pages[2]);
        },
      );

      await t.step("discovery lists the service with its eight endpoints", async () => {
        const [info] = await discover(tb.bus, "vmesh-memory", 1);
        assert.equal(info.version, "0.1.0");
        assert.deepEqual(
          info.endpoints.map((e) => e.subject).sort(),
          [
            "collect_garbage",
            "delete_manifest",
            "get_manifest",
            "get_page",
            "has_pages",
            "list_manifests",
            "put_manifest",
            "put_page",
          ].map((op) => `vmesh.memory.${op}`),
        );
      });

      await t.step("pages and manifests survive a restart of the service", async () => {
        assert.equal(await procs[0].stop("SIGTERM"), 0, procs[0].log.join("\n"));
        procs.push(await startService("memory", args, tb.nats.url));
        assert.deepEqual((await mem.call("get_page", { hash: hashes[1] })).data, pages[1]);
        assert.deepEqual((await mem.call("get_manifest", { name: "snap-1" })).manifest, manifest);
        assert.equal(
          (await mem.call("put_page", { hash: hashes[1], data: pages[1] })).existed,
          true,
        );
        assert.equal(await procs[1].stop("SIGTERM"), 0, procs[1].log.join("\n"));
      });
    } finally {
      for (const p of procs) await p.stop("SIGKILL");
      await tb.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
