// The error path: malformed payload, unknown op and oversized message each get a typed
// error reply and exactly one log line, and the service keeps serving.
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import {
  block,
  BusError,
  common,
  connect,
  ERROR_HEADER,
  REQUEST_ID_HEADER,
  startEmbeddedNats,
  Status,
} from "../bus/mod.ts";
import { ServiceProcess } from "../bus/testdata/service_process.ts";

const ECHO = new URL("../bus/testdata/echo_service.ts", import.meta.url);

Deno.test("bus: bad requests get typed error replies and the service keeps serving", async () => {
  const nats = await startEmbeddedNats();
  const svc = ServiceProcess.start(ECHO, {
    NATS_URL: nats.url,
    VM: "vmE",
    DEVICE: "disk0",
    MAX_PAYLOAD: "1024",
  });
  const bus = await connect({ url: nats.url, name: "errors-client" });
  try {
    await svc.waitFor((e) => e.event === "ready");
    const disk = bus.client({ vm: "vmE", device: "disk0" }, block.ops);
    const stillServes = async () => {
      const r = await disk.call("info", {});
      assert.equal(r.sizeBytes, 65536);
    };
    await stillServes();

    const raw = async (subject: string, data: Uint8Array, id: string) => {
      const h = headers();
      h.set(REQUEST_ID_HEADER, id);
      const msg = await bus.nc.request(subject, data, { timeout: 10_000, headers: h });
      return { name: msg.headers?.get(ERROR_HEADER), err: common.errorCodec.decode(msg.data) };
    };

    // Malformed: a truncated varint is not a vmesh.block.Read.
    const bad = await raw("vmesh.vmE.disk0.read", new Uint8Array([0x10, 0xff, 0xff]), "bad-1");
    assert.equal(bad.name, "MALFORMED");
    assert.equal(bad.err.code, Status.MALFORMED);
    assert.equal(bad.err.requestId, "bad-1");
    assert.match(bad.err.message, /vmesh\.block\.Read/);
    await stillServes();

    // Unknown op on the device's prefix.
    const unk = await raw("vmesh.vmE.disk0.frobnicate", new Uint8Array(0), "unk-1");
    assert.equal(unk.name, "UNKNOWN_OP");
    assert.equal(unk.err.code, Status.UNKNOWN_OP);
    assert.equal(unk.err.requestId, "unk-1");
    await stillServes();

    // Oversized: above the service's 1024-byte limit (below NATS's max_payload).
    const big = await disk.call("write", { offset: 0, data: new Uint8Array(2000) }).catch((e) => e);
    assert.ok(big instanceof BusError, String(big));
    assert.equal(big.code, Status.TOO_LARGE);
    await stillServes();
    const w = await disk.call("write", { offset: 0, data: new Uint8Array(512).fill(9) });
    assert.equal(w.written, 512);
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
  }
  const logLines = svc.stderrLines.filter((l) => l.startsWith("bus: "));
  assert.equal(logLines.length, 3, logLines.join("\n"));
  assert.match(logLines[0], /vmesh\.vmE\.disk0\.read request bad-1: MALFORMED/);
  assert.match(logLines[1], /vmesh\.vmE\.disk0\.frobnicate request unk-1: UNKNOWN_OP/);
  assert.match(logLines[2], /vmesh\.vmE\.disk0\.write request \S+: TOO_LARGE/);
  assert.equal(svc.events.filter((e) => e.event === "applied").length, 1);
});
