/**
 * The server's refusals, in the service's log: nats-server answers a publish or subscribe
 * outside a user's permissions (credentials.ts) with an asynchronous `-ERR 'Permissions
 * Violation ...'`, which the client reports only as a connection status. This logs each as one
 * line naming the user, the operation and the subject, so a misconfigured or hostile service
 * shows up in its own log and in its launcher's output.
 *
 * @module
 */
import { errors, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./core.ts";
import { PERMISSION_VIOLATION } from "./launch.ts";

export { PERMISSION_VIOLATION };

/** The log line of one refusal. */
export function permissionLine(
  who: string,
  operation: "publish" | "subscription",
  subject: string,
  queue?: string,
): string {
  const what = operation === "publish" ? "publish to" : "subscribe to";
  return `${who}: ${PERMISSION_VIOLATION}: may not ${what} ${subject}${
    queue ? ` (queue ${queue})` : ""
  }; the server refused it (see bus/credentials.ts for each role's subjects)`;
}

/**
 * Logs each permission violation the server reports on `nc` until it closes.
 *
 * ```ts
 * logPermissionErrors(bus.nc, console.error, "vmesh-disk.vm1.disk0 (user disk-vm1-disk0)");
 * ```
 */
export function logPermissionErrors(nc: NatsConnection, log: Logger, who: string): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof errors.PermissionViolationError) {
        log(permissionLine(who, s.error.operation, s.error.subject, s.error.queue));
      }
    }
  })();
}
