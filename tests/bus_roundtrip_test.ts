// Bus round trip between two processes: typed request/reply and typed pub/sub.
import assert from "node:assert/strict";
import {
  block,
  BusError,
  connect,
  consoleMsgs,
  consoleSubject,
  startEmbeddedNats,
  Status,
} from "../bus/mod.ts";
import { ServiceProcess } from "../bus/testdata/service_process.ts";

const ECHO = new URL("../bus/testdata/echo_service.ts", import.meta.url);

Deno.test("bus: request/reply and pub/sub between two processes", async () => {
  const nats = await startEmbeddedNats();
  const svc = ServiceProcess.start(ECHO, { NATS_URL: nats.url, VM: "vmA", DEVICE: "disk1" });
  const bus = await connect({ url: nats.url, name: "roundtrip-client" });
  try {
    await svc.waitFor((e) => e.event === "ready");
    const disk = bus.client({ vm: "vmA", device: "disk1" }, block.ops, { timeoutMs: 5000 });
    assert.equal(disk.prefix, "vmesh.vmA.disk1");

    const info = await disk.call("info", {});
    assert.deepEqual(info, { sizeBytes: 65536, sectorSize: 512, readOnly: false, discard: true });

    const payload = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
    const w = await disk.call("write", { offset: 8192, data: payload, fua: true });
    assert.equal(w.written, 4096);
    assert.equal(w.status, Status.OK);

    const r = await disk.call("read", { offset: 8192, length: 4096 });
    assert.ok(r.data instanceof Uint8Array);
    assert.deepEqual([...r.data], [...payload]);

    await disk.call("discard", { offset: 8192, length: 4096 });
    const z = await disk.call("read", { offset: 8192, length: 16 });
    assert.deepEqual([...z.data], new Array(16).fill(0));

    // A handler's BusError reaches the caller with its code.
    const err = await disk.call("read", { offset: 65536, length: 1 }).catch((e) => e);
    assert.ok(err instanceof BusError);
    assert.equal(err.code, Status.OUT_OF_RANGE);

    // Pub/sub: the service echoes console.in batches to console.out.
    const got: consoleMsgs.ByteBatch[] = [];
    let wake = () => {};
    const sub = bus.subscribe(consoleMsgs.byteBatch, consoleSubject("vmA", "out"), (b) => {
      got.push(b);
      wake();
    });
    await bus.flush();
    const text = new TextEncoder().encode("hello, guest\n");
    bus.publish(consoleMsgs.byteBatch, consoleSubject("vmA", "in"), { seq: 42, data: text });
    while (got.length === 0) await new Promise<void>((r) => wake = r);
    sub.unsubscribe();
    assert.equal(got[0].seq, 42);
    assert.equal(new TextDecoder().decode(got[0].data), "hello, guest\n");
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
  }
});
