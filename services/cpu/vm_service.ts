/**
 * The CPU service on the bus: one `virt` machine whose virtio devices reach their backends
 * over NATS (one virtio-blk per disk service, virtio-net on a switch port, virtio-rng
 * local), whose UART talks to the console service, and which serves the VM control
 * contract (`vmesh.<vm>.ctl.{start,stop,pause,resume,status,snapshot,migrate}`). The run loop
 * never waits on the bus: requests go out asynchronously and completions raise interrupts. Made
 * with `restore`, the machine starts from a snapshot fetched from the memory service; with
 * `incoming`, it waits for a live migration (migration/).
 */

import type { Context } from "@opentelemetry/api";
import {
  block,
  type Bus,
  BusError,
  type DeviceService,
  Status,
  vm as vmContract,
  vmControlPrefix,
} from "@vmesh/bus";
import { Machine, MachineError, type MachineHart, type MachineOptions } from "./machine/machine.ts";
import type { HartConfig } from "./machine/machine.ts";
import { Hart } from "./hart/mod.ts";
import { type EngineSnapshot, StopReason } from "./engine.ts";
import { VirtioBlk } from "./virtio/blk.ts";
import { VirtioNet } from "./virtio/net.ts";
import { VirtioRng } from "./virtio/rng.ts";
import type { VirtioSlotSpec } from "./virtio/slot.ts";
import { BusBlockClient } from "./backends/bus_block_client.ts";
import { BusNetClient } from "./backends/bus_net_client.ts";
import { ConsoleBridge } from "./backends/console_bridge.ts";
import { blkTracer, startLifecycleSpan, withSpan } from "./tracing.ts";
import {
  applySnapshot,
  type FetchedSnapshot,
  SnapshotError,
  type SnapshotMachineFlags,
  takeSnapshot,
} from "./snapshot/mod.ts";
import {
  type Incoming,
  type IncomingClock,
  migrateOut,
  type MigrateResult,
  serveIncoming,
} from "./migration/mod.ts";
import { createHash } from "node:crypto";
import type { DeviceIo } from "./replay/device_log.ts";

/** Service name for discovery. */
export const CPU_SERVICE_NAME = "vmesh-cpu";

/** A disk: the device name of a disk service on the bus. */
export interface VmDisk {
  device: string;
}

/** A network port on a switch of the net service. */
export interface VmNic {
  switch: string;
  /** Default {@link defaultMac} of the VM name and the nic's index. */
  mac?: string;
  /**
   * With `restore`: the MAC the NIC changes to when the VM starts running (a clone's). The
   * switch port joins with it, the snapshot's manifest of this VM records it, and the guest is
   * told by a link bounce ({@link VirtioNet.changeMac}).
   */
  newMac?: string;
}

/** Options of a {@link VmService}. */
export interface VmServiceOptions {
  /** VM name (first subject token). */
  vm: string;
  /** Machine options (images, RAM, clock, ...); console and virtio are filled in here. */
  machine: Omit<MachineOptions, "virtio" | "onConsoleOutput" | "createHart">;
  /** Disks in slot order (the first is /dev/vda). */
  disks?: VmDisk[];
  /** Network ports. */
  nics?: VmNic[];
  /** Add a virtio-rng (default true). */
  rng?: boolean;
  /** Also hand console output here (e.g. a local log). */
  onConsoleOutput?: (bytes: Uint8Array) => void;
  /** Timeouts of block requests. */
  block?: { attemptTimeoutMs?: number; deadlineMs?: number };
  /** Service version for discovery. */
  version?: string;
  /** Builds the hart (default: the interpreter). */
  createHart?: (cfg: HartConfig) => MachineHart;
  /**
   * Start from this snapshot (see snapshot/fetch_snapshot.ts): its RAM, hart and device
   * records are loaded into the new machine before it runs. `machine` must match it.
   */
  restore?: FetchedSnapshot;
  /** The devices' seams for a recorded run (replay/device_log.ts): block, frames in, entropy. */
  io?: DeviceIo;
}

