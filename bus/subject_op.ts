/**
 * One op served on a subject pattern of its own, beside a service's prefix and without a
 * discovery entry: for ops whose subject names the caller, so that the server's permissions
 * (credentials.ts) decide who may call them. A switch serves `vmesh.net.<sw>.port.*.join`:
 * each CPU service may publish only to its own port's subject, and the handler checks that the
 * port in the subject is the port in the request. Same decoding, errors, replay and metrics as
 * {@link serve}'s endpoints.
 *
 * @module
 */
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Op } from "./contract.ts";
import type { BusCore } from "./core.ts";
import { type Handler, serveRequest } from "./endpoint.ts";
import { defaultRegistry, type Registry } from "./metrics.ts";
import { ReplayCache } from "./replay_cache.ts";
import { EndpointMetrics } from "./request_metrics.ts";

/** Options of {@link serveSubjectOp}. */
export interface SubjectOpOptions {
  /** Service name, for metrics labels and log lines. */
  service: string;
  /** Queue group (replicas share load). Default "q". */
  queue?: string;
  /** Largest accepted request payload; default the server's max_payload. */
  maxPayloadBytes?: number;
  vm?: string;
  device?: string;
  /** Where served requests are counted; default the process-wide registry. */
  metrics?: Registry;
}

/**
 * Serves `op` on `subject` (may contain `*`; the handler reads `ctx.subject`). Unsubscribe the
 * returned subscription to stop.
 *
 * ```ts
 * serveSubjectOp(bus, "vmesh.net.sw0.port.*.join", net.ops.join, (req, ctx) => {
 *   if (ctx.subject.split(".")[4] !== req.portId) throw new BusError(Status.INVALID_ARGUMENT, "");
 *   return { status: 0, mtu: 1500, agingMs: 30000 };
 * }, { service: "vmesh-net" });
 * ```
 */
export function serveSubjectOp<Req, Res>(
  core: BusCore,
  subject: string,
  op: Op<Req, Res>,
  handler: Handler<Req, Res>,
  opts: SubjectOpOptions,
): Subscription {
  const cfg = {
    op,
    handler,
    maxPayloadBytes: opts.maxPayloadBytes ?? core.nc.info?.max_payload ?? 1 << 20,
    replay: new ReplayCache(),
    vm: opts.vm,
    device: opts.device,
    metrics: new EndpointMetrics(
      opts.metrics ?? defaultRegistry,
      opts.service,
      opts.vm ?? "",
      opts.device ?? "",
      op.name,
    ),
  };
  return core.nc.subscribe(subject, {
    queue: opts.queue ?? "q",
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      void serveRequest(core, cfg, msg as Msg);
    },
  });
}
