/**
 * `./vmesh import vm.tar [--name NEW]`: runs an appliance written by `./vmesh export` on this
 * host. The whole file is read and checked first (appliance_read.ts); a corrupt or truncated
 * one is refused with one line and nothing stored, written or started. Then its disk layers are
 * rebuilt (sparse, each chunk checked) as read-only files in --disk-dir, its pages and manifest
 * go to the memory service as a snapshot (the manifest's disk points naming the rebuilt files),
 * and the VM runs from it as `./vmesh restore` runs one (unless --no-run).
 * @module
 */
import { type Bus, BusError, checkToken, memory, MEMORY_PREFIX, Status } from "@vmesh/bus";
import { resolve } from "node:path";
import { storePages } from "../services/cpu/snapshot/page_client.ts";
import { SnapshotError } from "../services/cpu/snapshot/mod.ts";
import { checkEngine, parseCommandArgs } from "./command_args.ts";
import { DEFAULT_SNAPSHOT_STORE, SnapshotCliError, withSnapshotBus } from "./snapshot_bus.ts";
import { RESTORED_VM_FLAGS, RESTORED_VM_FLAGS_USAGE } from "./restored_vm.ts";
import { runRestored } from "./restore.ts";
import { ApplianceError, readAppliance } from "./appliance_read.ts";
import { rebuildLayer } from "./appliance_layout.ts";

/** `./vmesh import --help`. */
export const IMPORT_USAGE = `usage: ./vmesh import FILE [--name NEW] [--snapshot SNAP] [options]

Runs the appliance FILE (written by ./vmesh export) on this host. All of FILE is
checked first (tar headers, SHA256SUMS, every page and disk chunk); a corrupt or
truncated file is refused before anything is stored or run. Its disk layers are
rebuilt in DIR, its snapshot stored in the memory service as SNAP, and the VM runs
from it as ./vmesh restore runs one.

  --name NEW          the VM's name (default: the exported VM's)
  --snapshot SNAP     the snapshot's name here (default: its name in FILE)
  --disk-dir DIR      where the disk layers go (default .vmesh/snapshots/disks)
  --no-run            store the snapshot and disks only (./vmesh restore SNAP runs it)
  --console BACKEND   terminal (default), log:PATH or web:[HOST:]PORT (repeatable)
${RESTORED_VM_FLAGS_USAGE}`;

const say = (l: string) => console.error(`vmesh import: ${l}`);
const SNAP_NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** Runs `./vmesh import`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "import",
    usage: IMPORT_USAGE,
    args,
    options: {
      name: { type: "string" },
      snapshot: { type: "string" },
      "disk-dir": { type: "string" },
      "no-run": { type: "boolean", default: false },
      console: { type: "string", multiple: true },
      ...RESTORED_VM_FLAGS,
    },
    check({ values, positionals }) {
      if (positionals.length !== 1) throw new Error("give exactly one appliance file");
      if (values.name !== undefined) checkToken("vm", values.name);
      if (values.snapshot !== undefined && !SNAP_NAME.test(values.snapshot)) {
        throw new Error(`bad --snapshot ${JSON.stringify(values.snapshot)}: [A-Za-z0-9_.-]`);
      }
      checkEngine(values.engine);
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals: [file] } = parsed;
  const diskDir = resolve(values["disk-dir"] ?? `${DEFAULT_SNAPSHOT_STORE}/disks`);
  return await withSnapshotBus({ command: "import", store: values.store, say }, async (run) => {
    const t0 = performance.now();
    await Deno.mkdir(diskDir, { recursive: true });
    const staging = await Deno.makeTempDir({ dir: diskDir, prefix: ".import-" });
    const made: string[] = [];
    let snap: string, manifest: memory.SnapshotManifest;
    try {
      let a;
      try {
        a = await readAppliance(file, staging);
      } catch (e) {
        if (!(e instanceof ApplianceError)) throw e;
        throw new SnapshotCliError(`${file} is refused: ${e.message}; nothing was imported`);
      }
      snap = values.snapshot ?? a.snapshot.name;
      if (!SNAP_NAME.test(snap)) throw new SnapshotCliError(`bad snapshot name in ${file}`);
      await refuseExisting(run.sb.bus, snap);
      manifest = { ...a.snapshot.manifest!, disks: [] };
      for (const d of a.snapshot.manifest!.disks ?? []) {
        const target = (role: string) => `${diskDir}/${snap}.${d.device}.${role}`;
        const paths: Record<string, string> = {};
        for (const role of ["base", "point"] as const) {
          const layer = a.layers.get(`${d.device}.${role}`);
          if (!layer) continue;
          const final = role === "base" ? target("base") : target(`point.${d.backend}`);
          if (await Deno.lstat(final).then(() => true, () => false)) {
            throw new SnapshotCliError(`${final} exists already: give another --snapshot`);
          }
          const info = a.info.disks.find((x) => x.device === d.device)![role]!;
          const tmp = `${staging}/${d.device}.${role}`;
          try {
            await rebuildLayer(tmp, info, layer.map, layer.dataFile, `${role} of ${d.device}`);
          } catch (e) {
            throw new SnapshotCliError(
              `${file} is refused: ${(e as Error).message}; nothing was imported`,
            );
          }
          paths[role] = final;
          made.push(tmp, final);
        }
        manifest.disks!.push({
          ...d,
          image: paths.base,
          overlay: paths.point ?? paths.base,
        });
      }
      // Every check passed: the layers take their names, then the store gets the snapshot.
      for (let i = 0; i < made.length; i += 2) {
        await Deno.chmod(made[i], 0o444);
        await Deno.rename(made[i], made[i + 1]);
      }
      const sent = await storePages(run.sb.bus, a.pages);
      await run.sb.bus.request(
        { prefix: MEMORY_PREFIX },
        memory.ops.put_manifest,
        { name: snap, manifest },
        { retries: 0 },
      );
      const mib = (b: number) => (b / 1048576).toFixed(1);
      console.log(
        `imported ${file} as snapshot ${snap}: ${a.pages.size} pages (${sent.sent} new, ` +
          `${mib(sent.bytes)} MiB sent), ${manifest.disks!.length} disk(s) in ${diskDir}; took ` +
          `${((performance.now() - t0) / 1000).toFixed(2)} s`,
      );
      made.length = 0;
    } catch (e) {
      // Nothing half-imported: rebuilt layers go (the staging directory below).
      for (let i = 1; i < made.length; i += 2) await Deno.remove(made[i]).catch(() => {});
      if (e instanceof SnapshotError || e instanceof BusError) {
        throw new SnapshotCliError(e.message);
      }
      throw e;
    } finally {
      await Deno.remove(staging, { recursive: true }).catch(() => {});
    }
    if (values["no-run"]) return 0;
    return await runRestored(run, snap, manifest, {
      vm: values.name ?? manifest.vm,
      consoles: values.console?.length ? values.console : ["terminal"],
      engine: values.engine,
      verbose: values.verbose,
      say,
    });
  });
}

async function refuseExisting(bus: Bus, name: string): Promise<void> {
  try {
    await bus.request({ prefix: MEMORY_PREFIX }, memory.ops.get_manifest, { name }, {
      retries: 0,
    });
  } catch (e) {
    if (e instanceof BusError && e.code === Status.NOT_FOUND) return;
    throw e;
  }
  throw new SnapshotCliError(
    `a snapshot named ${name} exists already: give another --snapshot (./vmesh snapshots lists them)`,
  );
}
