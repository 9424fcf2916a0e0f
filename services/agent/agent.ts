/**
 * The host agent: announces this host's capacity and load on `vmesh.host.<host>.load` and
 * starts/stops VMs (their CPU and device service processes) on request.
 * @module
 */

import type { Msg, NatsConnection } from "@vmesh/bus";
import { CpuUse, machineResources } from "./host_stats.ts";
import {
  type AgentReply,
  type HostLoad,
  hostSubject,
  type NamedVm,
  type StartVm,
} from "./messages.ts";
import { VmProcesses, VmStartError } from "./vm_processes.ts";

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
}

/** Harts the CPU service can run per VM today (SMP is not there yet). */
export const MAX_HARTS = 1;

/** A running host agent. */
export class HostAgent {
  readonly vms: Map<string, VmProcesses> = new Map();
  readonly #starting = new Set<string>();
  readonly #cpu = new CpuUse();
  #timer?: ReturnType<typeof setInterval>;

  constructor(readonly nc: NatsConnection, readonly o: AgentOptions) {}

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
      vms: [...this.vms.values()].map((v) => v.status()),
      at: Date.now(),
    };
  }

  /** Serves the ops and starts the announcements. */
  start(): void {
    const serve = (op: "start" | "stop" | "logs", fn: (req: never) => Promise<AgentReply>) => {
      this.nc.subscribe(hostSubject(this.o.host, op), {
        callback: (err, msg: Msg) => {
          if (err) return;
          let req: unknown;
          try {
            req = msg.json();
          } catch {
            msg.respond(JSON.stringify({ ok: false, error: "request is not JSON" }));
            return;
          }
          fn(req as never).then(
            (r) => msg.respond(JSON.stringify(r)),
            (e) => msg.respond(JSON.stringify({ ok: false, error: (e as Error).message })),
          );
        },
      });
    };
    serve("start", (r: StartVm) => this.#startVm(r));
    serve("stop", (r: NamedVm) => this.#stopVm(r));
    serve("logs", async (r: NamedVm) => {
      const vm = this.vms.get(r?.name);
      if (!vm) return { ok: false, error: `no VM ${r?.name} on host ${this.o.host}` };
      return { ok: true, text: await vm.logs() };
    });
    const announce = () =>
      this.nc.publish(hostSubject(this.o.host, "load"), JSON.stringify(this.load()));
    announce();
    this.#timer = setInterval(announce, this.o.intervalMs);
  }

  /** Checks a start request against the quota rules; the reason, or undefined. */
  refusal(r: StartVm): string | undefined {
    if (!r || typeof r.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(r.name)) {
      return "name must be 1-64 letters, digits, '-' or '_'";
    }
    const q = r.quota;
    if (!q || !(q.harts >= 1) || !(q.ramMiB >= 1) || !(q.diskMiB >= 0)) {
      return "quota needs harts >= 1, ramMiB >= 1, diskMiB >= 0";
    }
    if (q.harts > MAX_HARTS) {
      return `harts ${q.harts}: the CPU service runs ${MAX_HARTS} hart per VM (no SMP yet)`;
    }
    if (this.vms.has(r.name) || this.#starting.has(r.name)) {
      return `VM ${r.name} already exists on host ${this.o.host}`;
    }
    const load = this.load();
    const used = load.vms.filter((v) => v.state === "running").reduce(
      (a, v) => ({ harts: a.harts + v.quota.harts, ram: a.ram + v.quota.ramMiB }),
      { harts: 0, ram: 0 },
    );
    if (used.ram + q.ramMiB > load.ramMiB) {
      return `host ${this.o.host} has ${load.ramMiB - used.ram} MiB unreserved, ${q.ramMiB} asked`;
    }
    if (!r.boot?.kernel || !r.boot.bios) return "boot needs kernel and bios (or bios none)";
    return undefined;
  }

  async #startVm(r: StartVm): Promise<AgentReply> {
    const why = this.refusal(r);
    if (why) return { ok: false, error: why };
    this.#starting.add(r.name);
    try {
      const vm = await VmProcesses.start(
        { ...r, labels: r.labels ?? {} },
        this.o.natsUrl,
        this.o.dir,
        () => {},
      );
      this.vms.set(r.name, vm);
      return { ok: true, vm: vm.status() };
    } catch (e) {
      if (e instanceof VmStartError) return { ok: false, error: e.message };
      throw e;
    } finally {
      this.#starting.delete(r.name);
    }
  }

  async #stopVm(r: NamedVm): Promise<AgentReply> {
    const vm = this.vms.get(r?.name);
    if (!vm) return { ok: true }; // already gone: stop is idempotent
    await vm.stop();
    this.vms.delete(r.name);
    return { ok: true, vm: vm.status() };
  }

  /** Stops every VM and the announcements. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.vms.values()].map((v) => v.stop()));
  }
}
