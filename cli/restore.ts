/**
 * `./vmesh restore SNAP [--name NEW]`: runs a VM from a snapshot of the memory service. It
 * joins the bus at NATS_URL or starts a private one, starts the memory service when none
 * answers, then the VM's services (restored_vm.ts). The guest carries on where the snapshot
 * left it; `poweroff` in it, Ctrl-A x, or SIGINT/SIGTERM end the run.
 * @module
 */
import { parseArgs } from "node:util";
import { checkToken } from "@vmesh/bus";
import type { ServiceProcess } from "./service_process.ts";
import { openSnapshotBusOrSay, SnapshotCliError, stopSignals } from "./snapshot_bus.ts";
import { fetchManifest, startRestoredVm } from "./restored_vm.ts";

/** `./vmesh restore --help`. */
export const RESTORE_USAGE = `usage: ./vmesh restore SNAP [--name NEW] [options]

Runs a VM from snapshot SNAP (see ./vmesh snapshots): a new CPU service loads its
RAM, harts and devices and the guest carries on (its clock continues from the
snapshot). Each disk is served from the snapshot's point of it: a copy of the
frozen overlay over the same base image (the point itself stays as it is),
unless a disk service already serves it for NEW.

  --name NEW          the restored VM's name (default: the snapshot's VM)
  --console BACKEND   terminal (default), log:PATH or web:[HOST:]PORT (repeatable)
  --engine jit|interp execution engine (default: the snapshot's)
  --store STORE       the memory service's store when none runs on the bus
                      (default dir:.vmesh/snapshots)
  -v, --verbose       show every service's log lines
  -h, --help          this text

Environment: NATS_URL selects the bus (unset: a private nats-server).`;

const say = (l: string) => console.error(`vmesh restore: ${l}`);

/** Runs `./vmesh restore`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        name: { type: "string" },
        console: { type: "string", multiple: true },
        engine: { type: "string" },
        store: { type: "string" },
        verbose: { type: "boolean", short: "v", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    if (values.help) {
      console.log(RESTORE_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
    if (values.name !== undefined) checkToken("vm", values.name);
    if (values.engine !== undefined && !["jit", "interp"].includes(values.engine)) {
      throw new Error(`--engine must be jit or interp, got '${values.engine}'`);
    }
  } catch (e) {
    console.error(`vmesh restore: ${(e as Error).message} (see ./vmesh restore --help)`);
    return 2;
  }
  const snap = positionals[0];
  const sb = await openSnapshotBusOrSay({
    command: "restore",
    store: values.store,
    privateBus: true,
    say,
    fail: say,
  });
  if (!sb) return 1;
  const children: ServiceProcess[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-restore-" });
  const { signalled, remove: removeSignals } = stopSignals();
  try {
    const manifest = await fetchManifest(sb, snap);
    const vm = values.name ?? manifest.vm;
    const { cpu, console: consoleProc } = await startRestoredVm({
      sb,
      snap,
      manifest,
      vm,
      consoles: values.console?.length ? values.console : ["terminal"],
      runDir: tmp,
      engine: values.engine,
      verbose: values.verbose,
      say,
      children,
    });
    say(`VM ${vm} runs from snapshot ${snap}`);
    const code = await Promise.race([
      cpu.exited,
      consoleProc.exited.then(() => 0),
      signalled,
    ]);
    if (code !== 0 && cpu.done) { for (const l of cpu.tail.slice(-10)) say(`[vmesh-cpu] ${l}`); }
    return code;
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
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
