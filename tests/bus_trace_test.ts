// Trace context crosses processes: the server's spans are children of the client's.
import assert from "node:assert/strict";
import { SpanKind, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  block,
  connect,
  consoleMsgs,
  consoleSubject,
  startEmbeddedNats,
  TRACER_NAME,
} from "../bus/mod.ts";
import { type Event, ServiceProcess } from "../bus/testdata/service_process.ts";

const ECHO = new URL("../bus/testdata/echo_service.ts", import.meta.url);

Deno.test("bus: trace context crosses processes for request/reply and pub/sub", async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  trace.setGlobalTracerProvider(provider);
  const nats = await startEmbeddedNats();
  const svc = ServiceProcess.start(ECHO, {
    NATS_URL: nats.url,
    VM: "vmT",
    DEVICE: "disk0",
    TRACE: "1",
  });
  const bus = await connect({ url: nats.url, name: "trace-client" });
  try {
    await svc.waitFor((e) => e.event === "ready");
    const disk = bus.client({ vm: "vmT", device: "disk0" }, block.ops);
    await disk.call("write", { offset: 512, data: new Uint8Array(512).fill(7) });

    const client = exporter.getFinishedSpans().find((s) => s.name === "send vmesh.vmT.disk0.write");
    assert.ok(client, "client span recorded");
    assert.equal(client.kind, SpanKind.CLIENT);
    assert.equal(client.instrumentationScope.name, TRACER_NAME);
    assert.equal(client.attributes["messaging.system"], "nats");
    assert.equal(client.attributes["messaging.destination.name"], "vmesh.vmT.disk0.write");
    assert.equal(client.attributes["messaging.operation"], "send");
    assert.equal(client.attributes["vmesh.vm"], "vmT");
    assert.equal(client.attributes["vmesh.device"], "disk0");
    assert.equal(client.attributes["vmesh.op"], "write");
    assert.equal(client.attributes["vmesh.offset"], 512);
    assert.equal(client.attributes["vmesh.bytes"], 512);

    const server = await svc.waitFor((e) =>
      e.event === "span" && e.name === "process vmesh.vmT.disk0.write"
    );
    assert.equal(server.kind, SpanKind.SERVER);
    assert.equal(server.traceId, client.spanContext().traceId);
    assert.equal(server.parentSpanId, client.spanContext().spanId);
    const attrs = server.attributes as Record<string, unknown>;
    assert.equal(attrs["messaging.system"], "nats");
    assert.equal(attrs["messaging.destination.name"], "vmesh.vmT.disk0.write");
    assert.equal(attrs["messaging.operation"], "process");
    assert.equal(attrs["vmesh.vm"], "vmT");
    assert.equal(attrs["vmesh.device"], "disk0");
    assert.equal(attrs["vmesh.op"], "write");

    // Pub/sub: producer here -> consumer there -> producer there -> consumer here.
    let wake = () => {};
    let echoed = false;
    const sub = bus.subscribe(consoleMsgs.byteBatch, consoleSubject("vmT", "out"), () => {
      echoed = true;
      wake();
    });
    await bus.flush();
    bus.publish(consoleMsgs.byteBatch, consoleSubject("vmT", "in"), {
      seq: 0,
      data: new Uint8Array([0x41]),
    });
    while (!echoed) await new Promise<void>((r) => wake = r);
    sub.unsubscribe();
    const spans = exporter.getFinishedSpans();
    const producer = spans.find((s) => s.name === "send vmesh.vmT.console.in");
    assert.ok(producer);
    assert.equal(producer.kind, SpanKind.PRODUCER);
    const isSpan = (name: string) => (e: Event) => e.event === "span" && e.name === name;
    const remoteConsumer = await svc.waitFor(isSpan("process vmesh.vmT.console.in"));
    assert.equal(remoteConsumer.kind, SpanKind.CONSUMER);
    assert.equal(remoteConsumer.parentSpanId, producer.spanContext().spanId);
    assert.equal(remoteConsumer.traceId, producer.spanContext().traceId);
    const remoteProducer = await svc.waitFor(isSpan("send vmesh.vmT.console.out"));
    assert.equal(remoteProducer.parentSpanId, remoteConsumer.spanId);
    await waitUntil(() =>
      exporter.getFinishedSpans().some((s) => s.name === "process vmesh.vmT.console.out")
    );
    const consumer = exporter.getFinishedSpans().find((s) =>
      s.name === "process vmesh.vmT.console.out"
    )!;
    assert.equal(consumer.parentSpanContext?.spanId, remoteProducer.spanId);
    assert.equal(consumer.spanContext().traceId, producer.spanContext().traceId);
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
    trace.disable();
    await provider.shutdown();
  }
});

// Polls until cond holds; the limit only guards against a hang.
async function waitUntil(cond: () => boolean, limitMs = 30_000) {
  const until = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 10));
  }
}
