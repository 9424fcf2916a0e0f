/**
 * VM control contract (proto/vm.proto, package `vmesh.vm`). Served by the CPU
 * service on `vmesh.<vm>.ctl.<op>`; every op but `snapshot` and `migrate` replies with the
 * resulting status (they reply with a {@link SnapshotReply} / {@link MigrateReply}).
 *
 * @module
 */
import { defineOp, type Op } from "../contract.ts";

/** `vmesh.vm.State` values. */
export const State = {
  STATE_UNSPECIFIED: 0,
  CREATED: 1,
  RUNNING: 2,
  PAUSED: 3,
  STOPPED: 4,
  FAILED: 5,
} as const;

/** `vmesh.vm.Control`: the request of every control op. */
export interface Control {
  requestId?: string;
}
/** `vmesh.vm.DeviceStatus`. */
export interface DeviceStatus {
  device: string;
  kind: string;
  /** Subject prefix, e.g. "vmesh.vm1.disk0". */
  subject: string;
  connected: boolean;
}
/** `vmesh.vm.VmStatus`. pc and instret are bigint (full 64 bits). */
export interface VmStatus {
  /** A {@link State} value. */
  state: number;
  pc: bigint;
  instret: bigint;
  devices: DeviceStatus[];
}

const control = (name: string) =>
  defineOp<Control, VmStatus>(name, "vmesh.vm.Control", "vmesh.vm.VmStatus", {
    bigintReply: true,
  });

/** `vmesh.vm.SnapshotRequest`: store the VM in the memory service under `name`. */
export interface SnapshotRequest {
  requestId?: string;
  /** Manifest name; empty: "<vm>-<UTC time>". */
  name?: string;
  /** Where the disk services keep their points (on their hosts; empty: next to the overlays). */
  diskDir?: string;
}
/** `vmesh.vm.SnapshotReply`: what the snapshot stored and how long the guest was held. */
export interface SnapshotReply {
  name: string;
  /** RAM pages, and of them zero pages (not stored). */
  pages: number;
  zeroPages: number;
  /** Distinct non-zero pages, and those the store lacked (sent now). */
  distinctPages: number;
  sentPages: number;
  /** Page bytes sent (index pages and images included). */
  sentBytes: bigint;
  pausedMs: number;
  totalMs: number;
  vm: VmStatus | null;
}

/** `vmesh.vm.MigrateRequest`: move the CPU service to the `--incoming` one on host `to`. */
export interface MigrateRequest {
  requestId?: string;
  to: string;
  /** Downtime to aim at, ms (0: 30). */
  maxDowntimeMs?: number;
  /** Pre-copy rounds at most (0: 30). */
  maxRounds?: number;
  /** Also check a SHA-256 of the whole RAM on the target. */
  verify?: boolean;
}
/** `vmesh.vm.MigrateReply`: rounds, pages and bytes sent, downtime and total time. */
export interface MigrateReply {
  host: string;
  rounds: number;
  sentPages: number;
  sentBytes: bigint;
  finalPages: number;
  downtimeMs: number;
  totalMs: number;
  vm: VmStatus | null;
  /** Source paused to the target's run loop started, ms. */
  resumeMs: number;
  roundPages: number[];
  /** Source pause to finish sent, and the target's load, ms. */
  captureMs: number;
  targetLoadMs: number;
}

/** The control ops of a VM. */
export const ops: {
  start: Op<Control, VmStatus>;
  stop: Op<Control, VmStatus>;
  pause: Op<Control, VmStatus>;
  resume: Op<Control, VmStatus>;
  status: Op<Control, VmStatus>;
  snapshot: Op<SnapshotRequest, SnapshotReply>;
  migrate: Op<MigrateRequest, MigrateReply>;
} = {
  start: control("start"),
  stop: control("stop"),
  pause: control("pause"),
  resume: control("resume"),
  status: control("status"),
  // A retried request id must not store the VM twice.
  snapshot: defineOp("snapshot", "vmesh.vm.SnapshotRequest", "vmesh.vm.SnapshotReply", {
    bigintReply: true,
  }),
  // Never twice for one request id (the VM has moved).
  migrate: defineOp("migrate", "vmesh.vm.MigrateRequest", "vmesh.vm.MigrateReply", {
    bigintReply: true,
  }),
};
