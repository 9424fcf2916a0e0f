/**
 * Record and replay of a `vmesh boot`'s devices: what reaches the machine from the bus (block
 * replies, received frames) is held until the top of a run-loop step, applied there and logged
 * with the step; a replay applies the logged replies and frames at the same steps, with no
 * device service at all. The virtio-rng draws from a generator seeded in the log's header.
 *
 * Block requests are numbered per disk in the order the device makes them (the same in a
 * replay, which runs the same way); a reply is logged with its number, its status and, for a
 * read, its data. A block reply's effect on the guest runs in a promise callback, so at the
 * same point in both runs: where the run loop first awaits after that step's top.
 *
 * @example
 * ```ts
 * // const rec = new DeviceRecorder(await RunRecorder.create(path, header));
 * // VmService.create(bus, { ..., io: rec, machine: { ..., journal: rec } });
 * ```
 * @module
 */
import type { Machine, RunJournal } from "../machine/machine.ts";
import type { BlockBackendClient, BlockInfo } from "../virtio/blk.ts";
import type { EntropySource } from "../virtio/rng.ts";
import { type DeviceEntry, ReplayError, type RunRecorder, type RunReplayer } from "./run_log.ts";

/** The seams a VM's devices are built with (VmServiceOptions.io). */
export interface DeviceIo {
  /** The block client the disk `device` uses. */
  block(device: string, client: BlockBackendClient): BlockBackendClient;
  /** What frames received for nic `nic` go to (the device's own receive is `deliver`). */
  receive(nic: number, deliver: (frame: Uint8Array) => unknown): (frame: Uint8Array) => void;
  /** The virtio-rng's entropy. */
  entropy: EntropySource;
  /** Nic `nic` sent a frame (an answer may be on its way). */
  sent(nic: number): void;
  /** True while recording: what is not in the log (pause, snapshot, migrate) is refused. */
  readonly recording?: boolean;
}

/** Real time after a frame went out during which a recording holds guest time when idle. */
const ANSWER_MS = 50;

/** A deterministic entropy source (xorshift32 from `seed`); `state` is saved by snapshots. */
export class SeededEntropy {
  state: number;
  constructor(seed: number) {
    this.state = (seed >>> 0) || 0x9e3779b9;
  }
  /** Fills `dst` (the EntropySource). */
  readonly fill: EntropySource = (dst) => {
    let x = this.state;
    for (let i = 0; i < dst.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      dst[i] = x & 0xff;
    }
    this.state = x;
  };
}

/** A deterministic entropy source (xorshift32 from `seed`). */
export function seededEntropy(seed: number): EntropySource {
  return new SeededEntropy(seed).fill;
}

/** A microtask-draining turn: promise callbacks queued before it have all run after it. */
const turn = () => new Promise<void>((r) => setImmediate(r));

type Settle = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** Block calls numbered per disk, each settled when the journal says so. */
class JournaledBlock implements BlockBackendClient {
  #seq = 0;
  /** After a rewind: the numbers the device's re-submitted requests had (in their order). */
  #resubmit: number[] = [];
  readonly pending = new Map<number, Settle>();
  constructor(
    readonly device: string,
    private readonly infoOf: () => Promise<BlockInfo>,
    private readonly start: (q: number, call: () => Promise<unknown>) => void,
    private readonly real?: BlockBackendClient,
  ) {}
  info(): Promise<BlockInfo> {
    return this.infoOf();
  }
  /** The numbering (for a snapshot at the top of a step). */
  save(): { seq: number; pending: number[] } {
    return { seq: this.#seq, pending: [...this.pending.keys()].sort((a, b) => a - b) };
  }
  /**
   * Back to a saved numbering: the device's `load` re-submits the requests then in flight,
   * in the order it started them, which is the order of their numbers.
   */
  load(s: { seq: number; pending: number[] }): void {
    this.#seq = s.seq;
    this.#resubmit = [...s.pending];
    this.pending.clear();
  }
  #call<T>(call: () => Promise<T>): Promise<T> {
    const q = this.#resubmit.length ? this.#resubmit.shift()! : this.#seq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(q, { resolve: resolve as (v: unknown) => void, reject });
      this.start(q, call);
    });
  }
  read(offset: number, length: number, ctx?: unknown): Promise<Uint8Array> {
    return this.#call(() => this.real!.read(offset, length, ctx));
  }
  write(offset: number, data: Uint8Array, ctx?: unknown): Promise<void> {
    return this.#call(() => this.real!.write(offset, data, ctx));
  }
  flush(ctx?: unknown): Promise<void> {
    return this.#call(() => this.real!.flush(ctx));
  }
  discard(offset: number, length: number, ctx?: unknown): Promise<void> {
    return this.#call(() => this.real!.discard(offset, length, ctx));
  }
}

