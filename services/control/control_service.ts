/**
 * The control service: VM records in JetStream (store.ts), hosts from their agents'
 * announcements (host_table.ts), placement (placement.ts), and the ops of
 * proto/control.proto on `vmesh.control.<op>`. Every op runs the same methods whether it
 * comes over the bus or the REST API (rest_api.ts).
 * @module
 */

import {
  type Bus,
  BusError,
  type BusSubscription,
  control,
  type DeviceService,
  memory,
  MEMORY_PREFIX,
  Status,
  type StatusCode,
  vm as vmOps,
  vmControlPrefix,
} from "@vmesh/bus";
import { type HostEntry, HostTable } from "./host_table.ts";
import { type Candidate, misfit, place } from "./placement.ts";
import {
  ACTIVE_STATES,
  type HostLedger,
  MAX_CLONES,
  vmInfo,
  type VmRecord,
  type VmStateName,
} from "./records.ts";
import { CasConflict, type ControlEvent, ControlStore, type Versioned } from "./store.ts";
import {
  hostLoad,
  type LoadedHost,
  type Move,
  pickMove,
  REBALANCE_DEFAULTS,
  type RebalanceOptions,
} from "./rebalance.ts";

/** How the control service is set up. */
export interface ControlOptions {
  /** A host whose agent has not announced for this long is lost (default 5000 ms). */
  lostTimeoutMs?: number;
  /** How long an agent may take to start a VM (default 180000 ms). */
  agentTimeoutMs?: number;
  /** Live-migrate VMs off hosts that stay overloaded (rebalance.ts); absent: off. */
  rebalance?: Partial<RebalanceOptions>;
}

/** VM names that would collide with the control plane's own subjects. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["control", "host", "net", "memory"]);

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A lost VM whose recreation found no snapshot or no host is tried again after this long. */
const RECREATE_RETRY_MS = 10_000;

const LABEL_KEY = /^[A-Za-z0-9_.\/-]{1,63}$/;

const fail = (code: StatusCode, message: string): never => {
  throw new BusError(code, message);
};

/**
 * A running control service.
 *
 * @example
 * ```ts
 * const ctl = await ControlService.start(bus, { lostTimeoutMs: 3000 });
 * const vm = await ctl.create({ name: "vm1", quota: { harts: 1, ramMib: 128, diskMib: 0 }, boot: { bios: "none", kernel: "prog.elf" } });
 * ```
 */
export class ControlService {
  readonly hosts: HostTable;
  readonly #locks = new Map<string, Promise<unknown>>();
  #placing: Promise<unknown> = Promise.resolve();
  #lostHosts = new Set<string>();
  #sub?: BusSubscription;
  #service?: DeviceService;
  #sweep?: ReturnType<typeof setInterval>;
  readonly #agentTimeoutMs: number;
  readonly #rebalance?: RebalanceOptions;
  /** Since when each host has been overloaded without a break. */
  readonly #overSince = new Map<string, number>();
  /** Hosts a VM is being moved off now. */
  readonly #moving = new Set<string>();
  /** When each VM was last moved (cool-down). */
  readonly #movedAt = new Map<string, number>();
  /** When the recreation of each lost VM was last tried. */
  readonly #recreateTried = new Map<string, number>();

  private constructor(readonly bus: Bus, readonly store: ControlStore, opts: ControlOptions) {
    this.hosts = new HostTable(opts.lostTimeoutMs ?? 5000);
    this.#agentTimeoutMs = opts.agentTimeoutMs ?? 180_000;
    if (opts.rebalance) this.#rebalance = { ...REBALANCE_DEFAULTS, ...opts.rebalance };
  }

