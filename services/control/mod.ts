/**
 * @vmesh/control — the control service: VM records in JetStream, placement by load on the
 * hosts whose agents announce themselves, the ops of proto/control.proto on the bus, a REST
 * API and a web page.
 *
 * ```ts
 * import { ControlService } from "@vmesh/control";
 * const ctl = await ControlService.start(bus, { lostTimeoutMs: 5000 });
 * ```
 * @module
 */
export { type ControlOptions, ControlService, RESERVED_NAMES } from "./control_service.ts";
export {
  type Candidate,
  misfit,
  place,
  type Placement,
  type PlacementRequest,
} from "./placement.ts";
export { HostTable } from "./host_table.ts";
export {
  CasConflict,
  type ControlEvent,
  ControlStore,
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
} from "./store.ts";
export { controlRestApi } from "./rest_api.ts";
export { controlWebPage, type WebPageOptions } from "./web_page.ts";
export * from "./records.ts";
