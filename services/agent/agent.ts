/**
 * The host agent: announces this host's capacity and load on `vmesh.host.<host>.load`
 * (`control.HostLoad`) and serves `vmesh.host.<host>.{start,incoming,stop,rm,logs,layers}`
 * (proto/control.proto), starting and stopping VMs as their CPU and device service processes.
 * @module
 */

import {
  type Bus,
  BusError,
  control,
  type DeviceService,
  memory,
  MEMORY_PREFIX,
  Status,
} from "@vmesh/bus";
import type { CpuCgroup, CpuCgroups } from "./cpu_cgroup.ts";
import { diskImageMib } from "./disk_size.ts";
import { CpuUse, machineResources, ProcessCpuUse } from "./host_stats.ts";
import type { HostLoad, HostVm, StartVm } from "./messages.ts";
import { VmProcesses, VmStartError } from "./vm_processes.ts";
import { storeSnapshotLayers } from "./snapshot_layers.ts";

/** How the agent is set up. */
export interface AgentOptions {
  host: string;
  labels: Record<string, string>;
  /** Advertised capacity; absent: the machine's own. */
  cores?: number;
  ramMiB?: number;
  diskMiB: number;
  /** Where console logs and disk overlays go. */
  dir: string;
  natsUrl: string;
  intervalMs: number;
  /** Where each VM's CPU service gets its CPU cap and weight; absent: not enforced. */
  cgroups?: CpuCgroups;
}

/** Harts the CPU service can run per VM (its `--smp` limit). */
export const MAX_HARTS = 8;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A VM as the wire contract (`control.HostVm`) carries it. */
export function hostVmWire(v: HostVm): control.HostVm {
  return {
    name: v.name,
    quota: {
      harts: v.quota.harts,
      ramMib: v.quota.ramMiB,
      diskMib: v.quota.diskMiB,
      cpuShares: v.quota.cpuShares ?? 0,
    },
    labels: v.labels,
    running: v.state === "running",
    exitCode: v.exitCode ?? 0,
    consoleUrl: v.consoleUrl ?? "",
    pids: v.pids,
    migratedTo: v.migratedTo ?? "",
    cpuUse: v.cpuUse ?? 0,
  };
}

/** A wire start request as the agent's own {@link StartVm} (empty strings: absent). */
export function startVmFromWire(r: control.StartVm): StartVm {
  const b = r.boot ?? { bios: "", kernel: "" };
  return {
    name: r.name,
    quota: {
      harts: r.quota?.harts ?? 0,
      ramMiB: r.quota?.ramMib ?? 0,
      diskMiB: r.quota?.diskMib ?? 0,
      ...(r.quota?.cpuShares ? { cpuShares: r.quota.cpuShares } : {}),
    },
    labels: r.labels ?? {},
    boot: {
      bios: b.bios,
      kernel: b.kernel,
      ...(b.initrd ? { initrd: b.initrd } : {}),
      ...(b.append ? { append: b.append } : {}),
      ...(b.disk ? { disk: b.disk } : {}),
      ...(b.snapshot ? { snapshot: b.snapshot } : {}),
    },
  };
}

/**
 * A running host agent.
 *
 * @example
 * ```ts
 * const bus = await connect({ url: natsUrl });
 * const agent = new HostAgent(bus, { host: "h1", labels: {}, diskMiB: 10240, dir, natsUrl, intervalMs: 1000 });
 * await agent.start();
 * ```
 */
export class HostAgent {
  readonly vms: Map<string, VmProcesses> = new Map();
  /** The CPU cgroup of each VM that has one. */
  readonly cgroups: Map<string, CpuCgroup> = new Map();
  readonly #starting = new Set<string>();
  readonly #cpu = new CpuUse();
  readonly #vmCpu = new ProcessCpuUse();
  #timer?: ReturnType<typeof setInterval>;
  #service?: DeviceService;

  constructor(readonly bus: Bus, readonly o: AgentOptions) {}

