/**
 * What every bus operation needs: the NATS connection and a logger.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";

/** Writes one log line (no trailing newline). */
export type Logger = (line: string) => void;

/** The default logger: one line on stderr. */
export const stderrLogger: Logger = (line: string): void => console.error(line);

/** A NATS connection plus the logger bus code reports problems to. */
export interface BusCore {
  /** The NATS connection. */
  readonly nc: NatsConnection;
  /** Where bus problems go, one line each. */
  readonly log: Logger;
}

/** Where a device's ops live: the subject prefix and, for spans, the vm and device. */
export interface Target {
  /** Subject prefix; ops are `<prefix>.<op>`. Default `vmesh.<vm>.<device>`. */
  prefix?: string;
  /** VM name (subject token and `vmesh.vm` span attribute). */
  vm?: string;
  /** Device name (subject token and `vmesh.device` span attribute). */
  device?: string;
}
