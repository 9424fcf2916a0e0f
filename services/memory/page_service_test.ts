/**
 * The memory service's ops over the JetStream object store on a real nats-server (-js):
 * has_pages names the missing pages, list_manifests and delete_manifest see what
 * put_manifest stored, and manifests with bad index or image hashes are refused.
 */
import assert from "node:assert/strict";
import {
  type BusError,
  connect,
  memory,
  MEMORY_PREFIX,
  startEmbeddedNats,
  Status,
} from "@vmesh/bus";
import { JetStreamStore } from "./object_store.ts";
import { pageHash } from "./page_hash.ts";
import { servePages } from "./page_service.ts";

Deno.test("memory service on JetStream: has_pages, list_manifests, delete_manifest", async () => {
  const nats = await startEmbeddedNats();
  const bus = await connect({ url: nats.url, name: "memory-test", log: () => {} });
  try {
    const store = await JetStreamStore.open(bus.nc, "test-pages");
    const svc = await servePages(bus, store, { version: "0.0.0", maxPage: 65536 });
    const t = { prefix: MEMORY_PREFIX };
    const a = new Uint8Array(4096).fill(1);
    const b = new Uint8Array(4096).fill(2);
    const [ha, hb] = [await pageHash(a), await pageHash(b)];
    await bus.request(t, memory.ops.put_page, { hash: ha, data: a });
    const has = await bus.request(t, memory.ops.has_pages, { hashes: [ha, hb, ha] });
    assert.deepEqual(has.missing, [1]);

    const manifest: memory.SnapshotManifest = {
      vm: "vm1",
      pages: [],
      cpuState: new Uint8Array(),
      devices: [],
      pageSize: 4096,
      ramBase: 0x8000_0000,
      pageIndex: [ha],
    };
    await bus.request(t, memory.ops.put_manifest, { name: "s2", manifest });
    await bus.request(t, memory.ops.put_manifest, { name: "s1", manifest });
    assert.deepEqual((await bus.request(t, memory.ops.list_manifests, {})).names, ["s1", "s2"]);
    await bus.request(t, memory.ops.delete_manifest, { name: "s1" });
    assert.deepEqual((await bus.request(t, memory.ops.list_manifests, {})).names, ["s2"]);
    await assert.rejects(
      () => bus.request(t, memory.ops.delete_manifest, { name: "s1" }, { retries: 0 }),
      (e: BusError) => e.code === Status.NOT_FOUND,
    );
    await assert.rejects(
      () =>
        bus.request(t, memory.ops.put_manifest, {
          name: "bad",
          manifest: { ...manifest, pageIndex: ["xyz"] },
        }, { retries: 0 }),
      (e: BusError) => e.code === Status.INVALID_ARGUMENT,
    );
    await svc.stop();
  } finally {
    await bus.close();
    await nats.stop();
  }
});