/** Records a `vmesh boot`: the journal of the machine and the seams of its devices. */
export class DeviceRecorder implements RunJournal, DeviceIo {
  readonly replaying = false;
  readonly recording = true;
  readonly entropy: EntropySource;
  readonly #inner: RunRecorder;
  /** What arrived since the last step top, in arrival order. */
  #arrived: (() => void)[] = [];
  #step = 0;
  readonly #blocks = new Set<JournaledBlock>();
  #lastSent = -Infinity;
  /** Something was applied at this step's top. */
  #applied = false;

  constructor(inner: RunRecorder) {
    this.#inner = inner;
    this.entropy = seededEntropy(inner.header.devices?.seed ?? 1);
  }

  /** Checkpoints written. */
  get checkpoints(): number {
    return this.#inner.checkpoints;
  }

  block(device: string, client: BlockBackendClient): BlockBackendClient {
    const blk: JournaledBlock = new JournaledBlock(device, async () => {
      const v = await client.info();
      this.#inner.device({ s: -1, info: device, v });
      return v;
    }, (q, call) => {
      const arrive = (ok: boolean, v: unknown) =>
        this.#arrived.push(() => {
          const d = ok && v instanceof Uint8Array ? v : undefined;
          this.#inner.device({ s: this.#step, blk: device, q, ok, ...(d ? { d } : {}) });
          const p = blk.pending.get(q)!;
          blk.pending.delete(q);
          if (ok) p.resolve(v);
          else p.reject(v);
        });
      call().then((v) => arrive(true, v), (e) => arrive(false, e));
    }, client);
    this.#blocks.add(blk);
    return blk;
  }

  receive(nic: number, deliver: (frame: Uint8Array) => unknown): (frame: Uint8Array) => void {
    return (frame) => {
      const f = frame.slice();
      this.#arrived.push(() => {
        this.#inner.device({ s: this.#step, net: nic, f });
        deliver(f);
      });
    };
  }

  sent(): void {
    this.#lastSent = performance.now();
  }

  /**
   * Held while a disk owes a reply or a frame went out just now (answers arrive in real
   * time; the guest must not time out waiting on virtual time). Any policy would do: the
   * decisions are in the log.
   */
  holdTime(step: number): boolean {
    const owed = this.#arrived.length > 0 || [...this.#blocks].some((b) => b.pending.size > 0) ||
      performance.now() - this.#lastSent < ANSWER_MS;
    if (owed) this.#inner.device({ s: step, hold: 1 });
    return owed;
  }

  step(step: number, m: Machine): Uint8Array | "stop" | undefined {
    this.#step = step;
    const now = this.#arrived;
    this.#arrived = [];
    this.#applied = now.length > 0;
    for (const apply of now) apply();
    return this.#inner.step(step, m);
  }

  settle(): Promise<void> | undefined {
    return this.#applied ? turn() : undefined;
  }

  /** Log bytes written so far. */
  get bytes(): number {
    return this.#inner.bytes;
  }

  fed(step: number, bytes: Uint8Array): void {
    this.#inner.fed(step, bytes);
  }

  end(step: number, m: Machine, code: number): void {
    this.#inner.end(step, m, code);
  }
}

