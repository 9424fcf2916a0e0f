/**
 * `./vmesh restore SNAP [--name NEW]`: runs a VM from a snapshot of the memory service. It
 * joins the bus at NATS_URL or starts a private one, starts the memory service when none
 * answers, then the VM's services (restored_vm.ts). The guest carries on where the snapshot
 * left it; `poweroff` in it, Ctrl-A x, or SIGINT/SIGTERM end the run.
 * @module
 */
import { checkToken, type memory } from "@vmesh/bus";
import { checkEngine, parseCommandArgs } from "./command_args.ts";
import { type SnapshotRun, withSnapshotBus } from "./snapshot_bus.ts";
import {
  fetchManifest,
  RESTORED_VM_FLAGS,
  RESTORED_VM_FLAGS_USAGE,
  startRestoredVm,
} from "./restored_vm.ts";

/** `./vmesh restore --help`. */
export const RESTORE_USAGE = `usage: ./vmesh restore SNAP [--name NEW] [options]

Runs a VM from snapshot SNAP (see ./vmesh snapshots): a new CPU service loads its
RAM, harts and devices and the guest carries on (its clock continues from the
snapshot). Each disk is served from the snapshot's point of it: a copy of the
frozen overlay over the same base image (the point itself stays as it is),
unless a disk service already serves it for NEW.

  --name NEW          the restored VM's name (default: the snapshot's VM)
  --console BACKEND   terminal (default), log:PATH or web:[HOST:]PORT (repeatable)
${RESTORED_VM_FLAGS_USAGE}`;

const say = (l: string) => console.error(`vmesh restore: ${l}`);

/** Runs `./vmesh restore`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "restore",
    usage: RESTORE_USAGE,
    args,
    options: {
      name: { type: "string" },
      console: { type: "string", multiple: true },
      ...RESTORED_VM_FLAGS,
    },
    check({ values, positionals }) {
      if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
      if (values.name !== undefined) checkToken("vm", values.name);
      checkEngine(values.engine);
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals: [snap] } = parsed;
  return await withSnapshotBus(
    { command: "restore", store: values.store, say },
    async (run) => {
      const manifest = await fetchManifest(run.sb, snap);
      return await runRestored(run, snap, manifest, {
        vm: values.name ?? manifest.vm,
        consoles: values.console?.length ? values.console : ["terminal"],
        engine: values.engine,
        verbose: values.verbose,
        say,
      });
    },
  );
}

/**
 * Runs VM `o.vm` from snapshot `snap` (its disks over copies of the points, in a temporary
 * directory removed at the end) until the CPU service or console ends or a signal comes;
 * returns the exit code. `./vmesh restore` and `./vmesh import` end this way.
 */
export async function runRestored(
  { sb, children, signalled }: SnapshotRun,
  snap: string,
  manifest: memory.SnapshotManifest,
  o: { vm: string; consoles: string[]; engine?: string; verbose: boolean; say(l: string): void },
): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-restore-" });
  try {
    const { cpu, console: consoleProc } = await startRestoredVm({
      sb,
      snap,
      manifest,
      vm: o.vm,
      consoles: o.consoles,
      runDir: tmp,
      engine: o.engine,
      verbose: o.verbose,
      say: o.say,
      children,
    });
    o.say(`VM ${o.vm} runs from snapshot ${snap}`);
    const code = await Promise.race([
      cpu.exited,
      consoleProc.exited.then(() => 0),
      signalled,
    ]);
    if (code !== 0 && cpu.done) {
      for (const l of cpu.tail.slice(-10)) o.say(`[vmesh-cpu] ${l}`);
    }
    return code;
  } finally {
    // The children go before the directory that holds their disks.
    for (const c of children.splice(0).reverse()) await c.stop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
