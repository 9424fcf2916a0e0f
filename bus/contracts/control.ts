/**
 * Control-plane contract (proto/control.proto, package `vmesh.control`): the control
 * service's ops on `vmesh.control.<op>`, a host agent's ops on `vmesh.host.<host>.<op>` and
 * its load announcements on `vmesh.host.<host>.load`.
 *
 * ```ts
 * import { connect, control } from "@vmesh/bus";
 * const bus = await connect();
 * const ctl = bus.client({ prefix: control.CONTROL_PREFIX }, control.ops);
 * const { vms } = await ctl.call("list", { labels: {} });
 * ```
 *
 * @module
 */
import { defineOp, defineTopic, type Op, type Topic } from "../contract.ts";
import { checkToken } from "../subjects.ts";

/** Prefix of the control service's ops. */
export const CONTROL_PREFIX = "vmesh.control";

/** Prefix of host `host`'s agent ops: `vmesh.host.<host>`. */
export function hostPrefix(host: string): string {
  return `vmesh.host.${checkToken("host", host)}`;
}

/** Subject of host `host`'s load announcements: `vmesh.host.<host>.load`. */
export function hostLoadSubject(host: string): string {
  return `${hostPrefix(host)}.load`;
}

/** Subscription to every host's load announcements. */
export const ALL_HOST_LOADS = "vmesh.host.*.load";

/** `vmesh.control.VmState` values. */
export const VmState = {
  VM_STATE_UNSPECIFIED: 0,
  STARTING: 1,
  RUNNING: 2,
  STOPPED: 3,
  EXITED: 4,
  LOST: 5,
  FAILED: 6,
} as const;

/** `vmesh.control.Quota`. */
export interface Quota {
  harts: number;
  ramMib: number;
  diskMib: number;
  /** cgroup cpu.shares; 0 or absent: 1024 per hart. */
  cpuShares?: number;
}
/**
 * `vmesh.control.BootSpec`, what the agent boots: the files of `./vmesh boot` or of a
 * bare-metal `./vmesh run`; empty strings mean "none".
 */
export interface BootSpec {
  /** Firmware path, or "none" to start the kernel in M-mode (a bare-metal ELF). */
  bios: string;
  kernel: string;
  initrd?: string;
  append?: string;
  /** Data disk image, served by a disk service with a copy-on-write overlay. */
  disk?: string;
  /** A memory-service snapshot to restore (the CPU service's `--restore`); the files are unused. */
  snapshot?: string;
}
/** `vmesh.control.VmInfo`. */
export interface VmInfo {
  name: string;
  /** A {@link VmState} value. */
  state: number;
  host: string;
  quota: Quota;
  labels: Record<string, string>;
  antiAffinity: string[];
  boot: BootSpec;
  consoleUrl: string;
  exitCode: number;
  reason: string;
  createdMs: number;
  updatedMs: number;
  revision: number;
  /** Where its console and disk services run when not on `host` (after a live migration). */
  deviceHost?: string;
}
/** `vmesh.control.CreateVm`. */
export interface CreateVm {
  requestId?: string;
  name: string;
  quota: Quota;
  boot: BootSpec;
  labels?: Record<string, string>;
  antiAffinity?: string[];
}
/** `vmesh.control.VmRef`. */
export interface VmRef {
  requestId?: string;
  name: string;
  force?: boolean;
}
/** `vmesh.control.ListVms`. */
export interface ListVms {
  requestId?: string;
  labels?: Record<string, string>;
}
/** `vmesh.control.VmList`. */
export interface VmList {
  vms: VmInfo[];
}
/** `vmesh.control.Logs`. */
export interface Logs {
  text: string;
}
/** `vmesh.control.ListHosts`. */
export interface ListHosts {
  requestId?: string;
}
/** What {@link HostInfo} and {@link HostLoad} both say of a host: capacity and load. */
export interface HostCapacity {
  host: string;
  labels: Record<string, string>;
  cores: number;
  ramMib: number;
  diskMib: number;
  freeRamMib: number;
  cpuUse: number;
}
/** `vmesh.control.HostInfo`. */
export interface HostInfo extends HostCapacity {
  reserved: Quota;
  vms: number;
  up: boolean;
  lastSeenMs: number;
}
/** `vmesh.control.HostList`. */
export interface HostList {
  hosts: HostInfo[];
}
/** `vmesh.control.ListEvents`. */
export interface ListEvents {
  requestId?: string;
  vm?: string;
  max?: number;
}
/** `vmesh.control.Event`: one entry of the events stream. */
export interface Event {
  atMs: number;
  vm: string;
  type: string;
  host: string;
  detail: string;
}
/** `vmesh.control.EventList`, oldest first. */
export interface EventList {
  events: Event[];
}
/** `vmesh.control.CloneVms`: `count` VMs from snapshot `snapshot`, all placed or none. */
export interface CloneVms {
  requestId?: string;
  snapshot: string;
  count: number;
  /** Names `prefix`1..`prefix`N; empty: the snapshot's VM name + "-clone". */
  prefix?: string;
  labels?: Record<string, string>;
  antiAffinity?: string[];
  cpuShares?: number;
}
/** `vmesh.control.SnapshotVm`: snapshot VM `name` (its disk points as layers with `diskLayers`). */
export interface SnapshotVm {
  requestId?: string;
  name: string;
  /** Snapshot name; empty: "<vm>-<UTC time>". */
  snapshot?: string;
  diskLayers?: boolean;
}
/** `vmesh.control.SnapshotInfo`: what the control service's `snapshot` stored. */
export interface SnapshotInfo {
  snapshot: string;
  vm: string;
  host: string;
  pages: number;
  sentPages: number;
  sentBytes: number;
  pausedMs: number;
  totalMs: number;
  layerBytes: number;
  layerDisks: string[];
}
/** `vmesh.control.StoreLayers`: an agent stores snapshot `snapshot`'s disk points as layers. */
export interface StoreLayers {
  requestId?: string;
  snapshot: string;
}
/** `vmesh.control.LayersStored`. */
export interface LayersStored {
  disks: string[];
  sentBytes: number;
}
/** `vmesh.control.StartVm`: the agent's start request. */
export interface StartVm {
  requestId?: string;
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  boot: BootSpec;
}
/** `vmesh.control.HostVm`: one VM as its agent sees it. */
export interface HostVm {
  name: string;
  quota: Quota;
  labels: Record<string, string>;
  running: boolean;
  exitCode: number;
  consoleUrl: string;
  pids: number[];
  /** Its CPU moved there by live migration; its device services still run on this host. */
  migratedTo?: string;
  /** CPU use of its CPU process over the last interval, in cores. */
  cpuUse?: number;
}
/** `vmesh.control.HostLoad`: a host agent's announcement. */
export interface HostLoad extends HostCapacity {
  vms: HostVm[];
  atMs: number;
}

