/**
 * One VM on this host as the processes `./vmesh boot` starts (cli/vm_topology.ts): a console
 * service (log file and web terminal backends), a disk service when the VM has a data disk
 * (copy-on-write overlay), then the CPU service, each a {@link ServiceProcess}
 * (cli/service_process.ts) holding a lifeline to the agent. The CPU starts once the device
 * services say ` ready: `.
 * @module
 */

import type { Bus, memory } from "@vmesh/bus";
import { ServiceProcess } from "../../cli/service_process.ts";
import { type ServiceLaunch, vmTopology } from "../../cli/vm_topology.ts";
import type { HostVm, StartVm } from "./messages.ts";
import { rebuiltLayer } from "./snapshot_layers.ts";

/** A start that could not happen: the reason goes back to the control service. */
export class VmStartError extends Error {}

/** Waits for a ` ready: ` line of `p` (or its exit, or `ms`). */
function readyOrExit(p: ServiceProcess, ready: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    ready,
    p.exited.then((code) => {
      throw new VmStartError(
        `${p.label} exited with code ${code} before it was ready: ${p.tail.slice(-3).join(" | ")}`,
      );
    }),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new VmStartError(`${p.label} not ready after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The processes of one VM. */
export class VmProcesses {
  readonly procs: ServiceProcess[] = [];
  consoleUrl?: string;
  exitCode?: number;
  /** The host its CPU moved to by live migration (its CPU process said so, then exited). */
  migratedTo?: string;
  #cpu?: ServiceProcess;

  private constructor(readonly spec: StartVm, readonly logPath: string) {}

  /** Starts the VM's services; throws {@link VmStartError} (after stopping them) on failure. */
  static async start(
    spec: StartVm,
    natsUrl: string,
    dir: string,
    onExit: (vm: VmProcesses) => void,
    snapshot?: { manifest: memory.SnapshotManifest; bus: Bus },
  ): Promise<VmProcesses> {
    const vm = new VmProcesses(spec, `${dir}/${spec.name}.console.log`);
    try {
      await vm.#start(natsUrl, dir, onExit, snapshot);
    } catch (e) {
      await vm.stop();
      throw e instanceof VmStartError ? e : new VmStartError((e as Error).message);
    }
    return vm;
  }

  /**
   * Starts only the CPU service of `spec`, with `--incoming --host HOST`: the target of a live
   * migration, whose console and disk services stay on the source host (services/cpu/migration).
   */
  static async startIncoming(
    spec: StartVm,
    natsUrl: string,
    dir: string,
    host: string,
    onExit: (vm: VmProcesses) => void,
  ): Promise<VmProcesses> {
    const vm = new VmProcesses(spec, `${dir}/${spec.name}.console.log`);
    try {
      const cpu = vm.#topology(dir).cpu;
      await vm.#startCpu(
        { ...cpu, args: [...cpu.args, "--incoming", "--host", host] },
        natsUrl,
        onExit,
      );
    } catch (e) {
      await vm.stop();
      throw e instanceof VmStartError ? e : new VmStartError((e as Error).message);
    }
    return vm;
  }

  /** The pid of its CPU process while it runs. */
  get cpuPid(): number | undefined {
    return this.#cpu && !this.#cpu.done ? this.#cpu.pid : undefined;
  }

  #spawn(launch: ServiceLaunch, natsUrl: string) {
    let ready: () => void = () => {};
    const isReady = new Promise<void>((r) => ready = r);
    const p = new ServiceProcess({
      label: `${launch.label} of ${this.spec.name}`,
      service: launch.service,
      args: launch.args,
      natsUrl,
      stdin: "null",
      stdout: "null",
      onLine: (line) => {
        if (line.includes(" ready: ")) ready();
        const web = / web terminal: (https?:\/\/\S+)/.exec(line);
        if (web) this.consoleUrl = web[1];
        const moved = launch.service === "cpu" && / migrated to host (\S+) after /.exec(line);
        if (moved) this.migratedTo = moved[1];
      },
    });
    this.procs.push(p);
    return { p, isReady };
  }

  async #start(
    natsUrl: string,
    dir: string,
    onExit: (vm: VmProcesses) => void,
    snapshot?: { manifest: memory.SnapshotManifest; bus: Bus },
  ): Promise<void> {
    const { name, boot } = this.spec;
    let topology = this.#topology(dir);
    if (boot.snapshot && snapshot) {
      topology = {
        ...topology,
        ...await restoredLaunches(name, boot.snapshot, snapshot.manifest, dir, snapshot.bus),
      };
    }
    const waits: Promise<void>[] = [];
    for (const launch of [topology.console, ...topology.disks]) {
      const s = this.#spawn(launch, natsUrl);
      waits.push(readyOrExit(s.p, s.isReady, 60_000));
    }
    await Promise.all(waits);
    await this.#startCpu(topology.cpu, natsUrl, onExit);
  }

  /** The processes `./vmesh boot` would start for this VM (cli/vm_topology.ts). */
  #topology(dir: string) {
    const { name, quota, boot } = this.spec;
    return vmTopology({
      name,
      consoles: [`log:${this.logPath}`, "web:127.0.0.1:0"],
      drives: boot.disk ? [{ path: boot.disk, overlay: `${dir}/${name}.disk0.cow` }] : [],
      nics: [],
      memory: `${quota.ramMiB}M`,
      smp: quota.harts,
      bios: boot.bios,
      kernel: boot.kernel,
      initrd: boot.initrd,
      append: boot.append,
    });
  }

  async #startCpu(
    launch: ServiceLaunch,
    natsUrl: string,
    onExit: (vm: VmProcesses) => void,
  ): Promise<void> {
    const cpu = this.#spawn(launch, natsUrl);
    this.#cpu = cpu.p;
    await readyOrExit(cpu.p, cpu.isReady, 120_000);
    cpu.p.exited.then(async (code) => {
      this.exitCode = code;
      // The guest is gone, so are its device services' clients; not so when only the CPU
      // moved (live migration): the guest runs on elsewhere, through these same services.
      if (!this.migratedTo) {
        await Promise.all(this.procs.filter((p) => p !== cpu.p).map((p) => p.stop()));
      }
      onExit(this);
    });
  }

  /** The CPU process has exited. */
  get exited(): boolean {
    return this.exitCode !== undefined;
  }

  /** What the agent announces about this VM. */
  status(): HostVm {
    return {
      name: this.spec.name,
      quota: this.spec.quota,
      labels: this.spec.labels,
      state: this.migratedTo ? "migrated" : this.exited ? "exited" : "running",
      ...(this.migratedTo ? { migratedTo: this.migratedTo } : {}),
      exitCode: this.exitCode,
      consoleUrl: this.consoleUrl,
      pids: this.procs.filter((p) => !p.done).map((p) => p.pid),
    };
  }

  /** Stops the CPU first (SIGTERM, as Ctrl-C in boot), then the device services. */
  async stop(): Promise<void> {
    if (this.#cpu) await this.#cpu.stop();
    await Promise.all(this.procs.map((p) => p.stop()));
  }

  /** The console output so far (the log backend's file). */
  async logs(): Promise<string> {
    try {
      return await Deno.readTextFile(this.logPath);
    } catch {
      return "";
    }
  }
}

/**
 * The disk and CPU launches of a VM restored from snapshot `snap` (as `./vmesh restore` makes
 * them, cli/restored_vm.ts): each disk over a copy of its point in `dir` (the point stays as it
 * is), then the CPU service with `--restore`, which fetches and checks the whole snapshot first.
 * A point (or its base) not on this host is rebuilt from its disk layers in the memory service
 * into `dir/layers` (once per snapshot and disk, shared by every VM restored from it here).
 */
async function restoredLaunches(
  vm: string,
  snap: string,
  m: memory.SnapshotManifest,
  dir: string,
  bus: Bus,
): Promise<{ disks: ServiceLaunch[]; cpu: ServiceLaunch }> {
  const disks: ServiceLaunch[] = [];
  for (const d of m.disks ?? []) {
    if (!d.frozen) throw new VmStartError(`snapshot ${snap} holds no point of disk ${d.device}`);
    const readOnly = d.overlay === d.image;
    const here = await exists(d.image) && (readOnly || await exists(d.overlay));
    let image = d.image, point = d.overlay;
    if (!here) {
      if (!d.baseLayer || (!readOnly && !d.pointLayer)) {
        throw new VmStartError(
          `disk ${d.device}: ${readOnly ? d.image : d.overlay} is not on this host, and ` +
            `snapshot ${snap} holds no layers of it in the memory service (snapshot with disk ` +
            `layers: ./vmesh snapshot --disk-layers, or the control service's snapshot op)`,
        );
      }
      // Not under a VM's name: ./vmesh rm of one VM removes only its own files.
      await Deno.mkdir(`${dir}/layers`, { recursive: true });
      image = `${dir}/layers/${snap}.${d.device}.base`;
      point = `${dir}/layers/${snap}.${d.device}.point.${d.backend}`;
      try {
        await rebuiltLayer(bus, d.baseLayer, image, `the base of disk ${d.device}`);
        if (!readOnly) {
          await rebuiltLayer(bus, d.pointLayer!, point, `the point of disk ${d.device}`);
        }
      } catch (e) {
        throw new VmStartError(
          `disk ${d.device}: cannot rebuild it from snapshot ${snap}'s layers: ` +
            `${(e as Error).message}`,
        );
      }
    }
    const args = ["--vm", vm, "--device", d.device, "--image", image];
    if (readOnly) args.push("--read-only");
    else {
      const copy = `${dir}/${vm}.${d.device}.${d.backend}`;
      try {
        await Deno.copyFile(point, copy);
        await Deno.chmod(copy, 0o644);
      } catch (e) {
        throw new VmStartError(
          `disk ${d.device}: cannot copy the snapshot's point ${point} on this host: ` +
            `${(e as Error).message}`,
        );
      }
      args.push("--overlay", copy);
    }
    disks.push({
      label: `vmesh-disk ${d.device}`,
      service: "disk",
      args,
      role: { kind: "disk", vm, device: d.device },
      registration: { name: "vmesh-disk", key: "device", value: d.device },
    });
  }
  const cpu: ServiceLaunch = {
    label: "vmesh-cpu",
    service: "cpu",
    args: ["--vm", vm, "--restore", snap],
    role: { kind: "cpu", vm, disks: disks.map((d) => d.args[3]), ports: [] },
    registration: { name: "vmesh-cpu", key: "vm", value: vm },
  };
  return { disks, cpu };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
