/**
 * Rebalancing: which VM to live-migrate off a host that stays overloaded, and where to. A pure
 * function; the control service measures, times and runs the moves (control_service.ts).
 * Policy (README "Rebalancing"):
 *
 * 1. A host's load is the CPU its VMs use (their CPU processes, as its agent measures them),
 *    in cores, over its cores. It is overloaded at `cpuThreshold` (default 0.9) or more; a host
 *    overloaded in every announcement for `afterMs` (default 30 s) has one VM moved off it.
 * 2. Movable: running, booted from its files (a VM restored from a snapshot has none to give
 *    the target), not moved in the last `cooldownMs` (default 5 min: no ping-pong).
 * 3. The busiest movable VM first (most CPU use; then least RAM, cheaper to move; then name),
 *    to the host placement picks among the up hosts, other than this one, whose load is below
 *    half the threshold and that fit the VM (placement's fit and anti-affinity, placement.ts).
 * @module
 */

import { type Candidate, place } from "./placement.ts";
import type { VmRecord } from "./records.ts";

/** The knobs of the policy. */
export interface RebalanceOptions {
  /** A host whose VMs use this share of its cores or more is overloaded (default 0.9). */
  cpuThreshold: number;
  /** For this long in a row before a VM moves (default 30000 ms). */
  afterMs: number;
  /** A VM moved is not moved again for this long (default 300000 ms). */
  cooldownMs: number;
}

/** The defaults of {@link RebalanceOptions}. */
export const REBALANCE_DEFAULTS: RebalanceOptions = {
  cpuThreshold: 0.9,
  afterMs: 30_000,
  cooldownMs: 300_000,
};

/** A host as rebalancing sees it: a placement candidate plus its VMs' CPU use. */
export interface LoadedHost extends Candidate {
  /** CPU use (cores) of each VM's CPU process, by name. */
  vmCpu: Record<string, number>;
}

/** A move: VM `vm` from host `from` to host `to`. */
export interface Move {
  vm: string;
  from: string;
  to: string;
  /** The source's load (its VMs' CPU over its cores). */
  load: number;
}

/** The CPU share of `h`'s cores its VMs use. */
export function hostLoad(h: LoadedHost): number {
  const used = Object.values(h.vmCpu).reduce((a, b) => a + b, 0);
  return h.cores > 0 ? used / h.cores : 0;
}

/**
 * The move for overloaded host `from` (the caller checked it stayed overloaded), or undefined
 * when no VM of it can go anywhere.
 *
 * @example
 * ```ts
 * const m = pickMove(hosts, "h1", records, new Map(), Date.now());
 * if (m) console.log(`${m.vm}: ${m.from} -> ${m.to}`);
 * ```
 */
export function pickMove(
  hosts: LoadedHost[],
  from: string,
  records: VmRecord[],
  movedAt: ReadonlyMap<string, number>,
  now: number,
  o: RebalanceOptions = REBALANCE_DEFAULTS,
): Move | undefined {
  const src = hosts.find((h) => h.host === from);
  if (!src) return undefined;
  const targets = hosts.filter((h) => h.up && h.host !== from && hostLoad(h) < o.cpuThreshold / 2);
  const movable = records
    .filter((r) =>
      r.state === "RUNNING" && r.host === from && !r.boot.snapshot &&
      now - (movedAt.get(r.name) ?? -Infinity) >= o.cooldownMs
    )
    .sort((a, b) =>
      (src.vmCpu[b.name] ?? 0) - (src.vmCpu[a.name] ?? 0) ||
      a.quota.ramMib - b.quota.ramMib ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    );
  for (const r of movable) {
    const p = place(targets, { ...r, preferHost: undefined });
    if ("host" in p) return { vm: r.name, from, to: p.host, load: hostLoad(src) };
  }
  return undefined;
}
