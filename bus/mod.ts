/**
 * @vmesh/bus — the shared bus package: typed protobuf contracts over NATS.
 *
 * - {@link connect}: a {@link Bus} on `$NATS_URL`, or on a private embedded nats-server.
 * - `bus.serve({ vm, device, name, version, ops, handlers })`: a device service whose
 *   handlers get decoded requests; bad requests get typed error replies; duplicate
 *   request ids of side-effecting ops are answered from a replay cache; listed by
 *   `$SRV.PING/INFO/STATS`.
 * - `bus.client({ vm, device }, ops).call(op, req, { timeoutMs, retries })`: typed
 *   request/reply with retries that keep the request id; failures are {@link BusError}s.
 * - `bus.publish(topic, subject, value)` / `bus.subscribe(topic, subject, handler)`.
 * - Contracts: `block`, `consoleMsgs`, `net`, `memory`, `vm`, `control`, `common` (types +
 *   ops/topics).
 * - {@link ServiceCli}, {@link untilSignal}: a service main.ts's flags, errors and `--http`.
 * - {@link watchLifeline}, {@link lifelineSpawnOptions}: children exit when their launcher dies.
 * - Subjects: {@link deviceSubject}, {@link consoleSubject}, {@link netPortSubject}, ...
 *
 * ```ts
 * import { block, connect } from "@vmesh/bus";
 * const bus = await connect({ name: "vmesh-disk" });
 * await bus.serve({
 *   vm: "vm1", device: "disk0", name: "vmesh-disk", version: "0.1.0", ops: block.ops,
 *   handlers: { info: () => ({ sizeBytes: 1 << 20, sectorSize: 512, readOnly: false, discard: false }),
 *     read: (r) => ({ data: new Uint8Array(r.length) }), ... },
 * });
 * const disk = bus.client({ vm: "vm1", device: "disk0" }, block.ops);
 * const { data } = await disk.call("read", { offset: 0, length: 512 }, { timeoutMs: 1000 });
 * ```
 *
 * @module
 */

export { Bus } from "./bus.ts";
export { connect, type ConnectOptions } from "./connect.ts";
export {
  type EmbeddedNats,
  type EmbeddedNatsOptions,
  type NatsHandle,
  processGone,
  startEmbeddedNats,
  withNats,
} from "./nats_server.ts";
export { type BusCore, type Logger, stderrLogger, type Target } from "./core.ts";
export {
  type CallOptions,
  type DeviceClient,
  deviceClient,
  request,
  targetPrefix,
} from "./client.ts";
export { type DeviceService, type Handlers, serve, type ServiceOptions } from "./service.ts";
export { Encoded, type Handler, type RequestContext } from "./endpoint.ts";
export {
  type BusSubscription,
  type MessageContext,
  publish,
  type PublishOptions,
  subscribe,
  type SubscribeOptions,
} from "./pubsub.ts";
export {
  defineOp,
  defineTopic,
  type Op,
  type OpOptions,
  type Ops,
  type ReplyOf,
  type RequestOf,
  type Topic,
} from "./contract.ts";
export {
  type Codec,
  codecFor,
  type CodecOptions,
  contracts,
  DEFAULT_PROTO_DIR,
  loadContracts,
  makeCodec,
} from "./codec.ts";
export {
  BusError,
  DecodeError,
  EncodeError,
  Status,
  type StatusCode,
  type StatusName,
  statusName,
} from "./status.ts";
export { ReplayCache, type ReplayCacheOptions } from "./replay_cache.ts";
export {
  ERROR_HEADER,
  REQUEST_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from "./headers.ts";
export {
  checkToken,
  consoleSubject,
  devicePrefix,
  deviceSubject,
  lastToken,
  MEMORY_PREFIX,
  memorySubject,
  netPortPrefix,
  netPortSubject,
  switchPrefix,
  vmControlPrefix,
} from "./subjects.ts";
export {
  extractTraceContext,
  injectTraceContext,
  messagingAttributes,
  spanName,
  startMessagingSpan,
  TRACER_NAME,
} from "./trace.ts";
export type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";
export type { ServiceInfo, ServiceStats } from "@nats-io/services";
export type { Context, Span } from "@opentelemetry/api";
export * as common from "./contracts/common.ts";
export * as block from "./contracts/block.ts";
export * as consoleMsgs from "./contracts/console.ts";
export * as net from "./contracts/net.ts";
export * as memory from "./contracts/memory.ts";
export * as vm from "./contracts/vm.ts";
export * as control from "./contracts/control.ts";
export * as migration from "./contracts/migration.ts";
export {
  collectProcessMetrics,
  Counter,
  defaultRegistry,
  EXPOSITION_CONTENT_TYPE,
  Gauge,
  Histogram,
  type Labels,
  LATENCY_BUCKETS,
  type Metric,
  Registry,
} from "./metrics.ts";
export { BUS_METRICS } from "./request_metrics.ts";
export {
  busHealth,
  controlApp,
  type ControlAppOptions,
  type ControlHttp,
  type Health,
  type HealthSource,
  HttpError,
  type ListenOptions,
  type MountedRoutes,
  parseHttpListen,
  serveControlHttp,
  startControlHttp,
} from "./control_http.ts";
export { type FlagValues, parsePositiveInt, ServiceCli, untilSignal } from "./service_main.ts";
export {
  findInPath,
  type Lifeline,
  LIFELINE_ENV,
  LIFELINE_EXIT_CODE,
  type LifelineSpawnOptions,
  lifelineSpawnOptions,
  parentPid,
  watchLifeline,
  type WatchLifelineOptions,
  withParentDeathSignal,
} from "./lifeline.ts";
export { makeOwnedTempDir, OWNER_FILE, removeStaleDirs } from "./owned_temp_dir.ts";
export {
  authorizationConfig,
  BusCredentials,
  type BusRole,
  type BusUser,
  type ConfigUser,
  credentialsFromEnv,
  inboxPrefix,
  PASSWORD_ENV,
  type Permissions,
  rolePermissions,
  roleUser,
  USER_ENV,
} from "./credentials.ts";
export { logPermissionErrors, PERMISSION_VIOLATION, permissionLine } from "./permission_log.ts";
export { readLogin, writeAdminLogin } from "./admin_login.ts";
export { serveSubjectOp, type SubjectOpOptions } from "./subject_op.ts";
export { type BusTlsFiles, CA_ENV, makeBusTls } from "./tls.ts";
