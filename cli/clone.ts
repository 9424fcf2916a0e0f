/**
 * `./vmesh clone SNAP --count N`: N VMs from one snapshot, each with its own name, console log
 * and copy of every disk point (so no clone sees another's writes, nor the snapshot), its own
 * MAC on each network port (`stableMac(name, index)`, applied by the CPU service's
 * `--new-mac` with a link bounce), all sharing the snapshot's stored pages. Runs until SIGINT/SIGTERM or until every clone stops.
 * @module
 */
import { checkToken } from "@vmesh/bus";
import type { ServiceProcess } from "./service_process.ts";
import { checkEngine, parseCommandArgs } from "./command_args.ts";
import { besideUp, clonePlaced } from "./clone_placed.ts";
import { MAX_CLONES } from "../services/control/records.ts";
import { SnapshotCliError, withSnapshotBus } from "./snapshot_bus.ts";
import {
  fetchManifest,
  RESTORED_VM_FLAGS,
  RESTORED_VM_FLAGS_USAGE,
  snapshotNics,
  startRestoredVm,
} from "./restored_vm.ts";
import { stableMac } from "../services/net/mod.ts";

/** `./vmesh clone --help`. */
export const CLONE_USAGE = `usage: ./vmesh clone SNAP --count N [--name PREFIX] [options]

Runs N VMs from snapshot SNAP (see ./vmesh snapshots), named PREFIX1..PREFIXN
(default SNAP's VM name + "-clone"). Each carries on from the snapshot with its own
copy of every disk point and its console in DIR/NAME.log. Each network port of a
clone gets its own MAC (from the clone's name and the port's index) and joins its
switch with it; the guest is told by a link bounce (the vmesh guest then probes the
NIC again and, if it had an IPv4 address, takes a new DHCP lease).

With --control (the default beside a running ./vmesh up, when NATS_URL is unset),
the control service makes them instead: each placed on the host that fits best
(as ./vmesh create places one), all or none; it prints NAME HOST per clone and
returns once all run (they run on; ./vmesh ls, logs, rm -f manage them); it refuses
snapshots of VMs with network ports for now (no new MACs there yet).

  --count N           how many clones (1 to 16; 1 to 64 with --control)
  --name PREFIX       clone names: PREFIX1, PREFIX2, ...
  --control           through the control service on NATS_URL (./vmesh control)
  --local             here, as child processes, even beside ./vmesh up
  -l, --label K=V     with --control: a label on each clone (repeatable)
  --anti-affinity K   with --control: never two on a host with the same value of
                      label K (repeatable)
  -o, --output json   with --control: print the clones' records as JSON
  --run-dir DIR       console logs and disk copies (default: a new directory under
                      .vmesh/clones, kept after the run)
${RESTORED_VM_FLAGS_USAGE}`;

const say = (l: string) => console.error(`vmesh clone: ${l}`);

/** Runs `./vmesh clone`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "clone",
    usage: CLONE_USAGE,
    args,
    options: {
      count: { type: "string" },
      name: { type: "string" },
      "run-dir": { type: "string" },
      control: { type: "boolean", default: false },
      local: { type: "boolean", default: false },
      label: { type: "string", short: "l", multiple: true },
      "anti-affinity": { type: "string", multiple: true },
      output: { type: "string", short: "o" },
      ...RESTORED_VM_FLAGS,
    },
    check({ values, positionals }) {
      if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
      if (values.control && values.local) throw new Error("--control or --local, not both");
      const count = Number(values.count);
      const max = values.control ? MAX_CLONES : 16;
      if (!/^\d+$/.test(values.count ?? "") || count < 1 || count > max) {
        throw new Error(`--count must be 1 to ${max}, got '${values.count ?? ""}'`);
      }
      if (values.output !== undefined && values.output !== "json") {
        throw new Error(`--output takes json, got '${values.output}'`);
      }
      for (const l of values.label ?? []) {
        if (l.indexOf("=") <= 0) throw new Error(`--label needs KEY=VALUE, got '${l}'`);
      }
      if (values.name !== undefined) checkToken("vm", `${values.name}1`);
      checkEngine(values.engine);
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals: [snap] } = parsed;
  const count = Number(values.count);
  if (values.control || (!values.local && await besideUp())) {
    return await clonePlaced({
      snapshot: snap,
      count,
      prefix: values.name,
      labels: Object.fromEntries((values.label ?? []).map((l) => {
        const i = l.indexOf("=");
        return [l.slice(0, i), l.slice(i + 1)];
      })),
      antiAffinity: values["anti-affinity"] ?? [],
      json: values.output === "json",
    });
  }
  if (values.output || values.label || values["anti-affinity"]) {
    say("--label, --anti-affinity and --output are for --control: ignored here");
  }
  return await withSnapshotBus(
    { command: "clone", store: values.store, say },
    async ({ sb, children, signalled }) => {
      const manifest = await fetchManifest(sb, snap);
      const prefix = values.name ?? `${manifest.vm}-clone`;
      const macs = cloneMacs(snapshotNics(manifest).map((n) => n.mac), prefix, count);
      const runDir = values["run-dir"] ??
        await Deno.makeTempDir({
          dir: await Deno.mkdir(CLONES_DIR, { recursive: true }).then(() => CLONES_DIR),
          prefix: `${snap}-`,
        });
      await Deno.mkdir(runDir, { recursive: true });
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
          newMacs: macs[i - 1],
        });
        cpus.push(cpu);
        const nics = macs[i - 1].length ? ` (MAC ${macs[i - 1].join(", ")})` : "";
        say(`${vm} runs from snapshot ${snap}${nics}: console ${log}`);
      }
      say(`${count} clone(s) running; Ctrl-C stops them (logs and disks stay in ${runDir})`);
      return await Promise.race([
        Promise.all(cpus.map((c) => c.exited)).then((codes) => codes.find((c) => c !== 0) ?? 0),
        signalled,
      ]);
    },
  );
}

/**
 * The MACs of clones PREFIX1..PREFIXcount, one list per clone with one per NIC of the
 * snapshot: `stableMac(clone name, index)`. Throws a SnapshotCliError if two of them, or one
 * and the snapshot's own, are the same (a 24-bit hash may collide: another prefix helps).
 */
export function cloneMacs(snapshotMacs: string[], prefix: string, count: number): string[][] {
  const seen = new Map(snapshotMacs.map((m) => [m.toLowerCase(), "the snapshot's VM"]));
  const out: string[][] = [];
  for (let i = 1; i <= count; i++) {
    const vm = `${prefix}${i}`;
    out.push(snapshotMacs.map((_, j) => {
      const mac = stableMac(vm, j);
      const other = seen.get(mac);
      if (other) {
        throw new SnapshotCliError(
          `${vm}'s port ${j} would get MAC ${mac}, as ${other} has: give another --name`,
        );
      }
      seen.set(mac, vm);
      return mac;
    }));
  }
  return out;
}

/** Where clone runs keep their logs and disks by default. */
const CLONES_DIR = new URL("../.vmesh/clones", import.meta.url).pathname;
