/**
 * One VM as service processes: which services (console, a disk per drive, a switch per
 * network, the CPU), their command lines, the bus role each connects as (bus/credentials.ts)
 * and how each announces itself on `$SRV.PING`. `./vmesh boot` and the host agent
 * (services/agent/vm_processes.ts) both start a VM from this one description.
 * @module
 */

import type { BusRole } from "@vmesh/bus";
import { formatNic, type NicSpec } from "../services/cpu/cli_flags.ts";

/** Subnet and gateway (DHCP server) of a switch that a launcher starts itself. */
export const DEFAULT_SUBNET = "10.0.2.0/24";
/** The gateway address on {@link DEFAULT_SUBNET}, as QEMU's user network uses. */
export const DEFAULT_GATEWAY = "10.0.2.2";

/** A disk of the VM: an image served by one disk service. */
export interface VmDrive {
  path: string;
  readOnly?: boolean;
  /** raw or qcow2 (default: the disk service's guess). */
  format?: string;
  /** Copy-on-write overlay file: the image stays unchanged. */
  overlay?: string;
}

/** What a VM is made of. */
export interface VmSpec {
  name: string;
  /** Console backends (`terminal`, `log:PATH`, `web:HOST:PORT`). */
  consoles: string[];
  /** Disks, named disk0, disk1, ... in this order. */
  drives: VmDrive[];
  /** Network ports: one switch service per distinct switch (a launcher may find it running). */
  nics: NicSpec[];
  /** `--memory` value of the CPU service, e.g. `256M`. */
  memory: string;
  /** Number of harts (`--smp`), default 1. */
  smp?: number;
  /** Each hart in its own thread in the CPU service (`--smp-threads`). */
  smpThreads?: boolean;
  engine?: string;
  /** Firmware path, or "none" (the kernel runs in M-mode). */
  bios: string;
  kernel: string;
  initrd?: string;
  append?: string;
  /** The CPU service's `--gdb` address, and whether its harts wait for gdb (`--wait-gdb`). */
  gdb?: string;
  waitGdb?: boolean;
  /** The CPU service records the run there (`--record`), checkpoints every N instructions. */
  record?: string;
  checkpointEvery?: number;
}

/** How a service answers `$SRV.PING`: its name and one metadata key with its value. */
export interface Registration {
  name: string;
  key: string;
  value: string;
}

/** One service process of a VM. */
export interface ServiceLaunch {
  /** For messages, e.g. `vmesh-disk disk0`. */
  label: string;
  /** services/<service>/main.ts. */
  service: "console" | "disk" | "net" | "cpu";
  args: string[];
  /** Who it is on the bus: its credentials allow only this role's subjects. */
  role: BusRole;
  registration: Registration;
}

/** The processes of one VM, in start order: devices, then the CPU once they registered. */
export interface VmTopology {
  console: ServiceLaunch;
  disks: ServiceLaunch[];
  switches: ServiceLaunch[];
  cpu: ServiceLaunch;
  /** The launcher's own role: waits for registrations, watches the console, stops the VM. */
  launcher: BusRole;
}

/**
 * The net service's flags for switch `sw` as a launcher starts it: QEMU user networking's
 * addresses, so `udhcpc` in the guest just works.
 * @example
 * ```ts
 * switchArgs("lan"); // ["--switch", "lan", "--subnet", "10.0.2.0/24", "--gateway", "10.0.2.2"]
 * ```
 */
export function switchArgs(sw: string): string[] {
  return ["--switch", sw, "--subnet", DEFAULT_SUBNET, "--gateway", DEFAULT_GATEWAY];
}

/** The switch port the CPU service opens for its `i`-th nic (services/cpu/vm_service.ts). */
export function nicPort(vm: string, i: number): string {
  return `${vm}-net${i}`;
}

/**
 * The service processes of `spec`.
 *
 * ```ts
 * const t = vmTopology({ name: "vm1", consoles: ["terminal"], drives: [{ path: "d.img" }],
 *   nics: [], memory: "256M", bios: "none", kernel: "k.elf" });
 * t.disks[0].args; // ["--vm", "vm1", "--device", "disk0", "--image", "d.img"]
 * ```
 */
export function vmTopology(spec: VmSpec): VmTopology {
  const vm = spec.name;
  const console: ServiceLaunch = {
    label: "vmesh-console",
    service: "console",
    args: ["--vm", vm, ...spec.consoles.flatMap((c) => ["--backend", c])],
    role: { kind: "console", vm },
    registration: { name: "vmesh-console", key: "vm", value: vm },
  };
  const disks = spec.drives.map((d, i): ServiceLaunch => {
    const device = `disk${i}`;
    const args = ["--vm", vm, "--device", device, "--image", d.path];
    if (d.readOnly) args.push("--read-only");
    if (d.format) args.push("--format", d.format);
    if (d.overlay) args.push("--overlay", d.overlay);
    return {
      label: `vmesh-disk ${device}`,
      service: "disk",
      args,
      role: { kind: "disk", vm, device },
      registration: { name: "vmesh-disk", key: "device", value: device },
    };
  });
  const switches = [...new Set(spec.nics.map((n) => n.switch))].map((sw): ServiceLaunch => ({
    label: `vmesh-net ${sw}`,
    service: "net",
    args: switchArgs(sw),
    role: { kind: "switch", switch: sw },
    registration: { name: "vmesh-net", key: "switch", value: sw },
  }));
  const deviceNames = disks.map((d) => (d.role as { device: string }).device);
  const cpu: ServiceLaunch = {
    label: "vmesh-cpu",
    service: "cpu",
    args: [
      "--vm",
      vm,
      "--memory",
      spec.memory,
      ...(spec.smp && spec.smp > 1 ? ["--smp", String(spec.smp)] : []),
      ...(spec.smpThreads ? ["--smp-threads"] : []),
      ...(spec.engine ? ["--engine", spec.engine] : []),
      "--bios",
      spec.bios,
      "--kernel",
      spec.kernel,
      ...(spec.append !== undefined ? ["--append", spec.append] : []),
      ...(spec.initrd ? ["--initrd", spec.initrd] : []),
      ...deviceNames.flatMap((d) => ["--disk", d]),
      ...spec.nics.flatMap((n) => ["--nic", formatNic(n)]),
      ...(spec.gdb ? ["--gdb", spec.gdb] : []),
      ...(spec.waitGdb ? ["--wait-gdb"] : []),
      ...(spec.record ? ["--record", spec.record] : []),
      ...(spec.checkpointEvery ? ["--checkpoint-every", String(spec.checkpointEvery)] : []),
    ],
    role: {
      kind: "cpu",
      vm,
      disks: deviceNames,
      ports: spec.nics.map((n, i) => ({ switch: n.switch, port: nicPort(vm, i) })),
    },
    registration: { name: "vmesh-cpu", key: "vm", value: vm },
  };
  return { console, disks, switches, cpu, launcher: { kind: "launcher", vm } };
}