/** Of {@link VmService.migrate}: the migration's figures. */
export type MigrateReplyFigures = MigrateResult;

/** The machine's firmware, kernel and initrd as bytes, as a snapshot stores them. */
function readImages(
  m: VmServiceOptions["machine"],
): { role: string; bytes: Uint8Array }[] {
  const out: { role: string; bytes: Uint8Array }[] = [];
  const roles = [["bios", "firmware", m.bios], ["kernel", "kernel", m.kernel], [
    "initrd",
    "initrd",
    m.initrd,
  ]] as const;
  for (const [role, what, img] of roles) {
    if (img === undefined || img === null) continue;
    if (typeof img !== "string") {
      out.push({ role, bytes: img });
      continue;
    }
    try {
      out.push({ role, bytes: Deno.readFileSync(img) });
    } catch (e) {
      throw new MachineError(`cannot read ${what} ${img}: ${e instanceof Error ? e.message : e}`);
    }
  }
  return out;
}

/** A hart that can be held: while paused it reports Idle and no pending interrupt. */
class PausableHart implements MachineHart {
  paused = false;
  /** Called once at the next batch that runs (a migration's first guest instruction here). */
  onRun: (() => void) | undefined = undefined;
  constructor(readonly inner: MachineHart) {}
  run(budget: number): StopReason {
    if (this.paused) return StopReason.Idle;
    if (this.onRun) {
      const f = this.onRun;
      this.onRun = undefined;
      f();
    }
    return this.inner.run(budget);
  }
  /** Drops the hart's cached translations (the dirty log's per-round reset). */
  flushTlb(): void {
    const h = this.inner as Partial<{ flushTlb(): void }>;
    if (typeof h.flushTlb !== "function") {
      throw new MachineError(
        "this engine cannot log dirty pages: live migration needs jit or interp",
      );
    }
    h.flushTlb();
  }
  get instret(): number {
    return this.inner.instret;
  }
  get pc(): number {
    return this.inner.pc;
  }
  interruptPending(): boolean {
    return !this.paused && this.inner.interruptPending();
  }
  nextDeadline(): number {
    return this.paused ? Infinity : this.inner.nextDeadline();
  }
  kick(): void {
    this.inner.kick();
  }
  reset(pc: number): void {
    this.inner.reset(pc);
  }
  save(): EngineSnapshot {
    return this.inner.save();
  }
  load(state: EngineSnapshot): void {
    this.inner.load(state);
  }
  setReg(i: number, v: bigint): void {
    this.inner.setReg(i, v);
  }
  clearReservation(): void {
    this.inner.clearReservation?.();
  }
}

/**
 * A locally administered MAC for nic `index` of VM `vm`: 52:54:00 (QEMU's prefix), then two
 * bytes hashed from the name (so VMs on one switch differ) and the index.
 */
