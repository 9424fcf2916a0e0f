/**
 * A test OTLP/HTTP receiver: listens on a free loopback port and collects the spans
 * that processes export to `POST /v1/traces` in OTLP http/json (what Deno sends with
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`). Metrics and logs posts are accepted and
 * dropped; other content types get 415 so a misconfigured exporter is visible.
 *
 * ```ts
 * await using rx = startOtlpReceiver();
 * // run processes with OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint ...
 * const spans = await rx.waitFor((s) => s.some((x) => x.name === "send vmesh.vm1.disk0.read"));
 * ```
 * @module
 */

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

/** Starts a receiver on 127.0.0.1 with a free port. */
export function startOtlpReceiver(): OtlpReceiver {
  const spans: ReceivedSpan[] = [];
  const problems: string[] = [];
  const waiters: { pred: (s: ReceivedSpan[]) => boolean; resolve: (s: ReceivedSpan[]) => void }[] =
    [];
  const wake = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].pred(spans)) waiters.splice(i, 1)[0].resolve(spans);
    }
  };
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (req.method !== "POST") return new Response("POST only", { status: 405 });
      const type = req.headers.get("content-type") ?? "";
      const body = new Uint8Array(await req.arrayBuffer());
      if (path !== "/v1/traces") return Response.json({}); // metrics, logs: accepted, dropped
      if (!type.startsWith("application/json")) {
        problems.push(`${path}: unsupported content-type ${type}`);
        return new Response("http/json only", { status: 415 });
      }
      try {
        spans.push(...parseTraceExport(JSON.parse(new TextDecoder().decode(body))));
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
  };
}