/** Replays a `vmesh boot` recording: block replies and frames from the log, no services. */
export class DeviceReplayer implements RunJournal, DeviceIo {
  readonly replaying = true;
  readonly entropy: EntropySource;
  readonly #rng: SeededEntropy;
  /** Version 1 logs were recorded without `settle` (a reply's effect ran at the first await). */
  readonly #settles: boolean;
  #applied = false;
  readonly #inner: RunReplayer;
  readonly #blocks = new Map<string, JournaledBlock>();
  readonly #nics = new Map<number, (frame: Uint8Array) => unknown>();
  readonly #infos: Map<string, BlockInfo>;
  readonly #holds: Set<number>;

  constructor(inner: RunReplayer) {
    this.#inner = inner;
    this.#rng = new SeededEntropy(inner.header.devices?.seed ?? 1);
    this.entropy = this.#rng.fill;
    this.#settles = inner.header.version >= 2;
    this.#infos = inner.blockInfos();
    this.#holds = inner.holdSteps();
    inner.onDevice = (e) => {
      this.#applied = true;
      this.#apply(e);
    };
  }

  /**
   * The device side's state at the top of a step (time_travel.ts snapshots it with the
   * machine): each disk's request numbering and the rng's generator.
   */
  save(): { blocks: [string, ReturnType<JournaledBlock["save"]>][]; rng: number } {
    return { blocks: [...this.#blocks].map(([d, b]) => [d, b.save()]), rng: this.#rng.state };
  }

  /** Back to `save()`'s state; call before the devices' own `load` (which re-submits). */
  load(s: ReturnType<DeviceReplayer["save"]>): void {
    for (const [d, b] of s.blocks) this.#blocks.get(d)?.load(b);
    this.#rng.state = s.rng;
  }

  /** The replay (its divergence and checkpoints). */
  get replayer(): RunReplayer {
    return this.#inner;
  }

  block(device: string): BlockBackendClient {
    const info = this.#infos.get(device);
    const blk = new JournaledBlock(device, () => {
      if (!info) throw new ReplayError(`the recording has no disk ${device}`);
      return Promise.resolve(info);
    }, () => {});
    this.#blocks.set(device, blk);
    return blk;
  }

  receive(nic: number, deliver: (frame: Uint8Array) => unknown): (frame: Uint8Array) => void {
    this.#nics.set(nic, deliver);
    return () => {}; // nothing comes from outside
  }

  #apply(e: DeviceEntry): void {
    if ("blk" in e) {
      const p = this.#blocks.get(e.blk)?.pending.get(e.q);
      if (!p) {
        this.#inner.divergence ??= `diverged at step ${e.s}: the recording's reply to request ` +
          `${e.q} of disk ${e.blk} came before the replay made that request`;
        return;
      }
      this.#blocks.get(e.blk)!.pending.delete(e.q);
      if (e.ok) p.resolve(e.d === undefined ? undefined : e.d.slice());
      else p.reject(new Error("recorded I/O error"));
    } else if ("net" in e) {
      this.#nics.get(e.net)?.(e.f.slice());
    }
  }

  holdTime(step: number): boolean {
    return this.#holds.has(step);
  }

  sent(): void {}

  step(step: number, m: Machine): Uint8Array | "stop" | undefined {
    this.#applied = false;
    const r = this.#inner.step(step, m);
    return this.#inner.divergence !== undefined ? "stop" : r;
  }

  settle(): Promise<void> | undefined {
    return this.#applied && this.#settles ? turn() : undefined;
  }

  fed(): void {}

  end(step: number, m: Machine, code: number): void {
    this.#inner.end(step, m, code);
  }
}
