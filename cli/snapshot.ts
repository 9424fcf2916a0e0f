/**
 * `./vmesh snapshot VM [--name N]`: asks VM's CPU service (`vmesh.<vm>.ctl.snapshot`) to store
 * the VM in the memory service, and prints what was stored and how long the guest was held.
 * @module
 */
import { BusError, checkToken, memory, MEMORY_PREFIX, vm as vmContract } from "@vmesh/bus";
import { resolve } from "node:path";
import { parseCommandArgs } from "./command_args.ts";
import {
  DEFAULT_SNAPSHOT_STORE,
  openSnapshotBusOrSay,
  type SnapshotBus,
  SnapshotCliError,
} from "./snapshot_bus.ts";
import { fetchManifest } from "./restored_vm.ts";
import { storeDiskLayer } from "./disk_layers.ts";
import { SnapshotError } from "../services/cpu/snapshot/mod.ts";

/** Where disk points go by default. */
const DEFAULT_DISK_DIR = `${DEFAULT_SNAPSHOT_STORE}/disks`;

/** `./vmesh snapshot --help`. */
export const SNAPSHOT_USAGE =
  `usage: ./vmesh snapshot VM [--name NAME] [--disk-dir DIR] [--store STORE]

Stores a snapshot of running VM VM: the guest is paused while each disk service
freezes a point of its disk (a read-only copy of its overlay) and every hart and
device record and RAM page is copied, then runs on while the RAM pages the memory
service lacks (zero pages and pages already stored are skipped) and a manifest
are stored.

  --name NAME         snapshot name ([A-Za-z0-9_.-], default VM-<UTC time>)
  --disk-dir DIR      where the disk services keep the disk points, on their host
                      (default .vmesh/snapshots/disks)
  --disk-layers       also store each disk's point and base image in the memory
                      service (64 KiB chunks, zero and stored ones skipped), so a
                      restore on a host without these files rebuilds them; reads
                      the files on this host: run it on the disk services' host
  --store STORE       the memory service's store when none runs on the bus
                      (default dir:.vmesh/snapshots)
  -h, --help          this text

Environment: NATS_URL (and VMESH_NATS_USER/VMESH_NATS_PASSWORD) name the VM's bus;
for ./vmesh boot, load the admin login file it prints: set -a; . FILE`;

const say = (l: string) => console.error(`vmesh snapshot: ${l}`);

/** Runs `./vmesh snapshot`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "snapshot",
    usage: SNAPSHOT_USAGE,
    args,
    options: {
      name: { type: "string" },
      "disk-dir": { type: "string" },
      "disk-layers": { type: "boolean", default: false },
      store: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    check({ positionals }) {
      if (positionals.length !== 1) throw new Error("give exactly one VM name");
      checkToken("vm", positionals[0]);
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  const vm = positionals[0];
  const sb = await openSnapshotBusOrSay({
    command: "snapshot",
    store: values.store,
    privateBus: false,
    say,
    fail: say,
  });
  if (!sb) return 1;
  try {
    const r = await sb.bus.request(
      { vm, device: "ctl" },
      vmContract.ops.snapshot,
      { name: values.name ?? "", diskDir: resolve(values["disk-dir"] ?? DEFAULT_DISK_DIR) },
      { timeoutMs: 600_000, retries: 0 },
    );
    const mib = (b: number) => (b / 1048576).toFixed(1);
    console.log(
      `${r.name}: ${r.pages} pages, ${r.zeroPages} zero, ${r.distinctPages} distinct ` +
        `(${mib(r.distinctPages * 4096)} MiB), ${r.sentPages} sent (${
          mib(Number(r.sentBytes))
        } MiB ` +
        `with index and images); guest held ${r.pausedMs.toFixed(0)} ms, ` +
        `took ${(r.totalMs / 1000).toFixed(2)} s`,
    );
    if (values["disk-layers"]) await storeLayers(sb, r.name);
    return 0;
  } catch (e) {
    if (e instanceof SnapshotCliError || e instanceof SnapshotError) {
      say(e.message);
      return 1;
    }
    if (e instanceof BusError) {
      say(
        /no service/.test(e.message)
          ? `no VM ${vm} answers on vmesh.${vm}.ctl (is it running on this bus?)`
          : e.message,
      );
      return 1;
    }
    throw e;
  } finally {
    await sb.close();
  }
}

/** Stores every disk point of snapshot `name` (and its base) as layers, then its manifest anew. */
async function storeLayers(sb: SnapshotBus, name: string): Promise<void> {
  const t0 = performance.now();
  const bus = sb.bus;
  const m = await fetchManifest(sb, name);
  const said: string[] = [];
  for (const d of m.disks ?? []) {
    const layer = async (path: string, what: string) => {
      try {
        const r = await storeDiskLayer(bus, path);
        said.push(
          `${d.device} ${what} ${r.chunks} chunks, ${r.sent} pages sent (${
            (r.sentBytes / 1048576).toFixed(1)
          } MiB, chunk map included)`,
        );
        return r.layer;
      } catch (e) {
        throw new SnapshotCliError(
          `snapshot ${name} is stored, but not the ${what} of disk ${d.device} (${path}: ` +
            `${(e as Error).message}): run ./vmesh snapshot on the disk service's host`,
        );
      }
    };
    d.baseLayer = await layer(d.image, "base");
    if (d.overlay !== d.image) d.pointLayer = await layer(d.overlay, "point");
  }
  await bus.request({ prefix: MEMORY_PREFIX }, memory.ops.put_manifest, { name, manifest: m }, {
    retries: 0,
  });
  console.log(
    `${name}: disk layers stored: ${said.join("; ") || "no disks"}; took ${
      ((performance.now() - t0) / 1000).toFixed(2)
    } s`,
  );
}