  /** Opens the JetStream state, listens to host announcements and serves the bus ops. */
  static async start(bus: Bus, opts: ControlOptions = {}): Promise<ControlService> {
    const store = await ControlStore.open(bus.nc);
    const svc = new ControlService(bus, store, opts);
    svc.#sub = bus.subscribe(control.hostLoad, control.ALL_HOST_LOADS, (load) => {
      svc.#onLoad(load).catch((e) => bus.log(`vmesh-control: ${load.host}: ${e.message}`));
    });
    svc.#service = await bus.serve({
      prefix: control.CONTROL_PREFIX,
      name: "vmesh-control",
      version: "0.1.0",
      description: "VM placement and records",
      ops: control.ops,
      handlers: {
        create: (r) => svc.create(r),
        clone: (r) => svc.clone(r),
        snapshot: (r) => svc.snapshot(r),
        list: (r) => svc.list(r.labels ?? {}),
        inspect: (r) => svc.inspect(r.name),
        stop: (r) => svc.stop(r.name),
        start: (r) => svc.startVm(r.name),
        rm: (r) => svc.rm(r.name, r.force ?? false),
        logs: (r) => svc.logs(r.name),
        hosts: () => svc.hostList(),
        events: async (r) => ({
          events: (await svc.events(r.vm || undefined, r.max || undefined)).map((e) => ({
            atMs: e.at,
            vm: e.vm,
            type: e.type,
            host: e.host ?? "",
            detail: e.detail ?? "",
          })),
        }),
      },
    });
    const every = Math.max(100, Math.min(1000, svc.hosts.lostTimeoutMs / 4));
    svc.#sweep = setInterval(() => {
      svc.#sweepLost().catch((e) => bus.log(`vmesh-control: sweep: ${e.message}`));
    }, every);
    return svc;
  }

  /** Runs `fn` after every other op on VM `name` in this process. */
  async #locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(name) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    this.#locks.set(name, run);
    try {
      return await run;
    } finally {
      if (this.#locks.get(name) === run) this.#locks.delete(name);
    }
  }

  async #event(vm: string, type: string, host?: string, detail?: string): Promise<void> {
    const e: ControlEvent = { at: Date.now(), vm, type };
    if (host) e.host = host;
    if (detail) e.detail = detail;
    await this.store.event(e).catch((err) => this.bus.log(`vmesh-control: event: ${err.message}`));
  }

  /** Validates a create request; throws INVALID_ARGUMENT naming the field. */
  #check(r: control.CreateVm): void {
    const bad = (m: string) => fail(Status.INVALID_ARGUMENT, m);
    if (!NAME.test(r.name ?? "")) bad(`name must be 1-64 letters, digits, '-' or '_'`);
    if (RESERVED_NAMES.has(r.name)) {
      bad(`name ${r.name} is reserved (${[...RESERVED_NAMES].join(", ")}): pick another`);
    }
    const q = r.quota;
    const whole = (v: unknown, min: number) =>
      Number.isInteger(v) && (v as number) >= min && (v as number) <= 0xffffffff;
    if (!q || !whole(q.harts, 1)) bad("quota needs a whole number of harts >= 1 (--harts)");
    if (!whole(q.ramMib, 1)) bad("quota needs a whole number of MiB of RAM >= 1 (--memory)");
    if (q.diskMib !== undefined && !whole(q.diskMib, 0)) {
      bad("quota's disk must be a whole number of MiB (--disk-size)");
    }
    if (q.cpuShares !== undefined && q.cpuShares !== 0 && !whole(q.cpuShares, 2)) {
      bad("cpu shares must be 2..262144 (--cpu-shares)");
    }
    if (!r.boot?.kernel && !r.boot?.snapshot) {
      bad("boot needs a kernel (--kernel PATH) or a snapshot (--from-snapshot SNAP)");
    }
    for (const k of r.antiAffinity ?? []) {
      if (!LABEL_KEY.test(k)) bad(`anti-affinity key ${JSON.stringify(k)} is not a label key`);
    }
    for (const k of Object.keys(r.labels ?? {})) {
      if (!LABEL_KEY.test(k)) bad(`label key ${JSON.stringify(k)} is not a label key`);
    }
  }

  /**
   * A create from a snapshot takes the snapshot's harts and RAM as its quota (a restored
   * machine keeps its shape); a quota given that differs is refused, naming the snapshot's.
   */
  async #fromSnapshot(r: control.CreateVm): Promise<control.CreateVm> {
    const snap = r.boot?.snapshot;
    if (!snap) return r;
    const m = await this.#manifest(snap);
    if (!m) {
      return fail(
        Status.NOT_FOUND,
        `no snapshot ${snap} in the memory service (./vmesh snapshots)`,
      );
    }
    const flags = JSON.parse(m.machine || "{}") as { harts?: number; ramSize?: number };
    const ramMib = Math.ceil((m.ramSize || flags.ramSize || 0) / (1 << 20));
    const harts = flags.harts ?? 1;
    const q = r.quota ?? { harts: 0, ramMib: 0, diskMib: 0 };
    if ((q.ramMib && q.ramMib !== ramMib) || (q.harts && q.harts !== harts)) {
      fail(
        Status.INVALID_ARGUMENT,
        `snapshot ${snap} is a machine of ${harts} harts and ${ramMib} MiB RAM: ` +
          `leave out --harts/--memory or give those`,
      );
    }
    return {
      ...r,
      quota: { ...q, harts, ramMib },
      boot: { ...r.boot, snapshot: snap },
    };
  }

  /** The manifest of snapshot `snap`, or undefined when the memory service has none. */
  async #manifest(snap: string): Promise<memory.SnapshotManifest | undefined> {
    try {
      const { manifest } = await this.bus.request(
        { prefix: MEMORY_PREFIX },
        memory.ops.get_manifest,
        { name: snap },
        { timeoutMs: 10_000, retries: 1 },
      );
      return manifest ?? undefined;
    } catch (e) {
      if (e instanceof BusError && e.code === Status.NOT_FOUND) return undefined;
      throw e;
    }
  }

  /**
   * The last snapshot of VM `r` (this incarnation's: taken since its record was created), or
   * the snapshot it was created from; undefined when there is none or no memory service.
   */
  async #lastSnapshot(r: VmRecord): Promise<string | undefined> {
    let names: string[];
    try {
      ({ names } = await this.bus.request(
        { prefix: MEMORY_PREFIX },
        memory.ops.list_manifests,
        {},
        {
          timeoutMs: 10_000,
          retries: 1,
        },
      ));
    } catch (e) {
      // No memory service on this bus is no news: it has no snapshots either.
      if (!(e instanceof BusError && e.code === Status.UNAVAILABLE)) {
        this.bus.log(`vmesh-control: ${r.name}: no snapshot list: ${(e as Error).message}`);
      }
      return r.boot.snapshot || undefined;
    }
    let best: { name: string; at: number } | undefined;
    for (const name of names) {
      const m = await this.#manifest(name).catch(() => undefined);
      const at = m?.createdUnixMs ?? 0;
      if (m?.vm !== r.name || at < r.createdMs) continue;
      if (!best || at > best.at) best = { name, at };
    }
    return best?.name ?? (r.boot.snapshot || undefined);
  }

  /** The first record of a VM created by `r` (STARTING, no host yet). */
  #newRecord(r: control.CreateVm): VmRecord {
    const now = Date.now();
    return {
      name: r.name,
      state: "STARTING",
      host: "",
      quota: {
        harts: r.quota.harts,
        ramMib: r.quota.ramMib,
        diskMib: r.quota.diskMib ?? 0,
        cpuShares: r.quota.cpuShares ?? 0,
      },
      labels: r.labels ?? {},
      antiAffinity: r.antiAffinity ?? [],
      boot: {
        bios: r.boot.bios || "none",
        kernel: r.boot.kernel,
        initrd: r.boot.initrd ?? "",
        append: r.boot.append ?? "",
        disk: r.boot.disk ?? "",
        snapshot: r.boot.snapshot ?? "",
      },
      consoleUrl: "",
      exitCode: 0,
      reason: "",
      createdMs: now,
      updatedMs: now,
    };
  }

  /** Creates, places and starts a VM. */
  async create(req: control.CreateVm): Promise<control.VmInfo> {
    const r = await this.#fromSnapshot(req);
    this.#check(r);
    return await this.#locked(r.name, async () => {
      const rec = this.#newRecord(r);
      let revision: number;
      try {
        // The name is claimed first: of two control services creating it, one wins here.
        revision = await this.store.createVm(rec);
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        const old = await this.store.getVm(r.name);
        return fail(
          Status.FAILED_PRECONDITION,
          `VM ${r.name} already exists (${old?.value.state.toLowerCase() ?? "?"} on ` +
            `${old?.value.host || "no host"}): pick another name or ./vmesh rm ${r.name}`,
        );
      }
      await this.#event(r.name, "created");
      // A placement that fails (JetStream unreachable) leaves no half-made record behind.
      const host = await this.#place(rec).catch(async (e) => {
        await this.store.deleteVm(r.name, revision).catch(() => {});
        throw e;
      });
      if ("refusal" in host) {
        await this.store.deleteVm(r.name, revision).catch(() => {});
        await this.#event(r.name, "refused", undefined, host.refusal);
        return fail(Status.FAILED_PRECONDITION, host.refusal);
      }
      return await this.#run(r.name, host.host);
    });
  }

  /** Runs `fn` holding the locks of every VM of `names` (in this process). */
  #lockedAll<T>(names: string[], fn: () => Promise<T>): Promise<T> {
    if (!names.length) return fn();
    return this.#locked(names[0], () => this.#lockedAll(names.slice(1), fn));
  }

  /**
   * Creates `count` VMs from one snapshot, each placed as `create` places one (the earlier
   * clones' reservations counted, so they spread by capacity), all or none: when a name is
   * taken, or one clone cannot be placed or started, every clone made so far is removed again
   * (stopped on its host, its reservation released) and the error names which and why.
   */
  async clone(req: control.CloneVms): Promise<control.VmList> {
    const bad = (m: string) => fail(Status.INVALID_ARGUMENT, m);
    const count = req.count;
    if (!Number.isInteger(count) || count < 1 || count > MAX_CLONES) {
      bad(`count must be 1 to ${MAX_CLONES} (--count), got ${count}`);
    }
    const snap = req.snapshot;
    if (!snap) bad("clone needs a snapshot (./vmesh snapshots lists them)");
    const m = await this.#manifest(snap);
    if (!m) {
      return fail(
        Status.NOT_FOUND,
        `no snapshot ${snap} in the memory service (./vmesh snapshots)`,
      );
    }
    const flags = JSON.parse(m.machine || "{}") as { nics?: unknown[] };
    if (flags.nics?.length) {
      fail(
        Status.FAILED_PRECONDITION,
        `snapshot ${snap} has network ports: its clones would share its MAC address (not supported)`,
      );
    }
    const prefix = req.prefix || `${m.vm}-clone`;
    const names = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
    const template = await this.#fromSnapshot({
      name: names[0],
      quota: { harts: 0, ramMib: 0, diskMib: 0, cpuShares: req.cpuShares ?? 0 },
      boot: { bios: "", kernel: "", snapshot: snap },
      labels: req.labels ?? {},
      antiAffinity: req.antiAffinity ?? [],
    });
    const reqs = names.map((name) => ({ ...template, name }));
    for (const r of reqs) this.#check(r);
    return await this.#lockedAll(names, async () => {
      const made: string[] = [];
      const hostOf = new Map<string, string>();
      const undo = () => Promise.all(made.map((n) => this.#drop(n, hostOf.get(n))));
      for (const r of reqs) {
        try {
          await this.store.createVm(this.#newRecord(r));
        } catch (e) {
          await undo();
          if (!(e instanceof CasConflict)) throw e;
          return fail(
            Status.FAILED_PRECONDITION,
            `VM ${r.name} already exists: give another name prefix (--name) or ./vmesh rm ` +
              `${r.name}; none of the ${count} clones was created`,
          );
        }
        made.push(r.name);
        await this.#event(r.name, "created", undefined, `clone of snapshot ${snap}`);
      }
      for (const [i, name] of made.entries()) {
        const rec = (await this.store.getVm(name))!.value;
        const p = await this.#place(rec).catch((e) => ({ refusal: (e as Error).message }));
        if ("refusal" in p) {
          await this.#event(name, "refused", undefined, p.refusal);
          await undo();
          return fail(
            Status.FAILED_PRECONDITION,
            `no room for clone ${i + 1} of ${count} (${name}): ${p.refusal}; none of the ` +
              `${count} clones was started (their records and reservations are gone)`,
          );
        }
        hostOf.set(name, p.host);
      }
      // The agents start them at once (each host's in parallel too).
      const runs = await Promise.allSettled(made.map((n) => this.#run(n, hostOf.get(n)!)));
      // #run's hint that the record stays FAILED does not hold here: the records go.
      const failed = runs.flatMap((s, i) =>
        s.status === "rejected"
          ? [
            `${made[i]}: ${
              (s.reason as Error).message.replace(/ \(the record stays FAILED.*$/, "")
            }`,
          ]
          : []
      );
      if (failed.length) {
        await undo();
        const ran = count - failed.length;
        return fail(
          Status.FAILED_PRECONDITION,
          `${failed.length} of ${count} clones did not start (${failed.join("; ")}); ` +
            (ran ? `the ${ran} that started were stopped and removed with the rest: ` : "") +
            `none of the ${count} is left`,
        );
      }
      return { vms: runs.map((s) => (s as PromiseFulfilledResult<control.VmInfo>).value) };
    });
  }

  /**
   * Removes VM `name` made by a clone that is rolled back (caller holds its lock): removed on
   * `host`'s agent, its reservation released, its record deleted.
   */
  async #drop(name: string, host: string | undefined): Promise<void> {
    if (host) {
      if (this.hosts.isUp(host)) {
        await this.bus.request({ prefix: control.hostPrefix(host) }, control.agentOps.rm, {
          name,
        }, { timeoutMs: 30_000, retries: 1 }).catch((e) =>
          this.bus.log(`vmesh-control: rm ${name} on ${host}: ${e.message}`)
        );
      }
      await this.#release(host, name);
    }
    await this.#deleteRecord(name);
    await this.#event(name, "removed", host, "its clone was rolled back");
  }

  /** Deletes VM `name`'s record at whatever revision it has now. */
  async #deleteRecord(name: string): Promise<void> {
    for (let attempt = 0;; attempt++) {
      const now = await this.store.getVm(name);
      if (!now) return;
      try {
        await this.store.deleteVm(name, now.revision);
        return;
      } catch (e) {
        if (!(e instanceof CasConflict) || attempt >= 20) throw e;
      }
    }
  }

  /**
   * Snapshots running VM `req.name` through its CPU service (`vmesh.<vm>.ctl.snapshot`, disk
   * points next to the overlays on its host); with `diskLayers`, the agent of the host of its
   * disk services then stores those points and their bases as layers of the memory service,
   * so it can be restored or recreated where the files are not.
   */
  async snapshot(req: control.SnapshotVm): Promise<control.SnapshotInfo> {
    const t0 = performance.now();
    const r = (await this.#record(req.name)).value;
    if (r.state !== "RUNNING") {
      fail(
        Status.FAILED_PRECONDITION,
        `VM ${r.name} is ${r.state.toLowerCase()}: only a running VM can be snapshotted`,
      );
    }
    let s: vmOps.SnapshotReply;
    try {
      s = await this.bus.request(
        { prefix: vmControlPrefix(r.name) },
        vmOps.ops.snapshot,
        { name: req.snapshot ?? "", diskDir: "" },
        { timeoutMs: 600_000, retries: 0 },
      );
    } catch (e) {
      if (!(e instanceof BusError)) throw e;
      return fail(e.code, `snapshot of ${r.name} on ${r.host}: ${e.message}`);
    }
    let layers: control.LayersStored = { disks: [], sentBytes: 0 };
    if (req.diskLayers) {
      const host = r.deviceHost || r.host;
      try {
        layers = await this.bus.request(
          { prefix: control.hostPrefix(host) },
          control.agentOps.layers,
          { snapshot: s.name },
          { timeoutMs: 600_000, retries: 0 },
        );
      } catch (e) {
        return fail(
          Status.FAILED_PRECONDITION,
          `snapshot ${s.name} of ${r.name} is stored, but not its disk layers (host ${host}: ` +
            `${(e as Error).message}): it restores only where its disk points are`,
        );
      }
    }
    const info: control.SnapshotInfo = {
      snapshot: s.name,
      vm: r.name,
      host: r.host,
      pages: s.pages,
      sentPages: s.sentPages,
      sentBytes: Number(s.sentBytes),
      pausedMs: s.pausedMs,
      totalMs: performance.now() - t0,
      layerBytes: layers.sentBytes,
      layerDisks: layers.disks,
    };
    const detail = `${s.name}` +
      (req.diskLayers ? ` with layers of ${layers.disks.length} disks` : "");
    await this.#event(r.name, "snapshot", r.host, detail);
    return info;
  }

  /** Host `e` as placement and rebalancing see it: up or not, capacity, load, and `ledger`. */
  #candidate(e: HostEntry, ledger: HostLedger): Candidate {
    const { host, cores, ramMib, diskMib, cpuUse } = e.load;
    return { host, up: this.hosts.isUp(host), cores, ramMib, diskMib, cpuUse, ledger };
  }

  /** Places `rec` and reserves its quota in the chosen host's ledger. */
  #place(rec: VmRecord, preferHost?: string): Promise<{ host: string } | { refusal: string }> {
    // One placement at a time in this process; the ledgers' revisions guard against others.
    const run = this.#placing.catch(() => {}).then(async () => {
      for (let conflicts = 0;;) {
        const entries = this.hosts.all();
        const ledgers = await Promise.all(entries.map((e) => this.store.ledger(e.load.host)));
        const candidates = entries.map((e, i) => this.#candidate(e, ledgers[i].value));
        const p = place(candidates, { ...rec, preferHost });
        if ("refusal" in p) {
          // Just started: hosts not yet heard from would be refused unheard. Every up host
          // announces within the lost timeout, so wait that long before refusing.
          const young = this.hosts.startedMs + this.hosts.lostTimeoutMs - Date.now();
          if (young > 0) {
            await new Promise((res) => setTimeout(res, Math.min(young, 200)));
            continue;
          }
          return p;
        }
        // The reservation is a compare-and-set of the chosen host's ledger that checks the fit
        // again on the ledger it writes over: a change since the read above (a release here,
        // another control service's placement) never makes it overcommit the host.
        const chosen = candidates.find((c) => c.host === p.host)!;
        let fits = false;
        await this.store.mutateLedger(p.host, (l) => {
          fits = !misfit({ ...chosen, ledger: l }, { ...rec, preferHost });
          if (!fits) return undefined;
          l.vms[rec.name] = { quota: rec.quota, labels: rec.labels };
          return l;
        });
        if (fits) return { host: p.host };
        // The room went meanwhile: place again on fresh reads.
        if (++conflicts > 50) throw new Error(`placing ${rec.name}: the ledgers keep changing`);
      }
    });
    this.#placing = run;
    return run;
  }

  async #release(host: string, name: string): Promise<void> {
    if (!host) return;
    await this.store.mutateLedger(host, (l) => {
      if (!(name in l.vms)) return undefined;
      delete l.vms[name];
      return l;
    });
  }

  /** Marks `name` STARTING on `host` (already reserved) and asks the host's agent to start it. */
  async #run(name: string, host: string, reason = ""): Promise<control.VmInfo> {
    const placed = await this.store.mutateVm(name, (r) => ({
      ...r,
      state: "STARTING",
      host,
      reason,
      consoleUrl: "",
      exitCode: 0,
      deviceHost: "",
      migratingTo: "",
    }));
    if (!placed) return fail(Status.NOT_FOUND, `VM ${name} was removed meanwhile`);
    await this.#event(name, "placed", host);
    const r = placed.value;
    try {
      const vm = await this.bus.request(
        { prefix: control.hostPrefix(host) },
        control.agentOps.start,
        { name, quota: r.quota, labels: r.labels, boot: r.boot },
        { timeoutMs: this.#agentTimeoutMs, retries: 0 },
      );
      const done = await this.store.mutateVm(name, (x) => ({
        ...x,
        state: "RUNNING",
        consoleUrl: vm.consoleUrl,
      }));
      await this.#event(name, "running", host);
      return vmInfo(done!.value, done!.revision);
    } catch (e) {
      const why = `host ${host} could not start it: ${(e as Error).message}`;
      await this.#release(host, name);
      await this.store.mutateVm(name, (x) => ({ ...x, state: "FAILED", reason: why }));
      await this.#event(name, "failed", host, why);
      return fail(
        Status.FAILED_PRECONDITION,
        `VM ${name} placed on ${host}, but ${why} (the record stays FAILED: ` +
          `./vmesh start ${name} retries, ./vmesh rm ${name} removes it)`,
      );
    }
  }

  async #record(name: string): Promise<Versioned<VmRecord>> {
    if (!NAME.test(name ?? "")) {
      fail(Status.INVALID_ARGUMENT, `bad VM name ${JSON.stringify(name)}`);
    }
    const cur = await this.store.getVm(name);
    if (!cur) return fail(Status.NOT_FOUND, `no VM ${name} (./vmesh ls lists them)`);
    return cur;
  }

  /** The record of one VM. */
  async inspect(name: string): Promise<control.VmInfo> {
    const cur = await this.#record(name);
    return vmInfo(cur.value, cur.revision);
  }

  /** Every VM carrying all of `labels`, by name. */
  list(labels: Record<string, string> = {}): control.VmList {
    const vms = this.store.vms()
      .filter((v) => Object.entries(labels).every(([k, x]) => v.value.labels[k] === x))
      .sort((a, b) => a.value.name < b.value.name ? -1 : 1)
      .map((v) => vmInfo(v.value, v.revision));
    return { vms };
  }

  /** Stops a VM (its record and host stay; `start` runs it again). Idempotent. */
  stop(name: string): Promise<control.VmInfo> {
    return this.#locked(name, async () => {
      const cur = await this.#record(name);
      const r = cur.value;
      if (!ACTIVE_STATES.has(r.state) && r.state !== "LOST") return vmInfo(r, cur.revision);
      let note = "";
      if (r.host && this.hosts.isUp(r.host)) {
        await this.bus.request({ prefix: control.hostPrefix(r.host) }, control.agentOps.stop, {
          name,
        }, { timeoutMs: 30_000, retries: 1 }).catch((e) => note = `agent: ${e.message}`);
      } else note = `host ${r.host || "?"} not announcing: marked stopped`;
      await this.#onDeviceHost(r, control.agentOps.stop);
      await this.#release(r.host, name);
      const done = await this.store.mutateVm(
        name,
        (x) => ({ ...x, state: "STOPPED", reason: note }),
      );
      await this.#event(name, "stopped", r.host, note || undefined);
      return vmInfo(done!.value, done!.revision);
    });
  }

  /** Starts a stopped, exited, failed or lost VM again: on its host if it fits, else placed anew. */
  startVm(name: string): Promise<control.VmInfo> {
    return this.#locked(name, async () => {
      const cur = await this.#record(name);
      const r = cur.value;
      if (ACTIVE_STATES.has(r.state)) return vmInfo(r, cur.revision);
      // Claim the transition: of two control services starting it, one moves it to STARTING.
      try {
        await this.store.updateVm(
          { ...r, state: "STARTING", updatedMs: Date.now() },
          cur.revision,
        );
      } catch (e) {
        if (e instanceof CasConflict) {
          return fail(Status.FAILED_PRECONDITION, `VM ${name} changed meanwhile: try again`);
        }
        throw e;
      }
      const host = await this.#place(r, r.host || undefined).catch(async (e) => {
        await this.store.mutateVm(name, (x) => ({ ...x, state: r.state })).catch(() => {});
        throw e;
      });
      if ("refusal" in host) {
        await this.store.mutateVm(name, (x) => ({ ...x, state: r.state, reason: host.refusal }));
        await this.#event(name, "refused", undefined, host.refusal);
        return fail(Status.FAILED_PRECONDITION, host.refusal);
      }
      return await this.#run(name, host.host);
    });
  }

  /** Removes a VM and its files on its host; a running one only with `force`. */
  rm(name: string, force: boolean): Promise<control.VmInfo> {
    return this.#locked(name, async () => {
      const cur = await this.#record(name);
      const r = cur.value;
      if (ACTIVE_STATES.has(r.state) && !force) {
        return fail(
          Status.FAILED_PRECONDITION,
          `VM ${name} is ${r.state.toLowerCase()} on ${r.host}: ./vmesh stop ${name} first, ` +
            `or ./vmesh rm -f ${name}`,
        );
      }
      if (r.host && this.hosts.isUp(r.host)) {
        await this.bus.request({ prefix: control.hostPrefix(r.host) }, control.agentOps.rm, {
          name,
        }, { timeoutMs: 30_000, retries: 1 }).catch((e) =>
          this.bus.log(`vmesh-control: rm ${name} on ${r.host}: ${e.message}`)
        );
      }
      await this.#onDeviceHost(r, control.agentOps.rm);
      await this.#release(r.host, name);
      await this.#deleteRecord(name);
      await this.#event(name, "removed", r.host);
      return vmInfo(r, cur.revision);
    });
  }

  /**
   * Stops or removes (`op`) the device services a live-migrated VM left on its first host,
   * where its CPU no longer runs.
   */
  async #onDeviceHost(r: VmRecord, op: typeof control.agentOps.stop): Promise<void> {
    const dh = r.deviceHost;
    if (!dh || dh === r.host || !this.hosts.isUp(dh)) return;
    await this.bus.request({ prefix: control.hostPrefix(dh) }, op, { name: r.name }, {
      timeoutMs: 30_000,
      retries: 1,
    }).catch((e) => this.bus.log(`vmesh-control: ${r.name}'s devices on ${dh}: ${e.message}`));
  }

  /** The console output of a VM so far, from the agent of the host of its console service. */
  async logs(name: string): Promise<control.Logs> {
    const r = (await this.#record(name)).value;
    if (!r.host) return fail(Status.FAILED_PRECONDITION, `VM ${name} has no host yet`);
    const host = r.deviceHost || r.host;
    if (!this.hosts.isUp(host)) {
      return fail(
        Status.UNAVAILABLE,
        `host ${host} is not announcing: VM ${name}'s console log is in that agent's --dir`,
      );
    }
    return await this.bus.request({ prefix: control.hostPrefix(host) }, control.agentOps.logs, {
      name,
    }, { timeoutMs: 10_000 });
  }

  /** Every host heard from, with its reservations, by name. */
  async hostList(): Promise<control.HostList> {
    const entries = this.hosts.all().sort((a, b) => a.load.host < b.load.host ? -1 : 1);
    const ledgers = await Promise.all(entries.map((e) => this.store.ledger(e.load.host)));
    const placed = new Map<string, number>();
    for (const v of this.store.vms()) {
      if (v.value.host) placed.set(v.value.host, (placed.get(v.value.host) ?? 0) + 1);
    }
    return {
      hosts: entries.map((e, i) => {
        const reserved = { harts: 0, ramMib: 0, diskMib: 0 };
        for (const res of Object.values(ledgers[i].value.vms)) {
          reserved.harts += res.quota.harts;
          reserved.ramMib += res.quota.ramMib;
          reserved.diskMib += res.quota.diskMib;
        }
        return {
          host: e.load.host,
          labels: e.load.labels,
          cores: e.load.cores,
          ramMib: e.load.ramMib,
          diskMib: e.load.diskMib,
          freeRamMib: e.load.freeRamMib,
          cpuUse: e.load.cpuUse,
          reserved,
          vms: placed.get(e.load.host) ?? 0,
          up: this.hosts.isUp(e.load.host),
          lastSeenMs: e.seenMs,
        };
      }),
    };
  }

  /** The last events (of one VM when `vm` is given), oldest first. */
  events(vm?: string, max?: number): Promise<ControlEvent[]> {
    return this.store.events(vm, max);
  }

  /** Brings records in line with what a host's agent says it runs. */
  async #onLoad(load: control.HostLoad): Promise<void> {
    if (this.hosts.announce(load) && this.#lostHosts.delete(load.host)) {
      await this.#event("_hosts", "host-up", load.host);
    }
    const running = new Map(load.vms.map((v) => [v.name, v]));
    await this.#stopOrphans(load);
    for (const { value: r } of this.store.vms()) {
      if (r.host !== load.host || this.#locks.has(r.name)) continue;
      const v = running.get(r.name);
      // An announcement older than the record's last change says nothing new about it.
      if (load.atMs <= r.updatedMs) continue;
      // Its CPU moved on (live migration): what is left here are its device services.
      if (v?.migratedTo) continue;
      let to: VmStateName | undefined;
      let why = "";
      if (r.state === "RUNNING" && !v) {
        to = "LOST";
        why = `host ${load.host}'s agent no longer runs it (the agent restarted?)`;
      } else if (r.state === "RUNNING" && v && !v.running) {
        to = "EXITED";
        why = `guest exited with code ${v.exitCode}`;
      } else if (r.state === "LOST" && v?.running) {
        to = "RUNNING";
        why = `host ${load.host} announces it again`;
      }
      if (!to) continue;
      const target = to;
      await this.#locked(r.name, async () => {
        // A lost VM back on its host takes its room again only if the room is still free:
        // placements since the host came back may have taken it (no double placement).
        if (target === "RUNNING" && !(await this.#reserveBack(load.host, r))) {
          await this.#stopThere(
            load.host,
            r.name,
            `it came back on ${load.host}, whose room placements had taken meanwhile`,
          );
          return;
        }
        const done = await this.store.mutateVm(
          r.name,
          (x) =>
            x.state === r.state && x.host === load.host
              ? { ...x, state: target, reason: why, exitCode: v?.exitCode ?? x.exitCode }
              : undefined,
        );
        if (!done) return;
        if (!done.written) {
          // Another control service moved it first; keep a reservation only if it is still here.
          const here = done.value.host === load.host && ACTIVE_STATES.has(done.value.state);
          if (target === "RUNNING" && !here) await this.#release(load.host, r.name);
          return;
        }
        if (target !== "RUNNING") await this.#release(load.host, r.name);
        if (target === "EXITED") await this.#onDeviceHost(done.value, control.agentOps.stop);
        await this.#event(r.name, target.toLowerCase(), load.host, why);
      });
    }
  }

  /**
   * Reserves `r`'s quota on `host` again (compare-and-set, with the placement fit check);
   * false when it no longer fits there.
   */
  async #reserveBack(host: string, r: VmRecord): Promise<boolean> {
    const entry: HostEntry | undefined = this.hosts.get(host);
    if (!entry) return false;
    let fits = true;
    await this.store.mutateLedger(host, (l) => {
      fits = !misfit({
        host,
        up: true,
        cores: entry.load.cores,
        ramMib: entry.load.ramMib,
        diskMib: entry.load.diskMib,
        cpuUse: entry.load.cpuUse,
        ledger: l,
      }, { ...r, preferHost: undefined });
      if (!fits) return undefined;
      l.vms[r.name] = { quota: r.quota, labels: r.labels };
      return l;
    });
    return fits;
  }

  /** Stops VM `name` on `host`'s agent (it runs there unaccounted), with an event. */
  async #stopThere(host: string, name: string, why: string): Promise<void> {
    try {
      await this.bus.request({ prefix: control.hostPrefix(host) }, control.agentOps.stop, {
        name,
      }, { timeoutMs: 30_000, retries: 1 });
    } catch (e) {
      this.bus.log(`vmesh-control: stop ${name} on ${host}: ${(e as Error).message}`);
      return;
    }
    await this.#event(name, "orphan-stopped", host, why);
  }

  /**
   * Stops what a host runs that no record wants there (removed, placed elsewhere, or stopped,
   * exited or failed, e.g. after an agent start that outlived its timeout), so nothing runs
   * unaccounted in the ledgers. The bucket, read now, decides, not this service's copy.
   */
  async #stopOrphans(load: control.HostLoad): Promise<void> {
    for (const v of load.vms) {
      if (!v.running || this.#locks.has(v.name)) continue;
      const cached = this.store.vms().find((x) => x.value.name === v.name)?.value;
      const wanted = (r?: VmRecord) =>
        r && (r.migratingTo === load.host ||
          r.host === load.host && (ACTIVE_STATES.has(r.state) || r.state === "LOST"));
      if (wanted(cached)) continue;
      await this.#locked(v.name, async () => {
        const fresh = (await this.store.getVm(v.name))?.value;
        if (wanted(fresh) || (fresh && fresh.updatedMs >= load.atMs)) return;
        const op = fresh ? control.agentOps.stop : control.agentOps.rm;
        try {
          await this.bus.request({ prefix: control.hostPrefix(load.host) }, op, {
            name: v.name,
          }, { timeoutMs: 30_000, retries: 1 });
        } catch (e) {
          this.bus.log(`vmesh-control: orphan ${v.name} on ${load.host}: ${(e as Error).message}`);
          return;
        }
        const why = fresh
          ? `it ran on ${load.host} while its record says ${fresh.state.toLowerCase()}` +
            (fresh.host && fresh.host !== load.host ? ` on ${fresh.host}` : "")
          : `it ran on ${load.host} without a record`;
        await this.#event(v.name, "orphan-stopped", load.host, why);
      });
    }
  }

  /**
   * Fails starts no one finishes: a record STARTING for longer than an agent may take (its
   * control service died between claiming and starting it), unless this process runs it.
   */
  async #sweepStuck(): Promise<void> {
    const limit = this.#agentTimeoutMs + this.hosts.lostTimeoutMs;
    for (const { value: r } of this.store.vms()) {
      if (r.state !== "STARTING" || this.#locks.has(r.name)) continue;
      if (Date.now() - r.updatedMs <= limit) continue;
      const why = `its start did not finish within ${limit} ms (its control service stopped?)`;
      await this.#locked(r.name, async () => {
        const done = await this.store.mutateVm(
          r.name,
          (x) =>
            x.state === "STARTING" && Date.now() - x.updatedMs > limit
              ? { ...x, state: "FAILED", reason: why }
              : undefined,
        );
        if (!done?.written) return;
        await this.#release(r.host, r.name);
        await this.#event(r.name, "failed", r.host || undefined, why);
      });
    }
  }

  /** Marks the VMs of hosts that stopped announcing lost. */
  async #sweepLost(): Promise<void> {
    await this.#sweepStuck();
    this.#rebalanceTick();
    for (const { value: r } of this.store.vms()) {
      if (!r.host || !ACTIVE_STATES.has(r.state) || !this.hosts.isLost(r.host)) continue;
      if (this.#locks.has(r.name)) continue;
      const seen = this.hosts.get(r.host)?.seenMs;
      const why = `host ${r.host} stopped announcing` +
        (seen ? ` (last at ${new Date(seen).toISOString()})` : " (never heard since this start)");
      if (!this.#lostHosts.has(r.host)) {
        this.#lostHosts.add(r.host);
        await this.#event("_hosts", "host-lost", r.host, why);
      }
      await this.#locked(r.name, async () => {
        const done = await this.store.mutateVm(
          r.name,
          (x) =>
            ACTIVE_STATES.has(x.state) && x.host === r.host
              ? { ...x, state: "LOST", reason: why }
              : undefined,
        );
        if (!done?.written) return;
        await this.#release(r.host, r.name);
        await this.#event(r.name, "lost", r.host, why);
        // The recreation runs on: other lost VMs need not wait for its agent start.
        this.#tryRecreate(done.value);
      });
    }
    // Lost VMs not recreated yet (no host fitted, or this service started since) try again.
    for (const { value: r } of this.store.vms()) {
      if (r.state !== "LOST" || !r.host || !this.hosts.isLost(r.host)) continue;
      if (this.#locks.has(r.name)) continue;
      if (Date.now() - (this.#recreateTried.get(r.name) ?? 0) < RECREATE_RETRY_MS) continue;
      this.#tryRecreate(r);
    }
  }

  /** Starts {@link ControlService.#recreate} of `r` in the background, noting the attempt. */
  #tryRecreate(r: VmRecord): void {
    this.#recreateTried.set(r.name, Date.now());
    this.#recreate(r).catch((e) =>
      this.bus.log(`vmesh-control: recreate ${r.name}: ${(e as Error).message}`)
    );
  }

  /**
   * Recreates a VM lost with its host from its last snapshot, on another host that fits
   * (the lost host is down, so placement skips it). Of several control services, the one
   * whose compare-and-set moves the record from LOST to STARTING does it. Without a
   * snapshot, or when no host fits, the VM stays lost (with the reason).
   */
  async #recreate(lost: VmRecord): Promise<void> {
    const snap = await this.#lastSnapshot(lost);
    if (!snap) return;
    await this.#locked(lost.name, async () => {
      const why = `recreated from snapshot ${snap} (host ${lost.host} lost)`;
      const claimed = await this.store.mutateVm(
        lost.name,
        (x) =>
          x.state === "LOST" && x.host === lost.host && x.updatedMs === lost.updatedMs
            ? { ...x, state: "STARTING", boot: { ...x.boot, snapshot: snap }, reason: why }
            : undefined,
      );
      if (!claimed?.written) return;
      const rec = claimed.value;
      await this.#event(rec.name, "recreating", undefined, `from snapshot ${snap}`);
      const host = await this.#place(rec).catch((e) => ({ refusal: (e as Error).message }));
      if ("refusal" in host) {
        const reason = `lost with host ${lost.host}; not recreated from ${snap}: ${host.refusal}`;
        await this.store.mutateVm(rec.name, (x) => ({ ...x, state: "LOST", reason }));
        await this.#event(rec.name, "refused", undefined, reason);
        return;
      }
      const info = await this.#run(rec.name, host.host, why).catch(() => undefined);
      if (info) await this.#event(rec.name, "recreated", host.host, why);
    });
  }

  /**
   * Times each host's overload (rebalance.ts) and starts one move off a host that stayed
   * overloaded for the policy's time (one at a time per host).
   */
  #rebalanceTick(): void {
    const o = this.#rebalance;
    if (!o) return;
    const now = Date.now();
    const hosts: LoadedHost[] = this.hosts.all().map((e) => ({
      ...this.#candidate(e, { vms: {} }),
      vmCpu: Object.fromEntries(
        e.load.vms.filter((v) => v.running).map((v) => [v.name, v.cpuUse ?? 0]),
      ),
    }));
    for (const h of hosts) {
      if (!h.up || hostLoad(h) < o.cpuThreshold) {
        this.#overSince.delete(h.host);
        continue;
      }
      const since = this.#overSince.get(h.host) ?? now;
      this.#overSince.set(h.host, since);
      if (now - since < o.afterMs || this.#moving.has(h.host)) continue;
      this.#moving.add(h.host);
      this.#moveOff(hosts, h.host, now).catch((e) =>
        this.bus.log(`vmesh-control: rebalance ${h.host}: ${(e as Error).message}`)
      ).finally(() => {
        this.#moving.delete(h.host);
        // The host gets a fresh period to show whether it is still overloaded.
        this.#overSince.delete(h.host);
      });
    }
  }

  /** Picks a VM to move off `from` (ledgers read now) and live-migrates it. */
  async #moveOff(hosts: LoadedHost[], from: string, now: number): Promise<void> {
    const ledgers = await Promise.all(hosts.map((h) => this.store.ledger(h.host)));
    hosts.forEach((h, i) => h.ledger = ledgers[i].value);
    const o = this.#rebalance!;
    const m = pickMove(hosts, from, this.store.vms().map((v) => v.value), this.#movedAt, now, o);
    if (m) await this.#migrate(m);
  }

  /**
   * Live-migrates a VM (services/cpu/migration): reserves it on the target (the fit-checked
   * compare-and-set), has the target's agent start an incoming CPU service, asks the VM's CPU
   * service to migrate there, then records the new host (the console and disk services stay on
   * the first host: `deviceHost`) and releases the source. A failure leaves it where it was.
   */
  async #migrate(m: Move): Promise<void> {
    await this.#locked(m.vm, async () => {
      const cur = await this.store.getVm(m.vm);
      if (cur?.value.state !== "RUNNING" || cur.value.host !== m.from) return;
      const r = cur.value;
      if (!(await this.#reserveBack(m.to, r))) return;
      const why = `host ${m.from}'s VMs used ${(m.load * 100).toFixed(0)}% of its cores`;
      await this.store.mutateVm(m.vm, (x) => ({ ...x, migratingTo: m.to }));
      await this.#event(m.vm, "migrating", m.to, `from ${m.from}: ${why}`);
      try {
        await this.bus.request({ prefix: control.hostPrefix(m.to) }, control.agentOps.incoming, {
          name: r.name,
          quota: r.quota,
          labels: r.labels,
          boot: r.boot,
        }, { timeoutMs: this.#agentTimeoutMs, retries: 0 });
        const reply = await this.bus.request(
          { prefix: vmControlPrefix(m.vm) },
          vmOps.ops.migrate,
          { to: m.to },
          { timeoutMs: 120_000, retries: 0 },
        );
        const reason = `live-migrated from ${m.from} (${why}; downtime ${reply.downtimeMs} ms)`;
        await this.store.mutateVm(m.vm, (x) => ({
          ...x,
          host: m.to,
          deviceHost: x.deviceHost || m.from,
          migratingTo: "",
          reason,
        }));
        await this.#release(m.from, m.vm);
        this.#movedAt.set(m.vm, Date.now());
        await this.#event(m.vm, "migrated", m.to, reason);
      } catch (e) {
        const reason = `live migration to ${m.to} failed: ${(e as Error).message}`;
        await this.bus.request({ prefix: control.hostPrefix(m.to) }, control.agentOps.stop, {
          name: m.vm,
        }, { timeoutMs: 30_000, retries: 1 }).catch(() => {});
        await this.#release(m.to, m.vm);
        await this.store.mutateVm(m.vm, (x) => ({ ...x, migratingTo: "", reason }));
        this.#movedAt.set(m.vm, Date.now());
        await this.#event(m.vm, "migrate-failed", m.to, reason);
      }
    });
  }

  /** Stops serving; the records stay in JetStream. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#sub?.unsubscribe();
    await this.#service?.stop();
    await Promise.all([...this.#locks.values()].map((p) => p.catch(() => {})));
    this.store.close();
  }
}
