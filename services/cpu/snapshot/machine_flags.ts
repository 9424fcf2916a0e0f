/**
 * The flags a snapshot's machine was built with (stored as JSON in the manifest), so a restore
 * rebuilds the same machine: RAM size, engine, kernel command line, disks, network ports, rng.
 * @module
 */
import { SnapshotError } from "./snapshot_error.ts";

/** How the snapshot's machine was built. */
export interface SnapshotMachineFlags {
  ramSize: number;
  /** Hart count (absent: 1). */
  harts?: number;
  engine?: string;
  append?: string;
  /** Disk service device names in slot order. */
  disks: string[];
  /** Switch ports with the MAC the guest knows. */
  nics: { switch: string; mac: string }[];
  rng: boolean;
}

/**
 * Parses and checks the manifest's `machine` JSON.
 *
 * @example
 * ```ts
 * const f = parseMachineFlags('{"ramSize":268435456,"disks":[],"nics":[],"rng":true}');
 * // f.ramSize === 268435456
 * ```
 */
export function parseMachineFlags(json: string | undefined): SnapshotMachineFlags {
  let v: unknown;
  try {
    v = JSON.parse(json ?? "");
  } catch (e) {
    throw new SnapshotError(`the manifest's machine flags are not JSON: ${(e as Error).message}`);
  }
  const f = v as Partial<SnapshotMachineFlags> | null;
  const bad = (what: string): never => {
    throw new SnapshotError(`the manifest's machine flags have no valid ${what}`);
  };
  if (typeof f !== "object" || f === null) return bad("object");
  if (!Number.isInteger(f.ramSize) || f.ramSize! <= 0 || f.ramSize! % 4096 !== 0) bad("ramSize");
  if (!Array.isArray(f.disks) || f.disks.some((d) => typeof d !== "string")) bad("disks");
  if (
    !Array.isArray(f.nics) ||
    f.nics.some((n) => typeof n?.switch !== "string" || typeof n?.mac !== "string")
  ) bad("nics");
  if (typeof f.rng !== "boolean") bad("rng");
  if (f.harts !== undefined && !(Number.isInteger(f.harts) && f.harts >= 1)) bad("harts");
  if (f.append !== undefined && typeof f.append !== "string") bad("append");
  if (f.engine !== undefined && typeof f.engine !== "string") bad("engine");
  return f as SnapshotMachineFlags;
}
