/**
 * One VM started from a snapshot, as `./vmesh restore` and `./vmesh clone` start it: its
 * console service, a disk service per disk over a copy of the snapshot's point of it (the
 * point itself never changes), the switches it lacks, then the CPU service with
 * `--restore SNAP`, which fetches and checks the whole snapshot before it runs anything.
 * @module
 */
import { BusError, memory, MEMORY_PREFIX } from "@vmesh/bus";
import type { ServiceProcess } from "./service_process.ts";
import { ping, type SnapshotBus, SnapshotCliError, startReady } from "./snapshot_bus.ts";
import { switchArgs } from "./vm_topology.ts";
import { fetchDiskLayer } from "./disk_layers.ts";

/** The flags `./vmesh restore` and `clone` share (parseArgs options). */
export const RESTORED_VM_FLAGS: {
  engine: { type: "string" };
  store: { type: "string" };
  verbose: { type: "boolean"; short: "v"; default: false };
  help: { type: "boolean"; short: "h"; default: false };
} = {
  engine: { type: "string" },
  store: { type: "string" },
  verbose: { type: "boolean", short: "v", default: false },
  help: { type: "boolean", short: "h", default: false },
};

/** The usage text's lines for {@link RESTORED_VM_FLAGS}, and the environment it reads. */
export const RESTORED_VM_FLAGS_USAGE: string =
  `  --engine jit|interp execution engine (default: the snapshot's)
  --store STORE       the memory service's store when none runs on the bus
                      (default dir:.vmesh/snapshots)
  -v, --verbose       show every service's start
  -h, --help          this text

Environment: NATS_URL selects the bus (unset: a private nats-server).`;

/** The manifest of snapshot `snap`; an unknown name is a SnapshotCliError saying so. */
export async function fetchManifest(
  sb: SnapshotBus,
  snap: string,
): Promise<memory.SnapshotManifest> {
  try {
    const { manifest } = await sb.bus.request(
      { prefix: MEMORY_PREFIX },
      memory.ops.get_manifest,
      { name: snap },
      { retries: 0 },
    );
    if (!manifest) throw new SnapshotCliError(`snapshot ${snap} has an empty manifest`);
    return manifest;
  } catch (e) {
    if (e instanceof BusError) {
      throw new SnapshotCliError(
        `${e.message.replace(/^no manifest/, "no snapshot")} (./vmesh snapshots lists them)`,
      );
    }
    throw e;
  }
}

/** The snapshot's network ports (switch and MAC), in slot order. */
export function snapshotNics(m: memory.SnapshotManifest): { switch: string; mac: string }[] {
  const flags = JSON.parse(m.machine || "{}") as { nics?: { switch: string; mac: string }[] };
  return flags.nics ?? [];
}

/** The switches of the snapshot's network ports. */
export function snapshotSwitches(m: memory.SnapshotManifest): string[] {
  return [...new Set(snapshotNics(m).map((n) => n.switch))];
}

/** How to start one VM from a snapshot. */
export interface RestoredVmOptions {
  sb: SnapshotBus;
  snap: string;
  manifest: memory.SnapshotManifest;
  /** The new VM's name. */
  vm: string;
  /** Console backends (terminal, log:PATH, web:...). */
  consoles: string[];
  /** Where the disk copies go. */
  runDir: string;
  engine?: string;
  verbose: boolean;
  say(line: string): void;
  /** Every process started is pushed here (so the caller stops them, last first). */
  children: ServiceProcess[];
  /** New MACs of the snapshot's NICs in slot order (the CPU service's --new-mac). */
  newMacs?: string[];
}

