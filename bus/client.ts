/**
 * Typed request/reply: encode, send with a per-attempt timeout, retry on timeouts
 * and missing responders with the same request id, decode or raise a BusError.
 *
 * @module
 */
import type { Context, Span } from "@opentelemetry/api";
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import type { Op, Ops, ReplyOf, RequestOf } from "./contract.ts";
import type { BusCore, Target } from "./core.ts";
import { errorCodec } from "./contracts/common.ts";
import { ERROR_HEADER, REQUEST_ID_HEADER } from "./headers.ts";
import { BusError, Status, type StatusCode } from "./status.ts";
import { devicePrefix } from "./subjects.ts";
import { MuxError, requestMux } from "./request_mux.ts";
import {
  activeContext,
  failSpan,
  injectTraceContext,
  SpanKind,
  startMessagingSpan,
} from "./trace.ts";
import { trace } from "@opentelemetry/api";

/** Options of one typed request. */
export interface CallOptions {
  /** Timeout of each attempt in ms. Default 5000. */
  timeoutMs?: number;
  /** Further attempts after a timeout or a missing/unavailable service. Default 2. */
  retries?: number;
  /** Overall budget in ms across all attempts; none by default. */
  deadlineMs?: number;
  /** Pause before the first retry in ms, doubled each retry. Default 25. */
  retryDelayMs?: number;
  /**
   * Request id; default: the request's `requestId` field if set, else a new UUID.
   * The id is written to the request's `requestId` field (if it has one) and to the
   * `vmesh-request-id` header, identically on every attempt.
   */
  requestId?: string;
  /** Parent trace context; default the active context. */
  context?: Context;
  /** Extra NATS headers to send. */
  headers?: MsgHdrs;
}

/** Resolves the subject prefix of a target. */
export function targetPrefix(t: Target): string {
  if (t.prefix) return t.prefix;
  if (t.vm && t.device) return devicePrefix(t.vm, t.device);
  throw new TypeError("a bus target needs a prefix or both vm and device");
}