  /** Capacity and load now. */
  load(): HostLoad {
    const m = machineResources();
    return {
      host: this.o.host,
      labels: this.o.labels,
      cores: this.o.cores ?? m.cores,
      ramMiB: this.o.ramMiB ?? m.ramMiB,
      diskMiB: this.o.diskMiB,
      freeRamMiB: m.freeRamMiB,
      cpuUse: this.#cpu.sample(),
      vms: [...this.vms.values()].map((v) => {
        const pid = v.cpuPid;
        return { ...v.status(), cpuUse: pid ? this.#vmCpu.sample(pid) : 0 };
      }),
      at: Date.now(),
    };
  }

  /** Publishes one load announcement now. */
  announce(): void {
    const l = this.load();
    this.bus.publish(control.hostLoad, control.hostLoadSubject(this.o.host), {
      host: l.host,
      labels: l.labels,
      cores: l.cores,
      ramMib: l.ramMiB,
      diskMib: l.diskMiB,
      freeRamMib: l.freeRamMiB,
      cpuUse: l.cpuUse,
      vms: l.vms.map(hostVmWire),
      atMs: l.at,
    });
  }

  /** Serves the ops and starts the announcements. */
  async start(): Promise<void> {
    this.#service = await this.bus.serve({
      prefix: control.hostPrefix(this.o.host),
      name: "vmesh-agent",
      version: "0.1.0",
      description: `host agent of ${this.o.host}`,
      metadata: { host: this.o.host },
      ops: control.agentOps,
      handlers: {
        start: (r) => this.#startVm(startVmFromWire(r)),
        incoming: (r) => this.#startVm(startVmFromWire(r), true),
        stop: (r) => this.#stopVm(r.name),
        rm: (r) => this.#rmVm(r.name),
        layers: (r) => this.#storeLayers(r.snapshot),
        logs: async (r) => {
          const vm = this.vms.get(r.name);
          if (!vm) throw new BusError(Status.NOT_FOUND, `no VM ${r.name} on host ${this.o.host}`);
          return { text: await vm.logs() };
        },
      },
    });
    this.announce();
    this.#timer = setInterval(() => this.announce(), this.o.intervalMs);
  }

  /** Checks a start request against the quota rules; the reason, or undefined. */
  refusal(r: StartVm): string | undefined {
    if (typeof r.name !== "string" || !NAME.test(r.name)) {
      return "name must be 1-64 letters, digits, '-' or '_'";
    }
    const q = r.quota;
    if (!(q.harts >= 1) || !(q.ramMiB >= 1) || !(q.diskMiB >= 0)) {
      return "quota needs harts >= 1, ramMiB >= 1, diskMiB >= 0";
    }
    if (q.harts > MAX_HARTS) {
      return `harts ${q.harts}: a VM has at most ${MAX_HARTS} harts`;
    }
    const old = this.vms.get(r.name);
    // A VM migrated out still has its device services here (until stop or rm).
    if ((old && (!old.exited || old.migratedTo)) || this.#starting.has(r.name)) {
      return `VM ${r.name} already runs on host ${this.o.host}`;
    }
    const load = this.load();
    const used = load.vms.filter((v) => v.state === "running").reduce(
      (a, v) => a + v.quota.ramMiB,
      0,
    );
    if (used + q.ramMiB > load.ramMiB) {
      return `host ${this.o.host} has ${load.ramMiB - used} MiB unreserved, ${q.ramMiB} asked`;
    }
    if (!r.boot.snapshot && (!r.boot.kernel || !r.boot.bios)) {
      return "boot needs kernel and bios (or bios none), or a snapshot";
    }
    return undefined;
  }

  async #startVm(r: StartVm, incoming = false): Promise<control.HostVm> {
    const why = this.refusal(r);
    if (why) throw new BusError(Status.FAILED_PRECONDITION, why);
    if (incoming && r.boot.snapshot) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `VM ${r.name} runs from snapshot ${r.boot.snapshot}: an incoming CPU service needs ` +
          `the VM's own flags and files`,
      );
    }
    // A restore uses the snapshot's disk points (or their layers), not the image it booted with.
    if (r.boot.disk && !r.boot.snapshot) {
      const mib = await diskImageMib(r.boot.disk).catch((e) => {
        throw new BusError(Status.FAILED_PRECONDITION, `cannot read disk image: ${e.message}`);
      });
      // The overlay grows at most to the image's size: that is what the disk quota bounds.
      if (mib > r.quota.diskMiB) {
        throw new BusError(
          Status.FAILED_PRECONDITION,
          `disk image ${r.boot.disk} is ${mib} MiB, more than the VM's disk quota of ` +
            `${r.quota.diskMiB} MiB: raise --disk-size to ${mib}M`,
        );
      }
    }
    const snapshot = r.boot.snapshot && !incoming ? await this.#manifest(r) : undefined;
    this.#starting.add(r.name);
    try {
      // An exited VM of the same name is replaced (start after the guest powered off).
      this.vms.delete(r.name);
      const exited = () => {
        void this.#dropCgroup(r.name);
        this.announce();
      };
      const vm = incoming
        ? await VmProcesses.startIncoming(r, this.o.natsUrl, this.o.dir, this.o.host, exited)
        : await VmProcesses.start(
          r,
          this.o.natsUrl,
          this.o.dir,
          exited,
          snapshot && { manifest: snapshot, bus: this.bus },
        );
      this.vms.set(r.name, vm);
      await this.#limitCpu(r, vm);
      this.announce();
      return hostVmWire(vm.status());
    } catch (e) {
      if (e instanceof VmStartError) throw new BusError(Status.FAILED_PRECONDITION, e.message);
      throw e;
    } finally {
      this.#starting.delete(r.name);
    }
  }

  /** The manifest of the snapshot `r` restores, checked against its RAM quota. */
  async #manifest(r: StartVm): Promise<memory.SnapshotManifest> {
    const snap = r.boot.snapshot!;
    let m: memory.SnapshotManifest | null;
    try {
      ({ manifest: m } = await this.bus.request(
        { prefix: MEMORY_PREFIX },
        memory.ops.get_manifest,
        {
          name: snap,
        },
        { timeoutMs: 30_000, retries: 1 },
      ));
    } catch (e) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `snapshot ${snap}: ${(e as Error).message} (./vmesh snapshots lists them)`,
      );
    }
    if (!m) throw new BusError(Status.FAILED_PRECONDITION, `snapshot ${snap} has no manifest`);
    const ramMiB = Math.ceil((m.ramSize ?? 0) / (1 << 20));
    if (ramMiB > r.quota.ramMiB) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `snapshot ${snap} has ${ramMiB} MiB of RAM, more than the VM's quota of ${r.quota.ramMiB} MiB`,
      );
    }
    return m;
  }

  /** Stores snapshot `snap`'s disk points, files on this host, as layers (`layers` op). */
  async #storeLayers(snap: string): Promise<control.LayersStored> {
    const m = await this.#manifest({
      name: "",
      quota: { harts: 1, ramMiB: Number.MAX_SAFE_INTEGER, diskMiB: 0 },
      labels: {},
      boot: { bios: "", kernel: "", snapshot: snap },
    });
    try {
      return await storeSnapshotLayers(this.bus, snap, m);
    } catch (e) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `host ${this.o.host}: snapshot ${snap}: ${(e as Error).message}`,
      );
    }
  }

  /** Puts the VM's CPU service into its cgroup: `harts` cores at most, weight cpuShares. */
  async #limitCpu(r: StartVm, vm: VmProcesses): Promise<void> {
    const cpu = vm.procs.find((p) => p.opts.service === "cpu");
    if (!this.o.cgroups || !cpu) return;
    try {
      const g = await this.o.cgroups.create(r.name, {
        harts: r.quota.harts,
        shares: r.quota.cpuShares ?? 1024 * r.quota.harts,
      });
      await g.add(cpu.pid);
      this.cgroups.set(r.name, g);
    } catch (e) {
      // The VM runs unlimited rather than not at all: the refusal would lose a started guest.
      this.bus.log(`vmesh-agent: ${r.name}: no CPU quota: ${(e as Error).message}`);
    }
  }

  async #dropCgroup(name: string): Promise<void> {
    const g = this.cgroups.get(name);
    this.cgroups.delete(name);
    await g?.remove();
  }

  async #stopVm(name: string): Promise<control.HostVm> {
    const vm = this.vms.get(name);
    // Already gone: stop is idempotent.
    if (!vm) {
      return hostVmWire({
        name,
        quota: { harts: 0, ramMiB: 0, diskMiB: 0 },
        labels: {},
        state: "exited",
        pids: [],
      });
    }
    await vm.stop();
    await this.#dropCgroup(name);
    // Stopped for good: a VM migrated out has no device services left here either.
    const status = vm.status();
    if (vm.migratedTo) this.vms.delete(name);
    this.announce();
    return hostVmWire(status);
  }

  async #rmVm(name: string): Promise<control.HostVm> {
    if (!NAME.test(name)) throw new BusError(Status.INVALID_ARGUMENT, `bad VM name ${name}`);
    const reply = await this.#stopVm(name);
    this.vms.delete(name);
    // The console log and disk overlays of the VM go with it.
    for await (const e of Deno.readDir(this.o.dir)) {
      if (e.isFile && e.name.startsWith(`${name}.`)) {
        await Deno.remove(`${this.o.dir}/${e.name}`).catch(() => {});
      }
    }
    this.announce();
    return reply;
  }

  /** Stops every VM, the ops and the announcements. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#service?.stop();
    await Promise.all([...this.vms.values()].map((v) => v.stop()));
    await Promise.all([...this.cgroups.keys()].map((n) => this.#dropCgroup(n)));
    await this.o.cgroups?.close();
  }
}