const op = <Req, Res>(name: string, req: string, res: string, replay = true) =>
  defineOp<Req, Res>(name, `vmesh.control.${req}`, `vmesh.control.${res}`, { replay });

/** The control service's ops (prefix {@link CONTROL_PREFIX}). */
export const ops: {
  create: Op<CreateVm, VmInfo>;
  /** N VMs from one snapshot, placed by capacity; all or none. */
  clone: Op<CloneVms, VmList>;
  /** A running VM's snapshot through its CPU service (and its disk layers through its agent). */
  snapshot: Op<SnapshotVm, SnapshotInfo>;
  list: Op<ListVms, VmList>;
  inspect: Op<VmRef, VmInfo>;
  stop: Op<VmRef, VmInfo>;
  start: Op<VmRef, VmInfo>;
  rm: Op<VmRef, VmInfo>;
  logs: Op<VmRef, Logs>;
  hosts: Op<ListHosts, HostList>;
  events: Op<ListEvents, EventList>;
} = {
  create: op("create", "CreateVm", "VmInfo"),
  clone: op("clone", "CloneVms", "VmList"),
  snapshot: op("snapshot", "SnapshotVm", "SnapshotInfo"),
  list: op("list", "ListVms", "VmList", false),
  inspect: op("inspect", "VmRef", "VmInfo", false),
  stop: op("stop", "VmRef", "VmInfo"),
  start: op("start", "VmRef", "VmInfo"),
  rm: op("rm", "VmRef", "VmInfo"),
  logs: op("logs", "VmRef", "Logs", false),
  hosts: op("hosts", "ListHosts", "HostList", false),
  events: op("events", "ListEvents", "EventList", false),
};

/** A host agent's ops (prefix {@link hostPrefix}). */
export const agentOps: {
  start: Op<StartVm, HostVm>;
  /** Starts only the VM's CPU service, with `--incoming`: the target of a live migration. */
  incoming: Op<StartVm, HostVm>;
  stop: Op<VmRef, HostVm>;
  rm: Op<VmRef, HostVm>;
  logs: Op<VmRef, Logs>;
  /** Stores a snapshot's disk points (files on this host) as layers of the memory service. */
  layers: Op<StoreLayers, LayersStored>;
} = {
  start: op("start", "StartVm", "HostVm"),
  incoming: op("incoming", "StartVm", "HostVm"),
  stop: op("stop", "VmRef", "HostVm"),
  rm: op("rm", "VmRef", "HostVm"),
  logs: op("logs", "VmRef", "Logs", false),
  layers: op("layers", "StoreLayers", "LayersStored"),
};

/** Topic of host load announcements. */
export const hostLoad: Topic<HostLoad> = defineTopic<HostLoad>("vmesh.control.HostLoad");
