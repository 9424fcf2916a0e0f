/**
 * VM control contract (proto/vm.proto, package `vmesh.vm`). Served by the CPU
 * service on `vmesh.<vm>.ctl.<op>`; every op replies with the resulting status.
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

/** The control ops of a VM. */
export const ops: {
  start: Op<Control, VmStatus>;
  stop: Op<Control, VmStatus>;
  pause: Op<Control, VmStatus>;
  resume: Op<Control, VmStatus>;
  status: Op<Control, VmStatus>;
} = {
  start: control("start"),
  stop: control("stop"),
  pause: control("pause"),
  resume: control("resume"),
  status: control("status"),
};
