/**
 * A device service: typed endpoints for a set of ops under one subject prefix,
 * registered with the NATS services framework (`$SRV.PING/INFO/STATS`).
 *
 * @module
 */
import { type Service, type ServiceInfo, type ServiceStats, Svcm } from "@nats-io/services";
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Ops, ReplyOf, RequestOf } from "./contract.ts";
import type { BusCore, Target } from "./core.ts";
import { type Handler, replyError, serveRequest } from "./endpoint.ts";
import { ReplayCache, type ReplayCacheOptions } from "./replay_cache.ts";
import { BusError, Status } from "./status.ts";
import { targetPrefix } from "./client.ts";
import { lastToken } from "./subjects.ts";
import { REQUEST_ID_HEADER } from "./headers.ts";
import { defaultRegistry, type Registry } from "./metrics.ts";
import { EndpointMetrics } from "./request_metrics.ts";

/** One handler per op of the contract. */
export type Handlers<O extends Ops> = {
  [K in keyof O]: Handler<RequestOf<O[K]>, ReplyOf<O[K]>>;
};

/** Options of {@link serve}. */
export interface ServiceOptions<O extends Ops> extends Target {
  /** Service name for discovery, e.g. `"vmesh-disk"` (letters, digits, `-`, `_`). */
  name: string;
  /** Semantic version, e.g. `"0.1.0"`. */
  version: string;
  description?: string;
  /** The ops served; every op gets an endpoint `<prefix>.<op>`. */
  ops: O;
  /** The handler of each op. */
  handlers: Handlers<O>;
  /** Largest accepted request payload; default the server's max_payload. */
  maxPayloadBytes?: number;
  /** Bounds of the replay cache for ops with `replay` set. */
  replayCache?: ReplayCacheOptions;
  /** Extra discovery metadata. */
  metadata?: Record<string, string>;
  /** Queue group of the endpoints (replicas share load). Default "q". */
  queue?: string;
  /** Where served requests are counted; default the process-wide {@link defaultRegistry}. */
  metrics?: Registry;
  /** Service-specific counters, reported as each endpoint's `data` in `$SRV.STATS`. */
  statsData?: () => unknown;
}

/** A running device service. */
export interface DeviceService {
  /** Subject prefix of the ops. */
  readonly prefix: string;
  /** The NATS service id (unique per instance). */
  readonly id: string;
  /** Discovery info, as `$SRV.INFO` answers it. */
  info(): ServiceInfo;
  /** Per-endpoint request counts and latencies. */
  stats(): Promise<ServiceStats>;
  /** Stops serving (unsubscribes; in-flight handlers finish). */
  stop(): Promise<void>;
}

/**
 * Starts serving `opts.ops` under the prefix (default `vmesh.<vm>.<device>`).
 * Requests to `<prefix>.<other>` get an UNKNOWN_OP error reply.
 */
export async function serve<O extends Ops>(
  core: BusCore,
  opts: ServiceOptions<O>,
): Promise<DeviceService> {
  const prefix = targetPrefix(opts);
  const maxPayloadBytes = opts.maxPayloadBytes ?? core.nc.info?.max_payload ?? 1 << 20;
  const replay = new ReplayCache(opts.replayCache);
  const metadata: Record<string, string> = { prefix, ...opts.metadata };
  if (opts.vm) metadata.vm = opts.vm;
  if (opts.device) metadata.device = opts.device;
  // @nats-io/services is built against an older nats-core; the connection is compatible.
  const svcm = new Svcm(core.nc as unknown as ConstructorParameters<typeof Svcm>[0]);
  const svc: Service = await svcm.add({
    name: opts.name,
    version: opts.version,
    description: opts.description ?? "",
    metadata,
    queue: opts.queue,
    statsHandler: opts.statsData ? () => Promise.resolve(opts.statsData!()) : undefined,
  });
  const registry = opts.metrics ?? defaultRegistry;
  const endpointMetrics = (op: string) =>
    new EndpointMetrics(registry, opts.name, opts.vm ?? "", opts.device ?? "", op);
  const known = new Set<string>();
  for (const [name, op] of Object.entries(opts.ops)) {
    const handler = opts.handlers[name];
    if (typeof handler !== "function") {
      await svc.stop();
      throw new TypeError(`service ${opts.name}: no handler for op ${name}`);
    }
    known.add(op.name);
    const cfg = {
      op,
      handler,
      maxPayloadBytes,
      replay,
      vm: opts.vm,
      device: opts.device,
      metrics: endpointMetrics(op.name),
    };
    svc.addEndpoint(op.name, {
      subject: `${prefix}.${op.name}`,
      metadata: { request: op.request.typeName, reply: op.reply.typeName },
      handler: (err, msg) => {
        if (err) return;
        void serveRequest(core, cfg, msg as unknown as Msg);
      },
    });
  }
  // Unknown ops are counted under one label value: the subject token is the caller's choice.
  const unknownMetrics = endpointMetrics("_unknown");
  // Requests for ops nobody serves would otherwise just time out at the caller.
  const guard: Subscription = core.nc.subscribe(`${prefix}.*`, {
    queue: `${opts.name}-unknown-op`,
    callback: (err, msg) => {
      if (err || !msg.reply || known.has(lastToken(msg.subject))) return;
      unknownMetrics.record("UNKNOWN_OP", msg.data.byteLength, 0, 0);
      replyError(
        core,
        msg,
        new BusError(
          Status.UNKNOWN_OP,
          `${opts.name} has no op ${lastToken(msg.subject)}`,
          msg.headers?.get(REQUEST_ID_HEADER) ?? "",
        ),
      );
    },
  });
  return {
    prefix,
    id: svc.info().id,
    info: () => svc.info(),
    stats: () => svc.stats(),
    async stop() {
      guard.unsubscribe();
      if (!svc.isStopped) await svc.stop();
    },
  };
}