export function defaultMac(vm: string, index: number): string {
  let h = 0x811c9dc5;
  for (const c of new TextEncoder().encode(vm)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  const hex = (b: number) => (b & 0xff).toString(16).padStart(2, "0");
  return `52:54:00:${hex(h >>> 8)}:${hex(h)}:${hex(index)}`;
}

/** "52:54:00:12:34:56" of 6 bytes. */
function formatMacBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** The pc as the unsigned 64-bit value (the hart reports high addresses sign-extended). */
export function pcBits(pc: number): bigint {
  return BigInt.asUintN(64, BigInt(Math.trunc(pc)));
}

interface Attached {
  device: string;
  kind: string;
  subject: string;
  connected: () => boolean;
}

/** One VM on the bus. Make it with {@link VmService.create}, then `serve()` and `run()`. */
export class VmService {
  readonly machine: Machine;
  readonly console: ConsoleBridge;
  readonly #harts: PausableHart[] = [];
  readonly #nets: { client: BusNetClient; device: VirtioNet }[];
  readonly #devices: Attached[];
  #svc?: DeviceService;
  #state: number = vmContract.State.CREATED;
  #running?: Promise<number>;
  #boot: { span?: ReturnType<typeof startLifecycleSpan> } = {};
  #images: { role: string; bytes: Uint8Array }[] = [];
  #flags!: SnapshotMachineFlags;
  #snapshotting = false;
  #migrating = false;
  /** Set once the VM moved to that host (this service then stops without leaving its ports). */
  migratedTo: string | undefined = undefined;
  /** Its switch ports are joined (not before `serve`, nor once handed to a migration target). */
  #ioAttached = false;
  /** Where console input goes: the machine, or (incoming, before the hand-over) a buffer. */
  #consoleInput: (bytes: Uint8Array, seq: number) => void = (b) => this.machine.sendInput(b);
  /** A snapshot holds the guest; it was running before (and is to run on after). */
  #holding = false;
  #heldRunning = false;
  #release: () => void = () => {};
  /**
   * Resolves at the first `start`, `resume` or `stop` request while the VM is created and not
   * yet run: the cue of a CPU service started with `--wait-start` to call `run()` (which
   * returns at once after a stop).
   */
  readonly startRequested: Promise<void> = new Promise((r) => this.#release = r);

  private constructor(
    readonly bus: Bus,
    readonly opts: VmServiceOptions,
    machine: (hart: (cfg: HartConfig) => MachineHart) => Machine,
    consoleBridge: ConsoleBridge,
    nets: { client: BusNetClient; device: VirtioNet }[],
    devices: Attached[],
  ) {
    const create = opts.createHart ?? ((cfg: HartConfig) => new Hart(cfg));
    this.machine = machine((cfg) => {
      const hart = new PausableHart(create(cfg));
      this.#harts.push(hart);
      return hart;
    });
    this.console = consoleBridge;
    this.#nets = nets;
    this.#devices = devices;
  }

  /**
   * Connects the disks (asks each disk service for its geometry), prepares the network
   * ports and the console bridge, and builds the machine. Throws a `MachineError` for bad
   * images and a `BusError` when a disk service does not answer.
   */
  static async create(bus: Bus, opts: VmServiceOptions): Promise<VmService> {
    // What a snapshot stores of the images (the machine reads them itself, naming the files).
    const images = readImages(opts.machine);
    const specs: VirtioSlotSpec[] = [];
    const devices: Attached[] = [];
    let slot = 0;
    for (const d of opts.disks ?? []) {
      const client = new BusBlockClient(bus, { vm: opts.vm, device: d.device, ...opts.block });
      const blk = await VirtioBlk.open(opts.io?.block(d.device, client) ?? client, {
        serial: d.device,
        tracer: blkTracer(opts.vm, d.device),
      });
      specs.push({ slot: slot++, device: blk });
      devices.push({
        device: d.device,
        kind: "virtio-blk",
        subject: client.prefix,
        connected: () => client.connected,
      });
    }
    const nets: { client: BusNetClient; device: VirtioNet }[] = [];
    (opts.nics ?? []).forEach((n, i) => {
      if (n.newMac !== undefined && !opts.restore) {
        throw new MachineError(`nic ${i}: a new MAC is only for a restored VM`);
      }
      const mac = n.newMac ?? n.mac ?? defaultMac(opts.vm, i);
      const client = new BusNetClient(bus, { switch: n.switch, port: `${opts.vm}-net${i}`, mac });
      const io = opts.io;
      const device = new VirtioNet(
        io ? { send: (f: Uint8Array) => (io.sent(i), client.send(f)) } : client,
        { mac },
      );
      nets.push({ client, device });
      specs.push({ slot: slot++, device });
      devices.push({
        device: `net${i}`,
        kind: "virtio-net",
        subject: client.prefix,
        connected: () => client.joined,
      });
    });
    if (opts.rng ?? true) {
      specs.push({
        slot: slot++,
        device: new VirtioRng(opts.io ? { entropy: opts.io.entropy } : {}),
      });
      devices.push({ device: "rng0", kind: "virtio-rng", subject: "", connected: () => true });
    }
    const bridge = new ConsoleBridge(bus, { vm: opts.vm });
    // `vm boot`: from run() to the guest's first console output (the machine is alive).
    const boot: { span?: ReturnType<typeof startLifecycleSpan> } = {};
    devices.push({
      device: "console",
      kind: "uart16550",
      subject: `vmesh.${opts.vm}.console`,
      connected: () => true,
    });
    const build = (createHart: (cfg: HartConfig) => MachineHart) =>
      new Machine({
        ...opts.machine,
        virtio: specs,
        createHart,
        onConsoleOutput: (bytes) => {
          if (boot.span) endBoot(boot, "console");
          bridge.write(bytes);
          opts.onConsoleOutput?.(bytes);
        },
      });
    const svc = new VmService(bus, opts, build, bridge, nets, devices);
    svc.#boot = boot;
    svc.#images = images;
    svc.#flags = {
      ramSize: opts.machine.ramSize,
      engine: opts.machine.engine,
      append: opts.machine.append,
      disks: (opts.disks ?? []).map((d) => d.device),
      nics: (opts.nics ?? []).map((n, i) => ({
        switch: n.switch,
        mac: n.newMac ?? n.mac ?? defaultMac(opts.vm, i),
      })),
      rng: opts.rng ?? true,
      // So a restore rebuilds as many harts.
      ...(opts.machine.harts === undefined ? {} : { harts: opts.machine.harts }),
    };
    if (opts.restore) applySnapshot(svc.machine, opts.restore);
    return svc;
  }

  /** Joins the switches, listens for console input and serves the control contract. */
  async serve(): Promise<DeviceService> {
    await this.#attachIo();
    return await this.#serveControl();
  }

  /** The control contract's service (after `serve`). */
  get controlService(): DeviceService | undefined {
    return this.#svc;
  }

  async #attachIo(): Promise<void> {
    // An incoming service listens from the start (buffering): its subscription is kept, so no
    // batch falls between two subscriptions.
    if (!this.console.listening) this.console.listen((b, seq) => this.#consoleInput(b, seq));
    this.#ioAttached = true;
    for (const [i, n] of this.#nets.entries()) {
      const deliver = (f: Uint8Array) => n.device.receive(f);
      await n.client.start(this.opts.io?.receive(i, deliver) ?? deliver);
    }
  }

  async #serveControl(): Promise<DeviceService> {
    this.#svc = await this.bus.serve({
      prefix: vmControlPrefix(this.opts.vm),
      vm: this.opts.vm,
      device: "ctl",
      name: CPU_SERVICE_NAME,
      version: this.opts.version ?? "0.1.0",
      description: "vmesh CPU service: one RISC-V virt machine",
      ops: vmContract.ops,
      handlers: {
        start: (_req, ctx) =>
          this.#control("start", ctx.context, () => {
            this.#refuseWhileHeld("start");
            if (this.#state === vmContract.State.PAUSED) this.#setPaused(false);
            if (this.#state === vmContract.State.CREATED) this.#release();
          }),
        stop: (_req, ctx) =>
          this.#control("stop", ctx.context, () => {
            this.machine.stop(0);
            this.#release();
          }),
        pause: (_req, ctx) =>
          this.#control("pause", ctx.context, () => {
            this.#refuseWhileRecording("pause");
            this.#refuseWithThreads("pause");
            // Paused by a snapshot: stay paused after it.
            this.#heldRunning = false;
            if (this.#state === vmContract.State.RUNNING) this.#setPaused(true);
          }),
        resume: (_req, ctx) =>
          this.#control("resume", ctx.context, () => {
            this.#refuseWhileHeld("resume");
            if (this.#state === vmContract.State.PAUSED) this.#setPaused(false);
            if (this.#state === vmContract.State.CREATED) this.#release();
          }),
        status: () => this.status(),
        snapshot: (req) => this.snapshot(req.name ?? "", req.diskDir ?? ""),
        migrate: async (req) => {
          const r = await this.migrate(req.to, {
            maxDowntimeMs: req.maxDowntimeMs || 30,
            maxRounds: req.maxRounds || 30,
            verify: req.verify ?? false,
          });
          return {
            host: r.host,
            rounds: r.rounds,
            sentPages: r.sentPages,
            sentBytes: BigInt(r.sentBytes),
            finalPages: r.finalPages,
            downtimeMs: r.downtimeMs,
            resumeMs: r.resumeMs,
            totalMs: r.totalMs,
            roundPages: r.roundPages,
            captureMs: r.captureMs,
            targetLoadMs: r.targetLoadMs,
            vm: this.status(),
          };
        },
      },
    });
    return this.#svc;
  }

  /** SHA-256 (hex) of the images the machine was built from, in role order. */
  #imagesDigest(): string {
    const h = createHash("sha256");
    for (const i of this.#images) h.update(i.role).update(i.bytes);
    return h.digest("hex");
  }

  /**
   * Live-migrates the VM to the CPU service waiting with `--incoming` on host `to`
   * (migration/migrate_source.ts); once the target runs, this service stops (exit 0). On
   * failure the guest runs on here.
   */
  async migrate(
    to: string,
    o: { maxDowntimeMs: number; maxRounds: number; verify: boolean },
  ): Promise<MigrateResult> {
    this.#refuseWhileRecording("migration");
    this.#refuseWithThreads("migration");
    if (this.#state !== vmContract.State.RUNNING) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `cannot migrate VM ${this.opts.vm}: it is not running (resume it first)`,
      );
    }
    if (this.#migrating || this.#snapshotting) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `a snapshot or migration of ${this.opts.vm} is under way`,
      );
    }
    this.#migrating = true;
    try {
      const r = await migrateOut({
        bus: this.bus,
        vm: this.opts.vm,
        machine: this.machine,
        harts: this.#harts,
        machineFlags: JSON.stringify(this.#flags),
        imagesDigest: this.#imagesDigest(),
        // As a snapshot holds it: a VM paused meanwhile by a user stays paused after a failure.
        pause: () => {
          this.#hold(true);
          return performance.timeOrigin + performance.now();
        },
        resume: () => this.#hold(false),
        detach: async () => {
          const svc = this.#svc;
          this.#svc = undefined;
          for (const n of this.#nets) n.client.detach();
          this.#ioAttached = false;
          // Both wait on the server: at once, as they are part of the downtime.
          await Promise.all([svc?.stop(), this.console.close()]);
          return { outNext: this.console.seq, inNext: this.console.inputNext };
        },
        reattach: async () => {
          await this.#attachIo();
          await this.#serveControl();
        },
      }, { to, ...o });
      this.migratedTo = r.host;
      // After the reply has gone out: the guest runs on the target now.
      setTimeout(() => this.machine.stop(0), 20);
      return r;
    } finally {
      this.#migrating = false;
    }
  }

  /**
   * Waits for a live migration into this (not yet running) service on host `host`: serves
   * `vmesh.<vm>.incoming.*`; once the source's state is loaded the service takes over the VM's
   * console, switch ports and control subject and runs. `clock` must be the machine's clock.
   */
  incoming(host: string, clock: IncomingClock): Promise<Incoming> {
    // Console input from now on is kept: what the source did not take goes to the guest here.
    const early: { bytes: Uint8Array; seq: number }[] = [];
    let kept = 0;
    this.#consoleInput = (bytes, seq) => {
      early.push({ bytes: bytes.slice(), seq });
      kept += bytes.length;
      // A target kept waiting long: the oldest input is the source's by then.
      while (kept > 1 << 20) kept -= early.shift()!.bytes.length;
    };
    this.console.listen((b, seq) => this.#consoleInput(b, seq));
    return serveIncoming({
      bus: this.bus,
      vm: this.opts.vm,
      host,
      machine: this.machine,
      clock,
      machineFlags: JSON.stringify(this.#flags),
      imagesDigest: this.#imagesDigest(),
      takeOver: async (fin) => {
        this.console.seq = fin.consoleSeq;
        // Input exactly once: what the source had queued, then what it never took.
        this.machine.sendInput(fin.consolePending);
        for (const b of early.splice(0)) {
          const skip = Math.max(0, fin.consoleInNext - b.seq);
          if (skip < b.bytes.length) this.machine.sendInput(b.bytes.subarray(skip));
        }
        this.#consoleInput = (b) => this.machine.sendInput(b);
        const first = new Promise<number>((ok) => {
          const at = () => ok(performance.timeOrigin + performance.now());
          for (const h of this.#harts) h.onRun = at;
          // A guest asleep in WFI runs no instruction until its next interrupt: cap the wait.
          setTimeout(at, 1000);
        });
        const resumed = performance.timeOrigin + performance.now();
        void this.run();
        await this.serve();
        const t = await first;
        for (const h of this.#harts) h.onRun = undefined;
        return { resumed, first: t };
      },
    });
  }

  /**
   * Stores the VM in the memory service under `name` (empty: `<vm>-<UTC time>`): the guest
   * is paused while each disk service freezes a point of its disk (in `diskDir` on its host;
   * empty: next to its overlay) and the harts, devices and RAM are copied, then runs on while
   * the pages are stored. A paused VM stays paused.
   */
  async snapshot(name: string, diskDir = ""): Promise<vmContract.SnapshotReply> {
    this.#refuseWhileRecording("snapshot");
    this.#refuseWithThreads("snapshot");
    const S = vmContract.State;
    if (this.#state !== S.RUNNING && this.#state !== S.PAUSED) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `cannot snapshot VM ${this.opts.vm}: it is not running or paused`,
      );
    }
    if (this.#snapshotting) {
      throw new BusError(Status.FAILED_PRECONDITION, `a snapshot of ${this.opts.vm} is under way`);
    }
    this.#snapshotting = true;
    try {
      const r = await takeSnapshot({
        bus: this.bus,
        vm: this.opts.vm,
        machine: this.machine,
        flags: this.#flags,
        images: this.#images,
        hold: (held) => this.#hold(held),
        checkpointDisks: (snap) => this.#checkpointDisks(snap, diskDir),
      }, name);
      return { ...r, sentBytes: BigInt(r.sentBytes), vm: this.status() };
    } catch (e) {
      if (e instanceof SnapshotError) throw new BusError(Status.FAILED_PRECONDITION, e.message);
      throw e;
    } finally {
      this.#snapshotting = false;
    }
  }

  /** Pauses a running guest for a snapshot (`held`), or lets it run on unless paused meanwhile. */
  #hold(held: boolean): void {
    if (held) {
      this.#holding = true;
      this.#heldRunning = this.#state === vmContract.State.RUNNING;
      if (this.#heldRunning) this.#setPaused(true);
      return;
    }
    this.#holding = false;
    if (this.#heldRunning && this.#state === vmContract.State.PAUSED) this.#setPaused(false);
    this.#heldRunning = false;
  }

  /**
   * A recording (`--record`) logs what reaches the guest at exact instruction counts; a pause,
   * snapshot or migration would hold the harts while the devices go on, which a replay cannot
   * follow.
   */
  /** With `--smp-threads` the harts run in Workers, which a pause does not hold yet. */
  #refuseWithThreads(op: string): void {
    if (!this.opts.machine.threads) return;
    throw new BusError(
      Status.FAILED_PRECONDITION,
      `VM ${this.opts.vm} runs a thread per hart (--smp-threads): a ${op} cannot hold its harts ` +
        `yet; ${op} a VM started without --smp-threads`,
    );
  }

  #refuseWhileRecording(op: string): void {
    if (!this.opts.io?.recording) return;
    throw new BusError(
      Status.FAILED_PRECONDITION,
      `VM ${this.opts.vm} is being recorded (--record): a ${op} would not replay; stop it to ` +
        `end the recording, or ${op} a VM started without --record`,
    );
  }

  #refuseWhileHeld(op: string): void {
    if (this.#holding) {
      const what = this.#migrating ? "migration" : "snapshot";
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `a ${what} holds VM ${this.opts.vm} for a moment: ${op} it after the ${what}`,
      );
    }
  }

  /** Asks every disk service for a point of its disk (`vmesh.<vm>.<disk>.checkpoint`). */
  #checkpointDisks(name: string, dir: string) {
    return Promise.all(this.#flags.disks.map(async (device) => {
      try {
        const r = await this.bus.request(
          { vm: this.opts.vm, device },
          block.pointOps.checkpoint,
          { name, dir },
          { timeoutMs: 600_000, retries: 0 },
        );
        return { device, backend: r.backend, image: r.image, overlay: r.point, frozen: true };
      } catch (e) {
        if (e instanceof BusError) {
          throw new SnapshotError(`disk ${device} has no point for the snapshot: ${e.message}`);
        }
        throw e;
      }
    }));
  }

  /** A control op as a `vm <op>` span (child of the bus request's server span). */
  #control(op: string, parent: Context | undefined, act: () => void): vmContract.VmStatus {
    return withSpan(`vm ${op}`, { "vmesh.vm": this.opts.vm, "vmesh.op": op }, parent, () => {
      act();
      return this.status();
    });
  }

  #setPaused(paused: boolean): void {
    for (const h of this.#harts) h.paused = paused;
    this.#state = paused ? vmContract.State.PAUSED : vmContract.State.RUNNING;
  }

  /** The VM's state as the control contract reports it. */
  status(): vmContract.VmStatus {
    return {
      state: this.#state,
      pc: pcBits(this.machine.hart.pc),
      instret: BigInt(this.machine.instret),
      devices: this.#devices.map((d) => ({
        device: d.device,
        kind: d.kind,
        subject: d.subject,
        connected: d.connected(),
      })),
    };
  }

  /**
   * Runs the machine until it stops; resolves with its exit code. A restored NIC given a
   * `newMac` changes to it first (so the bounce's fallback time starts with the guest).
   */
  run(): Promise<number> {
    if (!this.#running) {
      (this.opts.nics ?? []).forEach((n, i) => {
        const dev = this.#nets[i].device;
        if (n.newMac !== undefined && formatMacBytes(dev.mac) !== n.newMac.toLowerCase()) {
          dev.changeMac(n.newMac);
        }
      });
      this.#state = vmContract.State.RUNNING;
      this.#boot.span = startLifecycleSpan("vm boot", { "vmesh.vm": this.opts.vm });
      this.#running = this.machine.run().then((code) => {
        const cause = this.machine.stopCause;
        endBoot(this.#boot, `stop:${cause ?? "?"}`);
        this.#state = cause === "fail" ? vmContract.State.FAILED : vmContract.State.STOPPED;
        return code;
      }, (e) => {
        endBoot(this.#boot, "error");
        this.#state = vmContract.State.FAILED;
        throw e;
      });
    }
    return this.#running;
  }

  /**
   * Publishes the last console output, leaves the switches it joined (not after a migration:
   * the target has the ports now), stops serving.
   */
  async close(): Promise<void> {
    await this.console.close();
    if (this.#ioAttached) { for (const n of this.#nets) await n.client.close(); }
    await this.#svc?.stop();
  }
}

/** Ends the `vm boot` span once, saying what ended it ("console", or the stop cause). */
function endBoot(boot: { span?: ReturnType<typeof startLifecycleSpan> }, end: string): void {
  const span = boot.span;
  if (!span) return;
  boot.span = undefined;
  span.setAttribute("vmesh.boot.end", end);
  span.end();
}
