/**
 * Placement: which host a VM goes to. Policy (README "Placement"):
 *
 * 1. Candidates are the hosts whose agent is up (announced within the lost timeout).
 * 2. A host fits when, with this VM added, the reserved harts stay within its cores, the
 *    reserved RAM within its RAM and the reserved disk within its disk (no overcommit), and
 *    no VM on it shares a value of one of this VM's anti-affinity label keys.
 * 3. Among the hosts that fit, the least loaded wins: the lowest dominant share after
 *    placement (the larger of reserved harts / cores and reserved RAM / RAM). Ties go to the
 *    lower measured CPU use (in steps of 0.1, so noise does not decide), then to the host
 *    with fewer VMs, then to the preferred host (a stopped VM's last host), then by name.
 * 4. When none fits, the refusal names, per host, the first reason it does not.
 * @module
 */

import type { control } from "@vmesh/bus";
import type { HostLedger } from "./records.ts";

/** A host as placement sees it. */
export interface Candidate {
  host: string;
  up: boolean;
  cores: number;
  ramMib: number;
  diskMib: number;
  cpuUse: number;
  ledger: HostLedger;
}

/** The VM to place. */
export interface PlacementRequest {
  name: string;
  quota: control.Quota;
  labels: Record<string, string>;
  antiAffinity: string[];
  /** Wins ties (a restarted VM's previous host, where its disk overlay is). */
  preferHost?: string;
}

/** The chosen host, or why none. */
export type Placement = { host: string; share: number } | { refusal: string };

/** Harts, RAM and disk reserved on a host by its ledger (other than `except`). */
export function reserved(ledger: HostLedger, except?: string): control.Quota {
  const sum = { harts: 0, ramMib: 0, diskMib: 0 };
  for (const [name, r] of Object.entries(ledger.vms)) {
    if (name === except) continue;
    sum.harts += r.quota.harts;
    sum.ramMib += r.quota.ramMib;
    sum.diskMib += r.quota.diskMib;
  }
  return sum;
}

/** Why `c` cannot take `req`, or undefined when it can. */
export function misfit(
  c: Candidate,
  req: PlacementRequest,
): string | undefined {
  if (!c.up) return "its agent is not announcing";
  const used = reserved(c.ledger, req.name);
  const q = req.quota;
  if (used.ramMib + q.ramMib > c.ramMib) {
    return `${c.ramMib - used.ramMib} of ${c.ramMib} MiB RAM unreserved, ${q.ramMib} asked`;
  }
  if (used.harts + q.harts > c.cores) {
    return `${c.cores - used.harts} of ${c.cores} cores unreserved, ${q.harts} harts asked`;
  }
  if (used.diskMib + q.diskMib > c.diskMib) {
    return `${c.diskMib - used.diskMib} of ${c.diskMib} MiB disk unreserved, ${q.diskMib} asked`;
  }
  for (const key of req.antiAffinity) {
    const value = req.labels[key];
    if (value === undefined) continue;
    const clash = Object.entries(c.ledger.vms).find(([n, r]) =>
      n !== req.name && r.labels[key] === value
    );
    if (clash) return `anti-affinity: VM ${clash[0]} there has ${key}=${value}`;
  }
  return undefined;
}

/** The dominant share of `c` with `req` added. */
function shareAfter(c: Candidate, req: PlacementRequest): number {
  const used = reserved(c.ledger, req.name);
  return Math.max(
    (used.harts + req.quota.harts) / c.cores,
    (used.ramMib + req.quota.ramMib) / c.ramMib,
  );
}

/**
 * Picks the host for `req` among `candidates` by the policy of this module.
 *
 * @example
 * ```ts
 * const p = place(hosts, { name: "vm1", quota: { harts: 1, ramMib: 256, diskMib: 0 }, labels: {}, antiAffinity: [] });
 * if ("refusal" in p) throw new Error(p.refusal);
 * ```
 */
export function place(
  candidates: Candidate[],
  req: PlacementRequest,
): Placement {
  const fits: { c: Candidate; share: number }[] = [];
  const why: string[] = [];
  for (const c of candidates) {
    const m = misfit(c, req);
    if (m) why.push(`${c.host}: ${m}`);
    else fits.push({ c, share: shareAfter(c, req) });
  }
  if (fits.length === 0) {
    const q = req.quota;
    const asked = `${q.harts} harts, ${q.ramMib} MiB RAM, ${q.diskMib} MiB disk`;
    return {
      refusal: candidates.length === 0
        ? `no host is up to place ${req.name} (${asked}): start a host agent (./vmesh agent)`
        : `no host fits ${req.name} (${asked}): ${why.join("; ")}`,
    };
  }
  const cpuStep = (c: Candidate) => Math.round(c.cpuUse * 10);
  const others = (c: Candidate, r: PlacementRequest) =>
    Object.keys(c.ledger.vms).filter((n) => n !== r.name).length;
  fits.sort((a, b) =>
    a.share - b.share ||
    cpuStep(a.c) - cpuStep(b.c) ||
    others(a.c, req) - others(b.c, req) ||
    Number(b.c.host === req.preferHost) - Number(a.c.host === req.preferHost) ||
    (a.c.host < b.c.host ? -1 : a.c.host > b.c.host ? 1 : 0)
  );
  return { host: fits[0].c.host, share: fits[0].share };
}
