/**
 * W3C trace context in NATS headers and the messaging spans of both sides of a
 * bus call. Uses only `@opentelemetry/api`: with no tracer provider registered the
 * spans are non-recording and no headers are written.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context as otelContext,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { TRACEPARENT_HEADER, TRACESTATE_HEADER } from "./headers.ts";

/** Name of the tracer the bus makes its spans with. */
export const TRACER_NAME = "@vmesh/bus";

/** The bus tracer (resolved per call so a provider registered later is used). */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** What a span of a bus message is about. */
export interface MessagingTarget {
  subject: string;
  /** "send" (client/producer) or "process" (server/consumer). */
  operation: "send" | "process";
  vm?: string;
  device?: string;
  op?: string;
}

/** Span name per OTel messaging semconv: `{operation} {subject}`. */
export function spanName(t: MessagingTarget): string {
  return `${t.operation} ${t.subject}`;
}

/** Messaging semconv attributes plus vmesh.vm / vmesh.device / vmesh.op. */
export function messagingAttributes(t: MessagingTarget): Attributes {
  const a: Attributes = {
    "messaging.system": "nats",
    "messaging.destination.name": t.subject,
    "messaging.operation": t.operation,
    "messaging.operation.name": t.operation,
  };
  if (t.vm) a["vmesh.vm"] = t.vm;
  if (t.device) a["vmesh.device"] = t.device;
  if (t.op) a["vmesh.op"] = t.op;
  return a;
}

/**
 * Starts the span of one side of a message: CLIENT/SERVER for request/reply,
 * PRODUCER/CONSUMER for publish/subscribe.
 */
export function startMessagingSpan(
  t: MessagingTarget,
  kind: SpanKind,
  parent: Context,
): Span {
  return tracer().startSpan(spanName(t), { kind, attributes: messagingAttributes(t) }, parent);
}

const setter = {
  set(carrier: MsgHdrs, key: string, value: string) {
    carrier.set(key, value);
  },
};

const getter = {
  get(carrier: MsgHdrs | undefined, key: string): string | undefined {
    const v = carrier?.get(key);
    return v ? v : undefined;
  },
  keys(carrier: MsgHdrs | undefined): string[] {
    return carrier ? carrier.keys() : [];
  },
};

/**
 * Writes the trace context of `ctx` into NATS headers (creating them if needed).
 * Returns the headers unchanged when `ctx` holds no valid span, so an untraced
 * process sends no trace headers. Uses the global propagator and falls back to
 * writing `traceparent` itself when none is registered.
 */
export function injectTraceContext(ctx: Context, hdrs?: MsgHdrs): MsgHdrs | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return hdrs;
  const h = hdrs ?? natsHeaders();
  propagation.inject(ctx, h, setter);
  if (!h.has(TRACEPARENT_HEADER)) {
    const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
    h.set(TRACEPARENT_HEADER, `00-${sc.traceId}-${sc.spanId}-${flags}`);
    const ts = sc.traceState?.serialize();
    if (ts) h.set(TRACESTATE_HEADER, ts);
  }
  return h;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Reads the remote trace context from NATS headers (global propagator, falling
 * back to parsing `traceparent`). Returns `base` when the headers carry none.
 */
export function extractTraceContext(
  hdrs: MsgHdrs | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  if (!hdrs) return base;
  const ctx = propagation.extract(base, hdrs, getter);
  if (trace.getSpanContext(ctx)) return ctx;
  const m = TRACEPARENT.exec(hdrs.get(TRACEPARENT_HEADER) ?? "");
  if (!m || m[1] === "ff" || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) return base;
  return trace.setSpanContext(base, {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16),
    isRemote: true,
  });
}

/** Marks a span failed with an error's message. */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** The active context (for callers that did not pass one). */
export function activeContext(): Context {
  return otelContext.active();
}

export { SpanKind };
