/**
 * Messages between the host agent and the control service (proto/control.proto describes
 * them; they travel as JSON). Subjects: `vmesh.host.<host>.load` (published by the agent
 * every second), `vmesh.host.<host>.{start,stop,logs}` (request/reply, served by the agent).
 * @module
 */

/** Per-VM resources: what placement reserves on a host. */
export interface Quota {
  /** Harts (vCPUs). The CPU service runs one hart today: the agent refuses more. */
  harts: number;
  /** Guest RAM in MiB (the CPU service's --memory: the guest cannot use more). */
  ramMiB: number;
  /** Disk size in MiB reserved on the host (recorded and placed; not enforced at run time). */
  diskMiB: number;
}

/** What the agent boots: the files of `./vmesh boot` or of a bare-metal `./vmesh run`. */
export interface BootSpec {
  /** Firmware path, or "none" to start the kernel in M-mode (a bare-metal ELF). */
  bios: string;
  kernel: string;
  initrd?: string;
  append?: string;
  /** Data disk image, served by a disk service with a copy-on-write overlay. */
  disk?: string;
}

/** One VM as its host agent sees it. */
export interface HostVm {
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  /** running, or exited (the CPU process ended; exitCode says how). */
  state: "running" | "exited";
  exitCode?: number;
  /** The VM's web terminal (console service web backend). */
  consoleUrl?: string;
  pids: number[];
}

/** `vmesh.host.<host>.load`: capacity and load of one host. */
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

/** `vmesh.host.<host>.start` request. */
export interface StartVm {
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  boot: BootSpec;
}

/** `vmesh.host.<host>.stop` / `.logs` request. */
export interface NamedVm {
  name: string;
}

/** Reply of every agent op: ok, or an error that says why. */
export interface AgentReply {
  ok: boolean;
  error?: string;
  vm?: HostVm;
  /** For logs: the console output so far. */
  text?: string;
}

/** Subject of a host's op or load announcements. */
export function hostSubject(host: string, op: "load" | "start" | "stop" | "logs"): string {
  return `vmesh.host.${host}.${op}`;
}
