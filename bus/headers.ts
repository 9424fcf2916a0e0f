/**
 * NATS header names used on the vmesh bus (documented in proto/README.md).
 *
 * @module
 */

/** Request id; the same on every retry of one logical request. */
export const REQUEST_ID_HEADER = "vmesh-request-id";
/** Present on error replies; value is the status name. Payload is `vmesh.common.Error`. */
export const ERROR_HEADER = "vmesh-error";
/** W3C trace context header. */
export const TRACEPARENT_HEADER = "traceparent";
/** W3C trace state header. */
export const TRACESTATE_HEADER = "tracestate";
