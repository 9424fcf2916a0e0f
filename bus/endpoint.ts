/**
 * The server side of one op: size check, replay of duplicate request ids, trace
 * extraction, decode at the edge, the typed handler, encode, and typed error replies.
 * A bad request costs one error reply and one log line; the service keeps serving.
 *
 * @module
 */
import type { Context, Span } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";
import { headers as natsHeaders, type Msg, type MsgHdrs } from "@nats-io/transport-node";
import type { Op } from "./contract.ts";
import type { BusCore } from "./core.ts";
import { errorCodec } from "./contracts/common.ts";
import { ERROR_HEADER, REQUEST_ID_HEADER } from "./headers.ts";
import type { CachedReply, ReplayCache } from "./replay_cache.ts";
import type { EndpointMetrics } from "./request_metrics.ts";
import { BusError, Status, statusName } from "./status.ts";
import { extractTraceContext, failSpan, SpanKind, startMessagingSpan } from "./trace.ts";

/** What a handler knows about the request besides its decoded payload. */
export interface RequestContext {
  /** The subject the request arrived on. */
  readonly subject: string;
  /** The op name. */
  readonly op: string;
  /** The request id (`vmesh-request-id` header, else the payload's requestId, else ""). */
  readonly requestId: string;
  /** The request's NATS headers. */
  readonly headers?: MsgHdrs;
  /** Trace context with the server span active: pass it as `context` to nested calls. */
  readonly context: Context;
  /** The server span (non-recording when tracing is off). */
  readonly span: Span;
}

/**
 * A reply the handler encoded itself: `bytes` is the protobuf encoding of a `Res`, sent as
 * is (no codec pass). For large payloads built in place, e.g. a block read whose data is
 * read from the file straight into the message (`block.readReplyBuffer`).
 */
