/**
 * A test service process: serves the block contract on an in-memory 64 KiB disk
 * at vmesh.<VM>.<DEVICE>, echoes console.in batches to console.out, and reports
 * on stdout as JSON lines: {"event":"ready"}, {"event":"applied",...} per write
 * applied, {"event":"slow-write-done"} after the delayed first write, {"event":"span",...} per finished span (when TRACE=1).
 *
 * Env: NATS_URL (required), VM (vm1), DEVICE (disk0), MAX_PAYLOAD (bytes),
 * SLOW_FIRST_WRITE_MS (delay the first write's handler), TRACE (1 = export spans).
 * Stops on SIGTERM/SIGINT.
 */
import { propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { block, BusError, connect, consoleMsgs, consoleSubject, Status } from "../mod.ts";

const env = (k: string, d = "") => Deno.env.get(k) ?? d;
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

if (env("TRACE") === "1") {
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], done) {
      for (const s of spans) {
        emit({
          event: "span",
          name: s.name,
          kind: s.kind,
          traceId: s.spanContext().traceId,
          spanId: s.spanContext().spanId,
          parentSpanId: s.parentSpanContext?.spanId ?? "",
          attributes: s.attributes,
        });
      }
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  };
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

const vm = env("VM", "vm1");
const device = env("DEVICE", "disk0");
const slowFirstWriteMs = Number(env("SLOW_FIRST_WRITE_MS", "0"));
const disk = new Uint8Array(64 * 1024);
const applied = new Map<string, number>();
let writes = 0;

const bus = await connect({ name: "echo-service" });
const svc = await bus.serve({
  vm,
  device,
  name: "vmesh-echo",
  version: "1.2.3",
  description: "test block service",
  ops: block.ops,
  maxPayloadBytes: env("MAX_PAYLOAD") ? Number(env("MAX_PAYLOAD")) : undefined,
  handlers: {
    info: () => ({ sizeBytes: disk.length, sectorSize: 512, readOnly: false, discard: true }),
    read(r) {
      if (r.offset + r.length > disk.length) {
        throw new BusError(Status.OUT_OF_RANGE, `read past end at ${r.offset}+${r.length}`);
      }
      return { status: Status.OK, data: disk.slice(r.offset, r.offset + r.length) };
    },
    async write(w, ctx) {
      const slow = writes++ === 0 && slowFirstWriteMs > 0;
      if (slow) await new Promise((r) => setTimeout(r, slowFirstWriteMs));
      if (w.offset + w.data.length > disk.length) {
        throw new BusError(Status.OUT_OF_RANGE, "write past end");
      }
      disk.set(w.data, w.offset);
      const n = (applied.get(ctx.requestId) ?? 0) + 1;
      applied.set(ctx.requestId, n);
      emit({ event: "applied", requestId: ctx.requestId, count: n, total: writes });
      if (slow) emit({ event: "slow-write-done" });
      return { status: Status.OK, written: w.data.length };
    },
    flush: () => ({ status: Status.OK }),
    discard(d) {
      disk.fill(0, d.offset, d.offset + d.length);
      return { status: Status.OK };
    },
  },
});
bus.subscribe(consoleMsgs.byteBatch, consoleSubject(vm, "in"), (batch, ctx) => {
  bus.publish(consoleMsgs.byteBatch, consoleSubject(vm, "out"), batch, {
    context: ctx.context,
  });
});
await bus.flush();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await svc.stop();
  await bus.close();
  emit({ event: "stopped" });
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
emit({ event: "ready", id: svc.id, prefix: svc.prefix });
