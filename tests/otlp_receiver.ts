/**
 * A test OTLP/HTTP receiver: listens on a free loopback port and collects the spans
 * that processes export to `POST /v1/traces`, in OTLP http/json or http/protobuf (Deno's
 * `OTEL_EXPORTER_OTLP_PROTOCOL`). Metrics and logs posts are accepted and dropped; other
 * content types get 415 so a misconfigured exporter is visible.
 *
 * ```ts
 * await using rx = startOtlpReceiver();
 * // run processes with OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint ...
 * const spans = await rx.waitFor((s) => s.some((x) => x.name === "send vmesh.vm1.disk0.read"));
 * ```
 * @module
 */

import protobuf from "protobufjs";

// The subset of opentelemetry/proto/collector/trace/v1 that spans are read from.
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; repeated KeyValue attributes = 9;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

const exportRequest = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType(
  "otlp.ExportTraceServiceRequest",
);

/** Decodes an http/protobuf export into the shape of the JSON encoding (ids as hex). */
export function decodeProtobufExport(bytes: Uint8Array): unknown {
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      return Array.from(v, (x) => x.toString(16).padStart(2, "0")).join("");
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(exportRequest.toObject(exportRequest.decode(bytes), { longs: String }));
}

/** Span kinds as OTLP numbers them. */
export const OtlpSpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** One received span, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  /** An {@link OtlpSpanKind} value. */
  kind: number;
  attributes: Record<string, unknown>;
  /** The `service.name` resource attribute of the exporting process. */
  serviceName: string;
  resource: Record<string, unknown>;
}

/** A running receiver. */
export interface OtlpReceiver extends AsyncDisposable {
  /** Base URL to put in OTEL_EXPORTER_OTLP_ENDPOINT (no path). */
  readonly endpoint: string;
  /** Every span received so far. */
  readonly spans: ReceivedSpan[];
  /** Export requests that could not be read, one line each. */
  readonly problems: string[];
  /** Called with all spans after every export (for printing). */
  onSpans?: (spans: ReceivedSpan[]) => void;
  /** Resolves once `pred(spans)` holds (checked after every export). */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  bytesValue?: string;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}

function anyValue(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  return v.bytesValue;
}

function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

// OTLP/JSON writes ids as hex; some exporters write base64 (the protobuf JSON mapping).
function hexId(id: string | undefined, bytes: number): string {
  if (!id) return "";
  if (new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(id)) return id.toLowerCase();
  try {
    const raw = atob(id);
    return Array.from(raw, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  } catch {
    return id;
  }
}

/** Flattens one OTLP ExportTraceServiceRequest (JSON) into spans. */
export function parseTraceExport(body: unknown): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const rs = (body as { resourceSpans?: unknown[] })?.resourceSpans;
  if (!Array.isArray(rs)) throw new Error("no resourceSpans array");
  for (const r of rs as { resource?: { attributes?: KeyValue[] }; scopeSpans?: unknown[] }[]) {
    const resource = attrs(r.resource?.attributes);
    for (const ss of (r.scopeSpans ?? []) as { spans?: unknown[] }[]) {
      for (const s of (ss.spans ?? []) as Record<string, unknown>[]) {
        out.push({
          traceId: hexId(s.traceId as string, 16),
          spanId: hexId(s.spanId as string, 8),
          parentSpanId: hexId(s.parentSpanId as string, 8),
          name: String(s.name ?? ""),
          kind: Number(s.kind ?? 0),
          attributes: attrs(s.attributes as KeyValue[]),
          serviceName: String(resource["service.name"] ?? ""),
          resource,
        });
      }
    }
  }
  return out;
}

/** Starts a receiver on 127.0.0.1 with a free port (or `port`). */
export function startOtlpReceiver(port = 0): OtlpReceiver {
  const spans: ReceivedSpan[] = [];
  const problems: string[] = [];
  let onSpans: ((s: ReceivedSpan[]) => void) | undefined;
  const waiters: { pred: (s: ReceivedSpan[]) => boolean; resolve: (s: ReceivedSpan[]) => void }[] =
    [];
  const wake = () => {
    onSpans?.(spans);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].pred(spans)) waiters.splice(i, 1)[0].resolve(spans);
    }
  };
  const ac = new AbortController();
  const server = Deno.serve(
    { port, hostname: "127.0.0.1", signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (req.method !== "POST") return new Response("POST only", { status: 405 });
      const type = req.headers.get("content-type") ?? "";
      const body = new Uint8Array(await req.arrayBuffer());
      if (path !== "/v1/traces") return Response.json({}); // metrics, logs: accepted, dropped
      const json = type.startsWith("application/json");
      if (!json && !type.startsWith("application/x-protobuf")) {
        problems.push(`${path}: unsupported content-type ${type}`);
        return new Response("http/json or http/protobuf only", { status: 415 });
      }
      try {
        const doc = json ? JSON.parse(new TextDecoder().decode(body)) : decodeProtobufExport(body);
        spans.push(...parseTraceExport(doc));
      } catch (e) {
        problems.push(`${path}: ${(e as Error).message}`);
        return new Response("bad export", { status: 400 });
      }
      wake();
      return Response.json({});
    },
  );
  const close = async () => {
    ac.abort();
    await server.finished;
  };
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    spans,
    problems,
    waitFor(pred) {
      if (pred(spans)) return Promise.resolve(spans);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    close,
    [Symbol.asyncDispose]: close,
    set onSpans(fn: ((s: ReceivedSpan[]) => void) | undefined) {
      onSpans = fn;
    },
  };
}

// As a program: a stand-in for Jaeger that prints one line per span, e.g.
//   deno run -A tests/otlp_receiver.ts 4318 &
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 ./vmesh up
if (import.meta.main) {
  const rx = startOtlpReceiver(Number(Deno.args[0] ?? 4318));
  console.error(`otlp receiver: ${rx.endpoint} (http/json, http/protobuf)`);
  let printed = 0;
  rx.onSpans = (spans) => {
    for (; printed < spans.length; printed++) {
      const s = spans[printed];
      console.log(
        `${s.traceId} ${s.spanId} <- ${s.parentSpanId || "(root)"} ${s.serviceName}: ${s.name}`,
      );
    }
  };
}