const RETRYABLE = new Set<number>([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);

/**
 * Sends `req` to `<prefix>.<op.name>` and resolves with the decoded reply. Rejects
 * with a {@link BusError}: the server's error code for an error reply,
 * DEADLINE_EXCEEDED after the last attempt timed out, UNAVAILABLE when no service
 * answered, TOO_LARGE when the payload exceeds the server's max_payload.
 */
export async function request<Req, Res>(
  core: BusCore,
  target: Target,
  op: Op<Req, Res>,
  req: Req,
  opts: CallOptions = {},
): Promise<Res> {
  const subject = `${targetPrefix(target)}.${op.name}`;
  const field = (req as { requestId?: unknown }).requestId;
  const requestId = opts.requestId ??
    (typeof field === "string" && field !== "" ? field : crypto.randomUUID());
  const body = (req !== null && typeof req === "object" && "requestId" in req)
    ? { ...req, requestId } as Req
    : req;
  const data = op.request.encode(body);

  const span = startMessagingSpan(
    { subject, operation: "send", vm: target.vm, device: target.device, op: op.name },
    SpanKind.CLIENT,
    opts.context ?? activeContext(),
  );
  if (span.isRecording()) {
    span.setAttribute("messaging.message.id", requestId);
    span.setAttribute("messaging.message.body.size", data.byteLength);
    deviceAttributes(span, req);
  }
  const hdrs = injectTraceContext(
    trace.setSpan(opts.context ?? activeContext(), span),
    opts.headers ?? natsHeaders(),
  )!;
  hdrs.set(REQUEST_ID_HEADER, requestId);

  const timeoutMs = opts.timeoutMs ?? 5000;
  const retries = Math.max(0, opts.retries ?? 2);
  const giveUpAt = opts.deadlineMs === undefined ? Infinity : Date.now() + opts.deadlineMs;
  let delay = opts.retryDelayMs ?? 25;
  const mux = requestMux(core.nc);
  try {
    for (let attempt = 0;; attempt++) {
      const left = giveUpAt - Date.now();
      let err: BusError;
      try {
        const msg = await mux.request(
          subject,
          data,
          hdrs,
          Math.max(1, Math.min(timeoutMs, left)),
        );
        return decodeReply(op, msg, requestId);
      } catch (e) {
        err = toBusError(e, subject, requestId);
      }
      const canRetry = RETRYABLE.has(err.code) && attempt < retries &&
        Date.now() + delay < giveUpAt;
      if (!canRetry) throw err;
      if (span.isRecording()) span.addEvent("retry", { attempt: attempt + 1, reason: err.status });
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** Adds vmesh.offset / vmesh.bytes when the request has them (block-style requests). */
function deviceAttributes(span: Span, req: unknown) {
  if (req === null || typeof req !== "object") return;
  const r = req as { offset?: unknown; length?: unknown; data?: unknown };
  if (typeof r.offset === "number") span.setAttribute("vmesh.offset", r.offset);
  if (typeof r.length === "number") span.setAttribute("vmesh.bytes", r.length);
  else if (r.data instanceof Uint8Array) span.setAttribute("vmesh.bytes", r.data.byteLength);
}

function decodeReply<Res>(op: Op<unknown, Res>, msg: Msg, requestId: string): Res {
  const errName = msg.headers?.get(ERROR_HEADER);
  if (errName) {
    let code: StatusCode = Status.INTERNAL;
    let message = `error reply ${errName}`;
    try {
      const e = errorCodec.decode(msg.data);
      code = (e.code || Status.INTERNAL) as StatusCode;
      message = e.message;
    } catch { /* keep the header's name: the payload is not an Error */ }
    throw new BusError(code, message, requestId);
  }
  const svcErr = msg.headers?.get("Nats-Service-Error");
  if (svcErr) throw new BusError(Status.INTERNAL, svcErr, requestId);
  try {
    return op.reply.decode(msg.data);
  } catch (e) {
    if (e instanceof BusError) throw new BusError(e.code, e.message, requestId, { cause: e });
    throw e;
  }
}

/** Maps a nats.js request failure to a BusError. */
function toBusError(e: unknown, subject: string, requestId: string): BusError {
  if (e instanceof BusError) return e;
  if (e instanceof MuxError) {
    return e.kind === "timeout"
      ? new BusError(Status.DEADLINE_EXCEEDED, `no reply on ${subject}`, requestId)
      : e.kind === "no-responders"
      ? new BusError(Status.UNAVAILABLE, `no service on ${subject}`, requestId)
      : new BusError(Status.UNAVAILABLE, `${subject}: ${e.message}`, requestId);
  }
  const err = e as Error;
  if (e instanceof TimeoutError || err?.name === "TimeoutError") {
    return new BusError(Status.DEADLINE_EXCEEDED, `no reply on ${subject}`, requestId, {
      cause: e,
    });
  }
  if (
    (e instanceof RequestError && e.isNoResponders()) ||
    err?.name === "NoRespondersError" || (err?.cause as Error)?.name === "NoRespondersError"
  ) {
    return new BusError(Status.UNAVAILABLE, `no service on ${subject}`, requestId, { cause: e });
  }
  if (/max_payload/.test(err?.message ?? "")) {
    return new BusError(Status.TOO_LARGE, `${subject}: ${err.message}`, requestId, { cause: e });
  }
  return new BusError(Status.UNAVAILABLE, `${subject}: ${err?.message ?? e}`, requestId, {
    cause: e,
  });
}

/** A typed client of one device: `call("read", {offset, length})`. */
export interface DeviceClient<O extends Ops> {
  /** The subject prefix the ops are sent to. */
  readonly prefix: string;
  /** Sends a request for op `name`; see {@link request}. */
  call<K extends keyof O & string>(
    name: K,
    req: RequestOf<O[K]>,
    opts?: CallOptions,
  ): Promise<ReplyOf<O[K]>>;
}

/** Makes a typed client for the ops `ops` of the device at `target`. */
export function deviceClient<O extends Ops>(
  core: BusCore,
  target: Target,
  ops: O,
  defaults: CallOptions = {},
): DeviceClient<O> {
  const prefix = targetPrefix(target);
  const t = { ...target, prefix };
  return {
    prefix,
    call(name, req, opts) {
      const op = ops[name];
      if (!op) return Promise.reject(new BusError(Status.UNKNOWN_OP, `no op ${name}`));
      return request(core, t, op, req, { ...defaults, ...opts });
    },
  };
}
