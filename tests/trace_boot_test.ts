/**
 * One virtio request is one trace across processes: `./vmesh boot` with Deno's OTLP export
 * on reads a file from the virtio disk, and the test OTLP receiver gets, in one trace, the
 * CPU service's `virtio-blk read` span, its bus CLIENT span (child) and the disk service's
 * SERVER span (grandchild), plus the CPU service's `vm boot` span. Real processes, real
 * nats-server, real guest images.
 */
import assert from "node:assert/strict";
import { ensureGuestImages } from "../guest/mod.ts";
import { OtlpSpanKind, type ReceivedSpan, startOtlpReceiver } from "./otlp_receiver.ts";
import { bootBatch, imageArgs } from "./vmesh_boot.ts";

/** The first `virtio-blk read` of the CPU service with its bus client and disk server spans. */
function readChain(spans: ReceivedSpan[]) {
  for (const cpu of spans) {
    if (cpu.name !== "virtio-blk read" || cpu.serviceName !== "vmesh-cpu") continue;
    const client = spans.find((s) => s.parentSpanId === cpu.spanId && s.traceId === cpu.traceId);
    if (!client) continue;
    const server = spans.find((s) => s.parentSpanId === client.spanId && s.traceId === cpu.traceId);
    if (server) return { cpu, client, server };
  }
  return undefined;
}

Deno.test("trace: a guest disk read is one trace from the CPU's virtio-blk span to the disk service", async () => {
  const images = await ensureGuestImages();
  const rx = startOtlpReceiver();
  try {
    const out = await bootBatch(
      imageArgs(images),
      "mount -o ro /dev/vda /mnt && cat /mnt/README",
      {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_SERVICE_NAME: "vmesh-boot",
      },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /vmesh guest data disk/, out.stderr);
    // Every process has exited, and Deno flushes its spans before it exits.
    assert.deepEqual(rx.problems, []);
    const spans = rx.spans;
    const names = () => JSON.stringify([...new Set(spans.map((s) => s.name))]);

    const chain = readChain(spans);
    assert.ok(chain, `no virtio-blk read -> client -> server chain in ${names()}`);
    const { cpu, client, server } = chain;
    assert.equal(cpu.kind, OtlpSpanKind.INTERNAL);
    assert.equal(cpu.parentSpanId, "", "a virtio request starts its own trace");
    assert.equal(client.kind, OtlpSpanKind.CLIENT);
    assert.equal(client.serviceName, "vmesh-cpu");
    assert.equal(server.kind, OtlpSpanKind.SERVER);
    assert.equal(server.serviceName, "vmesh-disk");
    assert.match(cpu.traceId, /^[0-9a-f]{32}$/);
    assert.equal(client.traceId, cpu.traceId);
    assert.equal(server.traceId, cpu.traceId);

    const a = cpu.attributes;
    assert.equal(typeof a["vmesh.vm"], "string");
    assert.match(String(a["vmesh.device"]), /^disk\d+$/);
    assert.equal(a["vmesh.queue"], 0);
    assert.equal(a["vmesh.op"], "read");
    assert.equal(typeof a["vmesh.sector"], "number");
    assert.equal(a["vmesh.offset"], (a["vmesh.sector"] as number) * 512);
    assert.ok((a["vmesh.bytes"] as number) > 0 && (a["vmesh.bytes"] as number) % 512 === 0);
    assert.equal(a["vmesh.status"], "OK");
    for (const s of [client, server]) {
      assert.equal(s.name.endsWith(`.${a["vmesh.device"]}.read`), true, s.name);
      assert.equal(s.attributes["vmesh.vm"], a["vmesh.vm"]);
      assert.equal(s.attributes["vmesh.device"], a["vmesh.device"]);
      assert.equal(s.attributes["vmesh.op"], "read");
    }

    const boot = spans.find((s) => s.name === "vm boot" && s.serviceName === "vmesh-cpu");
    assert.ok(boot, `no vm boot span in ${names()}`);
    assert.equal(boot.attributes["vmesh.vm"], a["vmesh.vm"]);
    assert.equal(boot.attributes["vmesh.boot.end"], "console");
  } finally {
    await rx.close();
  }
});
