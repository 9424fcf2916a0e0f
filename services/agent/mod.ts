/**
 * @vmesh/agent — the host agent: capacity/load announcements and VM processes on request.
 * @module
 */
export { type AgentOptions, HostAgent, hostVmWire, MAX_HARTS, startVmFromWire } from "./agent.ts";
export * from "./messages.ts";
