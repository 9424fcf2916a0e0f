/**
 * What a launcher needs before it connects (`@vmesh/bus/launch`), without loading the NATS
 * client, protobufjs or OpenTelemetry: a private nats-server and its logins, the admin login
 * file, the children's lifelines, the marker of permission lines. `./vmesh boot` starts its
 * service processes with these and loads the rest of the package (`@vmesh/bus`) while they
 * start: each process pays its own module loading, so the launcher's need not come first.
 * @module
 */

export { BusCredentials, type BusRole } from "./credentials.ts";
export { type EmbeddedNats, startEmbeddedNats } from "./nats_server.ts";
export { writeAdminLogin } from "./admin_login.ts";
export { lifelineSpawnOptions } from "./lifeline.ts";

/** Every permission line contains this (launchers show such lines of their children). */
export const PERMISSION_VIOLATION = "bus permission violation";
