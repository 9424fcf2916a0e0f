/**
 * What the control service keeps in its JetStream KV bucket: one {@link VmRecord} per VM
 * (key `vm.<name>`) and one {@link HostLedger} per host (key `host.<host>`: the quotas
 * reserved on it, the compare-and-set point of placement). Both are JSON.
 * @module
 */

import { control } from "@vmesh/bus";

/** A VM state name of `control.VmState`. */
export type VmStateName = Exclude<
  keyof typeof control.VmState,
  "VM_STATE_UNSPECIFIED"
>;

/** States in which a VM holds its host's resources. */
export const ACTIVE_STATES: ReadonlySet<VmStateName> = new Set([
  "STARTING",
  "RUNNING",
]);

/** One VM as stored under `vm.<name>`. */
export interface VmRecord {
  name: string;
  state: VmStateName;
  /** Host it is placed on ("" when none). */
  host: string;
  quota: control.Quota;
  labels: Record<string, string>;
  antiAffinity: string[];
  boot: control.BootSpec;
  consoleUrl: string;
  exitCode: number;
  reason: string;
  createdMs: number;
  updatedMs: number;
  /** Where its console and disk services run, when not on `host` (it was live-migrated). */
  deviceHost?: string;
  /** The host a live migration in progress moves it to (its incoming CPU is no orphan). */
  migratingTo?: string;
}

/** What one VM reserves on a host, as its ledger keeps it. */
export interface Reservation {
  quota: control.Quota;
  labels: Record<string, string>;
}

/** The reservations on one host, stored under `host.<host>`. */
export interface HostLedger {
  vms: Record<string, Reservation>;
}

/** The most VMs one clone request (`vmesh.control.clone`) makes. */
export const MAX_CLONES = 64;

/** KV key of a VM record. */
export function vmKey(name: string): string {
  return `vm.${name}`;
}

/** KV key of a host ledger. */
export function ledgerKey(host: string): string {
  return `host.${host}`;
}

/** The wire form of a record at KV revision `revision`. */
export function vmInfo(r: VmRecord, revision: number): control.VmInfo {
  return {
    name: r.name,
    state: control.VmState[r.state],
    host: r.host,
    quota: r.quota,
    labels: r.labels,
    antiAffinity: r.antiAffinity,
    boot: r.boot,
    consoleUrl: r.consoleUrl,
    exitCode: r.exitCode,
    reason: r.reason,
    createdMs: r.createdMs,
    updatedMs: r.updatedMs,
    revision,
    deviceHost: r.deviceHost ?? "",
  };
}

const STATE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(control.VmState).map(([k, v]) => [v, k]),
);

/** A `control.VmState` number as its lower-case name ("running"), as the CLI shows it. */
export function stateLabel(state: number): string {
  return (STATE_NAMES[state] ?? `unknown(${state})`).toLowerCase();
}
