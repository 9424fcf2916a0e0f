/**
 * The agent's own view of its VMs and load (quotas in MiB as the CPU service's flags take
 * them). On the bus they travel as proto/control.proto messages (`control.StartVm`,
 * `control.HostVm`, `control.HostLoad`); agent.ts converts at the edge.
 * @module
 */
import type { control } from "@vmesh/bus";

/** Per-VM resources: what placement reserves on a host. */
export interface Quota {
  /** Harts (vCPUs): the CPU service's `--smp`, at most {@link MAX_HARTS} of agent.ts. */
  harts: number;
  /** Guest RAM in MiB (the CPU service's --memory: the guest cannot use more). */
  ramMiB: number;
  /** Disk size in MiB reserved on the host (recorded and placed; not enforced at run time). */
  diskMiB: number;
  /** Relative CPU weight (cgroup cpu.shares); absent: 1024 per hart. */
  cpuShares?: number;
}

/** What the agent boots: the wire `control.BootSpec`, its empty strings dropped (agent.ts). */
export type BootSpec = control.BootSpec;

/** One VM as its host agent sees it. */
export interface HostVm {
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  /**
   * running, or exited (the CPU process ended; exitCode says how), or migrated (its CPU
   * moved to host `migratedTo` by live migration; its device services run on here).
   */
  state: "running" | "exited" | "migrated";
  migratedTo?: string;
  /** CPU use of its CPU process over the last announcement interval, in cores. */
  cpuUse?: number;
  exitCode?: number;
  /** The VM's web terminal (console service web backend). */
  consoleUrl?: string;
  pids: number[];
}

/** Capacity and load of one host (sent as `control.HostLoad`). */
export interface HostLoad {
  host: string;
  labels: Record<string, string>;
  /** Advertised capacity (the real machine's unless the agent was told otherwise). */
  cores: number;
  ramMiB: number;
  diskMiB: number;
  /** Free RAM of the real machine (MemAvailable). */
  freeRamMiB: number;
  /** CPU use of the machine over the last interval, 0..1. */
  cpuUse: number;
  vms: HostVm[];
  /** Milliseconds since the epoch when this was sent. */
  at: number;
}

/** A start request (received as `control.StartVm`). */
export interface StartVm {
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  boot: BootSpec;
}
