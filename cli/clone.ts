/**
 * `./vmesh clone SNAP --count N`: N VMs from one snapshot, each with its own name, console log
 * and copy of every disk point (so no clone sees another's writes, nor the snapshot), all
 * sharing the snapshot's stored pages. Runs until SIGINT/SIGTERM or until every clone stops.
 * @module
 */
import { parseArgs } from "node:util";
import { checkToken } from "@vmesh/bus";
import type { ServiceProcess } from "./service_process.ts";
import { openSnapshotBusOrSay, SnapshotCliError, stopSignals } from "./snapshot_bus.ts";
import { fetchManifest, snapshotSwitches, startRestoredVm } from "./restored_vm.ts";

/** `./vmesh clone --help`. */
export const CLONE_USAGE = `usage: ./vmesh clone SNAP --count N [--name PREFIX] [options]

Runs N VMs from snapshot SNAP (see ./vmesh snapshots), named PREFIX1..PREFIXN
(default SNAP's VM name + "-clone"). Each carries on from the snapshot with its own
copy of every disk point and its console in DIR/NAME.log. Snapshots of VMs with
network ports are refused: their guests would keep the snapshot's MAC address.

  --count N           how many clones (1 to 16)
  --name PREFIX       clone names: PREFIX1, PREFIX2, ...
  --run-dir DIR       console logs and disk copies (default: a new directory under
                      .vmesh/clones, kept after the run)
  --engine jit|interp execution engine (default: the snapshot's)
  --store STORE       the memory service's store when none runs on the bus
                      (default dir:.vmesh/snapshots)
  -v, --verbose       show every service's start
  -h, --help          this text

Environment: NATS_URL selects the bus (unset: a private nats-server).`;

const say = (l: string) => console.error(`vmesh clone: ${l}`);

/** Runs `./vmesh clone`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values, positionals, count: number;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        count: { type: "string" },
        name: { type: "string" },
        "run-dir": { type: "string" },
        engine: { type: "string" },
        store: { type: "string" },
        verbose: { type: "boolean", short: "v", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    if (values.help) {
      console.log(CLONE_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
    count = Number(values.count);
    if (!/^\d+$/.test(values.count ?? "") || count < 1 || count > 16) {
      throw new Error(`--count must be 1 to 16, got '${values.count ?? ""}'`);
    }
    if (values.name !== undefined) checkToken("vm", `${values.name}1`);
    if (values.engine !== undefined && !["jit", "interp"].includes(values.engine)) {
      throw new Error(`--engine must be jit or interp, got '${values.engine}'`);
    }
  } catch (e) {
    console.error(`vmesh clone: ${(e as Error).message} (see ./vmesh clone --help)`);
    return 2;
  }
  const snap = positionals[0];
  const sb = await openSnapshotBusOrSay({
    command: "clone",
    store: values.store,
    privateBus: true,
    say,
    fail: say,
  });
  if (!sb) return 1;
  const children: ServiceProcess[] = [];
  const { signalled, remove: removeSignals } = stopSignals();
  try {
    const manifest = await fetchManifest(sb, snap);
    if (snapshotSwitches(manifest).length) {
      throw new SnapshotCliError(
        `snapshot ${snap} has network ports: clones would share its MAC address (not supported yet)`,
      );
    }
    const runDir = values["run-dir"] ??
      await Deno.makeTempDir({
        dir: await Deno.mkdir(CLONES_DIR, { recursive: true }).then(() => CLONES_DIR),
        prefix: `${snap}-`,
      });
    await Deno.mkdir(runDir, { recursive: true });
    const prefix = values.name ?? `${manifest.vm}-clone`;
    const cpus: ServiceProcess[] = [];
    for (let i = 1; i <= count; i++) {
      const vm = `${prefix}${i}`;
      const log = `${runDir}/${vm}.log`;
      const { cpu } = await startRestoredVm({
        sb,
        snap,
        manifest,
        vm,
        consoles: [`log:${log}`],
        runDir,
        engine: values.engine,
        verbose: values.verbose,
        say,
        children,
      });
      cpus.push(cpu);
      say(`${vm} runs from snapshot ${snap}: console ${log}`);
    }
    say(`${count} clone(s) running; Ctrl-C stops them (logs and disks stay in ${runDir})`);
    return await Promise.race([
      Promise.all(cpus.map((c) => c.exited)).then((codes) => codes.find((c) => c !== 0) ?? 0),
      signalled,
    ]);
  } catch (e) {
    if (e instanceof SnapshotCliError) {
      say(e.message);
      return 1;
    }
    throw e;
  } finally {
    removeSignals();
    for (const c of children.reverse()) await c.stop();
    await sb.close();
  }
}

/** Where clone runs keep their logs and disks by default. */
const CLONES_DIR = new URL("../.vmesh/clones", import.meta.url).pathname;