export class Encoded<Res> {
  declare readonly _res?: Res;
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * Handles one op: gets the decoded request, returns (or resolves) the reply, or the reply
 * already encoded ({@link Encoded}).
 * Throw a {@link BusError} to send a typed error reply; any other exception becomes
 * INTERNAL.
 */
export type Handler<Req, Res> = (
  req: Req,
  ctx: RequestContext,
) => Res | Encoded<Res> | Promise<Res | Encoded<Res>>;

/** Static facts of an endpoint, fixed when the service starts. */
export interface EndpointConfig<Req, Res> {
  op: Op<Req, Res>;
  handler: Handler<Req, Res>;
  /** Largest accepted request payload in bytes. */
  maxPayloadBytes: number;
  /** Replay cache shared by the service's ops, used when op.replay. */
  replay?: ReplayCache;
  vm?: string;
  device?: string;
  /** Where served requests are counted (none: not counted). */
  metrics?: EndpointMetrics;
}

// Codes that depend only on the request, so replaying them to a retry is correct.
const REPLAYABLE_ERRORS = new Set<number>([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.OUT_OF_RANGE,
  Status.READ_ONLY,
  Status.FAILED_PRECONDITION,
]);

/** Serves one request message; never rejects. */
export async function serveRequest<Req, Res>(
  core: BusCore,
  cfg: EndpointConfig<Req, Res>,
  msg: Msg,
): Promise<void> {
  const t0 = performance.now();
  const reply = await answer(core, cfg, msg);
  respond(core, msg, reply);
  cfg.metrics?.record(
    reply.headers?.get(ERROR_HEADER) || "OK",
    msg.data.byteLength,
    reply.data.byteLength,
    (performance.now() - t0) / 1000,
  );
}

/** The reply to one request message (logged when it is an error); never rejects. */
async function answer<Req, Res>(
  core: BusCore,
  cfg: EndpointConfig<Req, Res>,
  msg: Msg,
): Promise<CachedReply> {
  const subject = msg.subject;
  const headerId = msg.headers?.get(REQUEST_ID_HEADER) ?? "";
  if (msg.data.byteLength > cfg.maxPayloadBytes) {
    const err = new BusError(
      Status.TOO_LARGE,
      `payload of ${msg.data.byteLength} bytes exceeds ${cfg.maxPayloadBytes}`,
      headerId,
    );
    logError(core, msg.subject, err);
    return errorReply(err);
  }
  const key = cfg.op.replay && cfg.replay && headerId ? `${subject}\n${headerId}` : "";
  if (key) {
    const prior = cfg.replay!.get(key);
    if (prior) {
      const r = await prior.catch(() => undefined);
      if (r) return r;
    }
  }
  const outcome = run(core, cfg, msg, headerId);
  if (key) cfg.replay!.put(key, outcome.then((o) => o.replayable ? o.reply : undefined));
  return (await outcome).reply;
}

interface Outcome {
  reply: CachedReply;
  replayable: boolean;
}

async function run<Req, Res>(
  core: BusCore,
  cfg: EndpointConfig<Req, Res>,
  msg: Msg,
  headerId: string,
): Promise<Outcome> {
  const parent = extractTraceContext(msg.headers);
  const span = startMessagingSpan(
    {
      subject: msg.subject,
      operation: "process",
      vm: cfg.vm,
      device: cfg.device,
      op: cfg.op.name,
    },
    SpanKind.SERVER,
    parent,
  );
  let requestId = headerId;
  try {
    if (span.isRecording()) {
      span.setAttribute("messaging.message.body.size", msg.data.byteLength);
      if (headerId) span.setAttribute("messaging.message.id", headerId);
    }
    const req = cfg.op.request.decode(msg.data);
    const field = (req as { requestId?: unknown }).requestId;
    if (!requestId && typeof field === "string") requestId = field;
    const ctx: RequestContext = {
      subject: msg.subject,
      op: cfg.op.name,
      requestId,
      headers: msg.headers,
      context: trace.setSpan(parent, span),
      span,
    };
    const res = await cfg.handler(req, ctx);
    let data: Uint8Array;
    try {
      data = res instanceof Encoded ? res.bytes : cfg.op.reply.encode(res);
    } catch (e) {
      // A reply that does not fit its type is the service's bug, not the caller's.
      throw new BusError(Status.INTERNAL, `handler returned a bad reply: ${(e as Error).message}`);
    }
    const max = core.nc.info?.max_payload ?? Infinity;
    if (data.byteLength > max) {
      throw new BusError(Status.TOO_LARGE, `reply of ${data.byteLength} bytes exceeds ${max}`);
    }
    return { reply: { data }, replayable: true };
  } catch (e) {
    failSpan(span, e);
    const err = e instanceof BusError
      ? (e.requestId ? e : new BusError(e.code, e.message, requestId, { cause: e }))
      : new BusError(Status.INTERNAL, `${(e as Error)?.message ?? e}`, requestId, { cause: e });
    logError(core, msg.subject, err);
    return { reply: errorReply(err), replayable: REPLAYABLE_ERRORS.has(err.code) };
  } finally {
    span.end();
  }
}

/** Encodes a BusError as an error reply (`vmesh-error` header + common.Error). */
export function errorReply(err: BusError): CachedReply {
  const h = natsHeaders();
  h.set(ERROR_HEADER, statusName(err.code));
  // Nats-Service-Error lets generic NATS tooling see the failure too.
  h.set("Nats-Service-Error", err.message.replace(/[\r\n]+/g, " "));
  h.set("Nats-Service-Error-Code", String(err.code));
  if (err.requestId) h.set(REQUEST_ID_HEADER, err.requestId);
  const data = errorCodec.encode({
    code: err.code,
    message: err.message,
    requestId: err.requestId,
  });
  return { data, headers: h };
}

/** Sends an error reply and writes the one log line for it. */
export function replyError(core: BusCore, msg: Msg, err: BusError): void {
  logError(core, msg.subject, err);
  respond(core, msg, errorReply(err));
}

/** The one log line of a failed request. */
export function logError(core: BusCore, subject: string, err: BusError): void {
  const id = err.requestId ? ` request ${err.requestId}` : "";
  core.log(`bus: ${subject}${id}: ${err.status}: ${err.message.replace(/[\r\n]+/g, " ")}`);
}

function respond(core: BusCore, msg: Msg, r: CachedReply): void {
  if (!msg.reply) return;
  try {
    msg.respond(r.data, r.headers ? { headers: r.headers } : undefined);
  } catch (e) {
    core.log(`bus: ${msg.subject}: cannot send reply: ${(e as Error)?.message ?? e}`);
  }
}
