/**
 * Typed publish/subscribe (console bytes, network frames). Messages carry trace
 * context when the publisher is traced; bad messages are dropped with one log line.
 *
 * @module
 */
import type { Context } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";
import type { MsgHdrs, Subscription } from "@nats-io/transport-node";
import type { Topic } from "./contract.ts";
import type { BusCore } from "./core.ts";
import { BusError, Status } from "./status.ts";
import {
  activeContext,
  extractTraceContext,
  failSpan,
  injectTraceContext,
  SpanKind,
  startMessagingSpan,
} from "./trace.ts";

/** Options of {@link publish}. */
export interface PublishOptions {
  /** Parent trace context; default the active context. */
  context?: Context;
  /** Extra NATS headers. */
  headers?: MsgHdrs;
  /** For span attributes. */
  vm?: string;
  device?: string;
}

/**
 * Publishes `value` on `subject`. Throws {@link EncodeError} if the value does not
 * fit, BusError TOO_LARGE if it exceeds the server's max_payload.
 */
export function publish<T>(
  core: BusCore,
  topic: Topic<T>,
  subject: string,
  value: T,
  opts: PublishOptions = {},
): void {
  const data = topic.codec.encode(value);
  const parent = opts.context ?? activeContext();
  const span = startMessagingSpan(
    { subject, operation: "send", vm: opts.vm, device: opts.device },
    SpanKind.PRODUCER,
    parent,
  );
  try {
    const headers = injectTraceContext(trace.setSpan(parent, span), opts.headers);
    core.nc.publish(subject, data, headers ? { headers } : undefined);
  } catch (e) {
    failSpan(span, e);
    const m = (e as Error)?.message ?? String(e);
    throw /max_payload/.test(m) ? new BusError(Status.TOO_LARGE, `${subject}: ${m}`) : e;
  } finally {
    span.end();
  }
}

/** What a subscriber knows about a message besides its decoded payload. */
export interface MessageContext {
  readonly subject: string;
  readonly headers?: MsgHdrs;
  /** Trace context with the consumer span active. */
  readonly context: Context;
}

/** Options of {@link subscribe}. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member. */
  queue?: string;
  vm?: string;
  device?: string;
}

/** A live subscription. */
export interface BusSubscription {
  /** Stops delivery. */
  unsubscribe(): void;
  /** Resolves when the subscription has ended. */
  readonly closed: Promise<void>;
}

/**
 * Calls `handler` with each decoded message on `subject` (wildcards allowed).
 * Handlers run one at a time in arrival order per subscription only if they are
 * synchronous; async handlers are started in order and not awaited.
 */
export function subscribe<T>(
  core: BusCore,
  topic: Topic<T>,
  subject: string,
  handler: (value: T, ctx: MessageContext) => void | Promise<void>,
  opts: SubscribeOptions = {},
): BusSubscription {
  const sub: Subscription = core.nc.subscribe(subject, {
    queue: opts.queue,
    callback: (err, msg) => {
      if (err) {
        core.log(`bus: subscription ${subject}: ${err.message}`);
        return;
      }
      const parent = extractTraceContext(msg.headers);
      const span = startMessagingSpan(
        { subject: msg.subject, operation: "process", vm: opts.vm, device: opts.device },
        SpanKind.CONSUMER,
        parent,
      );
      const fail = (e: unknown) => {
        failSpan(span, e);
        core.log(`bus: ${msg.subject}: dropped message: ${(e as Error)?.message ?? e}`);
      };
      try {
        const value = topic.codec.decode(msg.data);
        const r = handler(value, {
          subject: msg.subject,
          headers: msg.headers,
          context: trace.setSpan(parent, span),
        });
        if (r instanceof Promise) r.catch(fail).finally(() => span.end());
        else span.end();
      } catch (e) {
        fail(e);
        span.end();
      }
    },
  });
  return {
    unsubscribe: () => sub.unsubscribe(),
    closed: sub.closed.then(() => {}, () => {}),
  };
}
