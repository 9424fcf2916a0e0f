/**
 * The CPU service's `--restore SNAP`: the VM service options rebuilt from a snapshot (RAM
 * size, harts, images, kernel command line, disks, network ports with their MACs, rng), its
 * clock resumed where the snapshot's stood, and the fetched snapshot to load.
 * @module
 */
import type { Bus } from "@vmesh/bus";
import type { VmServiceOptions } from "../vm_service.ts";
import type { EngineKind } from "../hart/mod.ts";
import { fetchSnapshot } from "./fetch_snapshot.ts";
import { ResumedClock } from "./resumed_clock.ts";
import { SnapshotError } from "./snapshot_error.ts";

/** Machine flags that `--restore` takes from the snapshot (giving them is refused). */
export const RESTORE_FIXED_FLAGS: readonly string[] = [
  "--memory",
  "-m",
  "--smp",
  "--bios",
  "--kernel",
  "--initrd",
  "--append",
  "--disk",
  "--nic",
  "--no-rng",
];

/** The first machine flag in `args` that `--restore` does not take, if any. */
export function conflictingRestoreFlag(args: string[]): string | undefined {
  return args.find((a) => RESTORE_FIXED_FLAGS.includes(a.split("=")[0]));
}

/**
 * Fetches snapshot `name` whole (a missing page or a bad manifest throws a SnapshotError
 * before anything is built) and returns the options of a VM service `vm` that starts from it.
 *
 * @example
 * ```ts
 * // const opts = await restoreOptions(bus, "vm1-20261203T094512Z", "vm1", { engine: "jit" });
 * // const vm = await VmService.create(bus, opts);
 * ```
 */
export async function restoreOptions(
  bus: Bus,
  name: string,
  vm: string,
  extra: {
    engine?: EngineKind;
    block?: VmServiceOptions["block"];
    version?: string;
    /** New MACs of the first NICs, in slot order (see `VmNic.newMac`). */
    newMacs?: string[];
  },
): Promise<VmServiceOptions> {
  const snap = await fetchSnapshot(bus, name);
  const f = snap.flags;
  const newMacs = extra.newMacs ?? [];
  if (newMacs.length > f.nics.length) {
    throw new SnapshotError(
      `it has ${f.nics.length} network port(s), and --new-mac was given ${newMacs.length} times`,
    );
  }
  const machine = {
    ramSize: f.ramSize,
    ...(f.harts !== undefined ? { harts: f.harts } : {}),
    engine: extra.engine ?? (f.engine as EngineKind | undefined),
    bios: snap.images.get("bios") ?? null,
    kernel: snap.images.get("kernel"),
    initrd: snap.images.get("initrd"),
    append: f.append,
    clock: new ResumedClock(snap.manifest.mtime ?? 0),
  };
  return {
    vm,
    machine,
    disks: f.disks.map((device) => ({ device })),
    nics: f.nics.map((n, i) => ({
      switch: n.switch,
      mac: n.mac,
      ...(newMacs[i] !== undefined ? { newMac: newMacs[i] } : {}),
    })),
    rng: f.rng,
    block: extra.block,
    version: extra.version,
    restore: snap,
  };
}
