/**
 * A traced block write crosses into the real disk service process: with Deno's built-in
 * OTLP export on, the service exports a SERVER span that is the child of the client's
 * span and carries the device attributes (vm, device, op, offset, bytes).
 */
import assert from "node:assert/strict";
import { SpanKind, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { block } from "@vmesh/bus";
import { servicePath, startTestBus } from "./services_harness.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** An OTLP/HTTP JSON receiver that collects every span it is sent. */
function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  let wake = () => {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.method === "POST" && new URL(req.url).pathname === "/v1/traces") {
      const body = await req.json();
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      wake();
      return Response.json({});
    }
    await req.body?.cancel();
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    spans,
    async waitFor(pred: (s: OtlpSpan) => boolean): Promise<OtlpSpan> {
      for (;;) {
        const hit = spans.find(pred);
        if (hit) return hit;
        await new Promise<void>((r) => wake = r);
      }
    },
    shutdown: () => server.shutdown(),
  };
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
}

Deno.test("disk service: a block write is one trace from client to backend", async () => {
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  const dir = await Deno.makeTempDir({ prefix: "vmesh-trace-test-" });
  const tb = await startTestBus();
  const otlp = otlpReceiver();
  await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(1 << 20));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      servicePath("disk"),
      "--vm",
      "vmT",
      "--image",
      `${dir}/disk.img`,
    ],
    env: {
      NATS_URL: tb.nats.url,
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "vmesh-disk",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const disk = tb.bus.client({ vm: "vmT", device: "disk0" }, block.ops, {
      timeoutMs: 2000,
      retries: 50,
      retryDelayMs: 50,
    });
    // Retries cover the service's start-up (no responders until it serves).
    await disk.call("write", { offset: 4096, data: new Uint8Array(1024).fill(3) });
    const client = exporter.getFinishedSpans().find((s) => s.name === "send vmesh.vmT.disk0.write");
    assert.ok(client, "client span recorded");
    const server = await otlp.waitFor((s) => s.name === "process vmesh.vmT.disk0.write");
    assert.equal(server.kind, 2); // OTLP SPAN_KIND_SERVER
    assert.equal(server.traceId, client.spanContext().traceId);
    assert.equal(server.parentSpanId, client.spanContext().spanId);
    assert.equal(attr(server, "messaging.system"), "nats");
    assert.equal(attr(server, "vmesh.vm"), "vmT");
    assert.equal(attr(server, "vmesh.device"), "disk0");
    assert.equal(attr(server, "vmesh.op"), "write");
    assert.equal(Number(attr(server, "vmesh.offset")), 4096);
    assert.equal(Number(attr(server, "vmesh.bytes")), 1024);
    assert.equal(client.kind, SpanKind.CLIENT);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await otlp.shutdown();
    await tb.close();
    trace.disable();
    await Deno.remove(dir, { recursive: true });
  }
});