/** Starts VM `o.vm` from the snapshot; resolves once its CPU service is ready. */
export async function startRestoredVm(
  o: RestoredVmOptions,
): Promise<{ cpu: ServiceProcess; console: ServiceProcess }> {
  const { sb, vm } = o;
  if ((await ping(sb.bus, "vmesh-cpu")).some((p) => p.metadata?.vm === vm)) {
    throw new SnapshotCliError(`VM ${vm} already runs on this bus: give another --name`);
  }
  const spawn = async (
    label: string,
    service: string,
    a: string[],
    io: { stdin?: "inherit" | "null"; stdout?: "inherit" | "null" } = {},
  ) => {
    const p = await startReady(label, service, a, sb.url, io);
    o.children.push(p);
    if (o.verbose) o.say(`started ${label} (pid ${p.pid})`);
    return p;
  };
  const terminal = o.consoles.includes("terminal");
  const consoleProc = await spawn(
    `vmesh-console ${vm}`,
    "console",
    ["--vm", vm, ...o.consoles.flatMap((c) => ["--backend", c])],
    { stdin: terminal ? "inherit" : "null", stdout: terminal ? "inherit" : "null" },
  );
  const served = await ping(sb.bus, "vmesh-disk");
  for (const d of o.manifest.disks ?? []) {
    if (served.some((p) => p.metadata?.vm === vm && p.metadata?.device === d.device)) {
      o.say(`${vm} disk ${d.device}: served on the bus already`);
      continue;
    }
    if (!d.frozen) throw new SnapshotCliError(`the snapshot holds no point of disk ${d.device}`);
    const readOnly = d.overlay === d.image;
    const here = await exists(d.image) && (readOnly || await exists(d.overlay));
    let image = d.image, point = d.overlay, from = `the snapshot's point ${d.overlay}`;
    if (!here) {
      if (!d.baseLayer || (!readOnly && !d.pointLayer)) {
        throw new SnapshotCliError(
          `disk ${d.device}: ${readOnly ? d.image : d.overlay} is not on this host, and ` +
            `snapshot ${o.snap} holds no layers of it in the memory service (take snapshots ` +
            `with ./vmesh snapshot --disk-layers to restore them on other hosts)`,
        );
      }
      // One base per snapshot and disk in the run directory, shared by every VM made there.
      image = `${o.runDir}/${o.snap}.${d.device}.base`;
      if (!await exists(image)) {
        await fetchLayer(sb, d.baseLayer, image, `the base of disk ${d.device}`);
        await Deno.chmod(image, 0o444);
      }
      if (!readOnly) {
        point = `${o.runDir}/${o.snap}.${d.device}.point.${d.backend}`;
        if (!await exists(point)) {
          await fetchLayer(sb, d.pointLayer!, point, `the point of disk ${d.device}`);
          await Deno.chmod(point, 0o444);
        }
      }
      from = "layers from the memory service";
    }
    const a = ["--vm", vm, "--device", d.device, "--image", image];
    if (readOnly) a.push("--read-only");
    else {
      // The point stays as it is: this VM writes to its own copy.
      const copy = `${o.runDir}/${vm}.${d.device}.${d.backend}`;
      try {
        await Deno.copyFile(point, copy);
      } catch (e) {
        throw new SnapshotCliError(
          `disk ${d.device}: cannot copy its point ${point}: ${(e as Error).message}`,
        );
      }
      await Deno.chmod(copy, 0o644);
      a.push("--overlay", copy);
    }
    await spawn(`vmesh-disk ${vm}.${d.device}`, "disk", a);
    o.say(`${vm} disk ${d.device}: ${image} with a copy of ${from}`);
  }
  const nets = await ping(sb.bus, "vmesh-net");
  for (const sw of snapshotSwitches(o.manifest)) {
    if (nets.some((p) => p.metadata?.switch === sw)) continue;
    await spawn(`vmesh-net ${sw}`, "net", switchArgs(sw));
  }
  const cpuArgs = ["--vm", vm, "--restore", o.snap];
  if (o.engine) cpuArgs.push("--engine", o.engine);
  for (const mac of o.newMacs ?? []) cpuArgs.push("--new-mac", mac);
  const cpu = await spawn(`vmesh-cpu ${vm}`, "cpu", cpuArgs);
  return { cpu, console: consoleProc };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function fetchLayer(
  sb: SnapshotBus,
  layer: memory.DiskLayer,
  out: string,
  what: string,
): Promise<void> {
  try {
    await fetchDiskLayer(sb.bus, layer, out, what);
  } catch (e) {
    throw new SnapshotCliError(`cannot rebuild ${what}: ${(e as Error).message}`);
  }
}
