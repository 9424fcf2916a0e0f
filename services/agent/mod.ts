/**
 * @vmesh/agent — the host agent: capacity/load announcements and VM processes on request.
 * @module
 */
export { HostAgent, MAX_HARTS } from "./agent.ts";
export * from "./messages.ts";
