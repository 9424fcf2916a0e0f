// A retried write is applied once: the replay cache answers a repeated request id.
import assert from "node:assert/strict";
import { createInbox, headers } from "@nats-io/transport-node";
import { block, connect, REQUEST_ID_HEADER, startEmbeddedNats } from "../bus/mod.ts";
import { ServiceProcess } from "../bus/testdata/service_process.ts";

const ECHO = new URL("../bus/testdata/echo_service.ts", import.meta.url);

Deno.test("bus: a write whose reply was lost is applied once when retried", async () => {
  const nats = await startEmbeddedNats();
  const svc = ServiceProcess.start(ECHO, { NATS_URL: nats.url, VM: "vmR", DEVICE: "disk0" });
  const bus = await connect({ url: nats.url, name: "retry-client" });
  try {
    await svc.waitFor((e) => e.event === "ready");
    // First attempt: the reply goes to an inbox nobody listens on, i.e. it is lost.
    const id = "write-lost-reply-1";
    const h = headers();
    h.set(REQUEST_ID_HEADER, id);
    const data = new Uint8Array(512).fill(0xab);
    bus.nc.publish(
      "vmesh.vmR.disk0.write",
      block.ops.write.request.encode({ requestId: id, offset: 1024, data }),
      { headers: h, reply: createInbox() },
    );
    await svc.waitFor((e) => e.event === "applied" && e.requestId === id);

    // The caller retries with the same id and gets the first outcome.
    const disk = bus.client({ vm: "vmR", device: "disk0" }, block.ops);
    const again = await disk.call("write", { requestId: id, offset: 1024, data });
    assert.equal(again.written, 512);
    const third = await disk.call("write", { offset: 1024, data }, { requestId: id });
    assert.equal(third.written, 512);

    // A different id is a different write.
    await disk.call("write", { offset: 0, data: new Uint8Array(1) });
    await svc.waitFor((e) => e.event === "applied" && e.total === 2);
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
  }
  const applied = svc.events.filter((e) => e.event === "applied");
  assert.equal(applied.filter((e) => e.requestId === "write-lost-reply-1").length, 1);
  assert.equal(applied.length, 2);
});

Deno.test("bus: a write retried while the first attempt still runs is applied once", async () => {
  const nats = await startEmbeddedNats();
  // The first write's handler outlasts the client's per-attempt timeout, so the
  // client times out and re-sends the same id while the write is in flight.
  const svc = ServiceProcess.start(ECHO, {
    NATS_URL: nats.url,
    VM: "vmS",
    DEVICE: "disk0",
    SLOW_FIRST_WRITE_MS: "600",
  });
  const bus = await connect({ url: nats.url, name: "retry-client-2" });
  try {
    await svc.waitFor((e) => e.event === "ready");
    const disk = bus.client({ vm: "vmS", device: "disk0" }, block.ops);
    const r = await disk.call(
      "write",
      { offset: 0, data: new Uint8Array(64).fill(1) },
      { timeoutMs: 150, retries: 20, retryDelayMs: 10 },
    );
    assert.equal(r.written, 64);
    // Let the first attempt's handler finish, so a second application would show.
    await svc.waitFor((e) => e.event === "slow-write-done");
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
  }
  const applied = svc.events.filter((e) => e.event === "applied");
  assert.equal(applied.length, 1);
});
