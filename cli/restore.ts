/**
 * `./vmesh restore SNAP [--name NEW]`: runs a VM from a snapshot of the memory service. It
 * joins the bus at NATS_URL or starts a private one, starts the memory service when none
 * answers, the console service, a disk service per disk of the snapshot that is not already
 * served for NEW, the switches it lacks, then the CPU service with `--restore SNAP`, which
 * fetches and checks the whole snapshot before it runs anything. The guest carries on where
 * the snapshot left it; `poweroff` in it, Ctrl-A x, or SIGINT/SIGTERM end the run.
 * @module
 */
import { parseArgs } from "node:util";
import { BusError, checkToken, memory, MEMORY_PREFIX } from "@vmesh/bus";
import { DEFAULT_GATEWAY, DEFAULT_SUBNET } from "./boot.ts";
import type { ServiceProcess } from "./service_process.ts";
import { openSnapshotBus, ping, SnapshotCliError, startReady } from "./snapshot_bus.ts";

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
  let sb;
  try {
    sb = await openSnapshotBus({ command: "restore", store: values.store, privateBus: true, say });
  } catch (e) {
    if (e instanceof SnapshotCliError) {
      say(e.message);
      return 1;
    }
    throw e;
  }
  const children: ServiceProcess[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-restore-" });
  let onSignal: (code: number) => void = () => {};
  const signalled = new Promise<number>((r) => onSignal = r);
  const sigint = () => onSignal(130);
  const sigterm = () => onSignal(143);
  Deno.addSignalListener("SIGINT", sigint);
  Deno.addSignalListener("SIGTERM", sigterm);
  try {
    let m: memory.SnapshotManifest | null;
    try {
      ({ manifest: m } = await sb.bus.request(
        { prefix: MEMORY_PREFIX },
        memory.ops.get_manifest,
        { name: snap },
        { retries: 0 },
      ));
    } catch (e) {
      if (e instanceof BusError) {
        throw new SnapshotCliError(
          `${e.message.replace(/^no manifest/, "no snapshot")} (./vmesh snapshots lists them)`,
        );
      }
      throw e;
    }
    const flags = JSON.parse(m?.machine || "{}") as { nics?: { switch: string }[] };
    const vm = values.name ?? m!.vm;
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
      children.push(p);
      if (values.verbose) say(`started ${label} (pid ${p.pid})`);
      return p;
    };

    const consoles = values.console?.length ? values.console : ["terminal"];
    const terminal = consoles.includes("terminal");
    const consoleProc = await spawn(
      "vmesh-console",
      "console",
      ["--vm", vm, ...consoles.flatMap((c) => ["--backend", c])],
      { stdin: terminal ? "inherit" : "null", stdout: terminal ? "inherit" : "null" },
    );
    const served = await ping(sb.bus, "vmesh-disk");
    for (const d of m!.disks ?? []) {
      if (served.some((p) => p.metadata?.vm === vm && p.metadata?.device === d.device)) {
        say(`disk ${d.device}: served on the bus already`);
        continue;
      }
      if (!d.frozen) throw new SnapshotCliError(`the snapshot holds no point of disk ${d.device}`);
      const a = ["--vm", vm, "--device", d.device, "--image", d.image];
      if (d.overlay === d.image) a.push("--read-only");
      else {
        // The point stays as it is: the restored VM writes to its own copy.
        const copy = `${tmp}/${d.device}.${d.backend}`;
        try {
          await Deno.copyFile(d.overlay, copy);
        } catch (e) {
          throw new SnapshotCliError(
            `disk ${d.device}: cannot copy its point ${d.overlay}: ${(e as Error).message}`,
          );
        }
        await Deno.chmod(copy, 0o644);
        a.push("--overlay", copy);
      }
      await spawn(`vmesh-disk ${d.device}`, "disk", a);
      say(`disk ${d.device}: ${d.image} with a copy of the snapshot's point ${d.overlay}`);
    }
    const switches = [...new Set((flags.nics ?? []).map((n) => n.switch))];
    const nets = await ping(sb.bus, "vmesh-net");
    for (const sw of switches) {
      if (nets.some((p) => p.metadata?.switch === sw)) continue;
      await spawn(`vmesh-net ${sw}`, "net", [
        "--switch",
        sw,
        "--subnet",
        DEFAULT_SUBNET,
        "--gateway",
        DEFAULT_GATEWAY,
      ]);
    }
    const cpuArgs = ["--vm", vm, "--restore", snap];
    if (values.engine) cpuArgs.push("--engine", values.engine);
    const cpu = await spawn("vmesh-cpu", "cpu", cpuArgs);
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
    Deno.removeSignalListener("SIGINT", sigint);
    Deno.removeSignalListener("SIGTERM", sigterm);
    for (const c of children.reverse()) await c.stop();
    await sb.close();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
