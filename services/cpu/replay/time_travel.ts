/**
 * Reverse execution on a replay (`vmesh run --replay FILE --gdb ...`): snapshots of the whole
 * machine (every hart and device record, the run loop's state, RAM as pages shared with the
 * previous snapshot when unchanged) at the top of a run-loop step every `snapshotEvery`
 * instructions, and travel back by restoring the latest snapshot before the wanted point and
 * replaying forward to it. The replay is deterministic, so the point reached is the one the
 * run passed through: the same registers, memory and devices.
 *
 * A point is "hart H has used U budget units and its next one is due" (a unit is one
 * instruction, or one attempt that trapped: what one `stepi` runs). The GDB stub drives the
 * harts and tells this journal each hart's units; `reverseStep` goes to the point one unit
 * back, `reverseContinue` scans backwards segment by segment (replaying each, one unit at a
 * time, noting breakpoint hits) for the last hit before now.
 *
 * @example
 * ```ts
 * // const tt = new TimeTravel(await RunReplayer.open(path, flags), { harts: 1, ramSize });
 * // const stub = new GdbStub(target, { reverse: tt });
 * // new Machine({ ..., journal: tt, debug: stub, clock: "instructions", engine: "interp" });
 * ```
 * @module
 */
import type { Machine, RunJournal, RunLoopState } from "../machine/machine.ts";
import type { ReverseControl, ReverseVerdict } from "../gdb/gdb_stub.ts";
import { loadMachine, saveMachine } from "../snapshot/machine_state.ts";
import type { RunReplayer } from "./run_log.ts";
import { HartLayout } from "../guest_memory.ts";

const PAGE = 4096;

/** A snapshot at the top of a step. */
interface Snapshot {
  loop: RunLoopState;
  point: { at: number; checkpoints: number };
  records: ReturnType<typeof saveMachine>;
  /** RAM, one array per 4 KiB page (shared with the previous snapshot where unchanged). */
  pages: Uint8Array[];
  units: number[];
  /** Sum of `units`: the global position. */
  g: number;
  /** Console bytes the run had written by then. */
  out: number;
  /** The device side's state (a `vmesh boot` replay: request numbering, rng). */
  io: unknown;
  /** RAM pages this snapshot holds that the one before it does not share. */
  own: number;
}

/** The device side of a `vmesh boot` replay (device_log.ts DeviceReplayer). */
export interface ReplayIo extends RunJournal {
  save(): unknown;
  load(state: unknown): void;
}

/** Where a travel ends: hart `hart` with `units` used, before its next unit. */
interface Point {
  hart: number;
  units: number;
  /** What gdb is told stopped it there (a watchpoint hit found backwards), if anything. */
  why?: string;
}

type Travel =
  | { kind: "goto"; to: Point; begin: boolean }
  | {
    kind: "scan";
    /** Snapshot the segment starts at; it ends at global position `end`. */
    from: number;
    end: number;
    breakpoints: ReadonlySet<number>;
    /** The last breakpoint hit seen in the segment. */
    last: Point | undefined;
  };

/** Options of {@link TimeTravel}. */
export interface TimeTravelOptions {
  harts: number;
  /** Instructions (all harts) between snapshots (default: 1M, more for large RAM). */
  snapshotEvery?: number;
  ramSize: number;
  /**
   * Most bytes of RAM pages the snapshots may hold (default 1 GiB): past it, a snapshot is
   * dropped where they are densest for their age, so older ones thin out (the first stays).
   */
  snapshotMemory?: number;
  /** A `vmesh boot` replay: its device journal (wraps the replayer), stepped in its place. */
  io?: ReplayIo;
}

/** The replay journal with reverse execution for the GDB stub. */
export class TimeTravel implements RunJournal, ReverseControl {
  readonly replaying = true;
  readonly header: RunReplayer["header"];
  /** Budget units each hart has used since the start of the replay. */
  units: number[];
  /** Snapshots taken, in step order. */
  readonly snapshots: Snapshot[] = [];
  /** Travels done (reverse steps and scans), for tests and figures. */
  travels = 0;
  readonly #inner: RunReplayer;
  readonly #io: ReplayIo | undefined;
  readonly #every: number;
  readonly #cap: number;
  /** Bytes of RAM pages the snapshots hold (each page counted once). */
  #held = 0;
  /** Snapshots dropped to stay under the cap. */
  thinned = 0;
  /** Requested, applied at the top of the next step. */
  #pending: { snap: number; travel: Travel } | undefined;
  /** Underway since that restore, until the point is reached. */
  #travel: Travel | undefined;
  #out = 0;
  #printed = 0;
  /** The top of the recording's last step (its end entry names the step after it). */
  readonly #lastStep: number;
  #atLast = false;
  /** Why the travel that just arrived stopped there (arrivedWhy). */
  #why = "";
  /** The end was reported since the last restore. */
  #endShown = false;

  constructor(inner: RunReplayer, opts: TimeTravelOptions) {
    this.#inner = inner;
    this.#io = opts.io;
    this.header = inner.header;
    this.units = new Array(opts.harts).fill(0);
    this.#every = opts.snapshotEvery ?? Math.max(1_000_000, Math.floor(opts.ramSize / 16));
    this.#cap = opts.snapshotMemory ?? 1 << 30;
    // The end entry names the step after the last top; a run stopped by its instruction
    // limit stopped at that top without a batch, so its last batch began one step earlier.
    const end = inner.recordedEnd;
    const limited = end !== undefined && inner.header.maxInstructions !== undefined &&
      end.instret >= inner.header.maxInstructions;
    this.#lastStep = (end?.step ?? Infinity) - (limited ? 2 : 1);
  }

  /** The replay this wraps (its divergence and checkpoint count). */
  get replayer(): RunReplayer {
    return this.#inner;
  }

  get rewinding(): boolean {
    return this.#pending !== undefined;
  }

  #g(): number {
    let g = 0;
    for (const u of this.units) g += u;
    return g;
  }

  step(step: number, m: Machine): Uint8Array | "stop" | undefined {
    if (this.#pending) {
      const { snap, travel } = this.#pending;
      this.#pending = undefined;
      this.#restore(m, this.snapshots[snap]);
      this.#travel = travel;
      this.travels++;
      this.#endShown = false;
      step = this.snapshots[snap].loop.step;
    } else {
      const last = this.snapshots.at(-1);
      if (!last || (step > last.loop.step && this.#g() - last.g >= this.#every)) {
        const s = this.#take(m, last);
        this.snapshots.push(s);
        this.#held += s.own * PAGE;
        while (this.#held > this.#cap && this.snapshots.length > 2) this.#thin();
      }
    }
    this.#atLast = step === this.#lastStep;
    return (this.#io ?? this.#inner).step(step, m);
  }

  atEnd(): boolean {
    if (!this.#atLast || this.#endShown || this.#travel) return false;
    this.#endShown = true;
    return true;
  }

  fed(): void {}

  holdTime(step: number): boolean {
    return this.#io?.holdTime?.(step) ?? false;
  }

  settle(): Promise<void> | undefined {
    return this.#io?.settle?.();
  }

  end(step: number, m: Machine, code: number): void {
    (this.#io ?? this.#inner).end(step, m, code);
  }

  /**
   * Console output of the run, to be written by `write`: what a rewound run writes again
   * (up to the furthest point it had reached) is not written twice.
   */
  output(bytes: Uint8Array, write: (b: Uint8Array) => void): void {
    const from = this.#out;
    this.#out += bytes.length;
    if (this.#out <= this.#printed) return;
    write(bytes.subarray(Math.max(0, this.#printed - from)));
    this.#printed = this.#out;
  }

  before(id: number, pc: number): ReverseVerdict {
    const t = this.#travel;
    if (!t) return "run";
    if (t.kind === "goto") {
      if (id !== t.to.hart || this.units[id] !== t.to.units) return "run";
      this.#travel = undefined;
      this.#why = t.to.why ?? "";
      return t.begin ? "begin" : "stop";
    }
    if (this.#g() >= t.end) {
      // The segment is done: go to its last hit, else scan the one before it.
      if (t.last) this.#goto(t.last, false);
      else if (t.from > 0) {
        this.#request(t.from - 1, { ...t, from: t.from - 1, end: this.snapshots[t.from].g });
      } else this.#goto({ hart: 0, units: 0 }, true);
      return "rewind";
    }
    if (t.breakpoints.has(pc)) t.last = { hart: id, units: this.units[id] };
    return "run";
  }

  limit(id: number, want: number): number {
    const t = this.#travel;
    if (!t) return want;
    if (t.kind === "goto") {
      return id === t.to.hart ? Math.max(1, Math.min(want, t.to.units - this.units[id])) : want;
    }
    return 1; // unit by unit: a breakpoint check before each
  }

  ran(id: number, n: number): void {
    this.units[id] += n;
  }

  reverseStep(id: number): boolean {
    if (this.units[id] === 0) return false;
    this.#goto({ hart: id, units: this.units[id] - 1 }, false);
    return true;
  }

  reverseContinue(breakpoints: ReadonlySet<number>): void {
    const g = this.#g();
    let from = this.snapshots.length - 1;
    while (from > 0 && this.snapshots[from].g >= g) from--;
    this.#request(from, {
      kind: "scan",
      from,
      end: g,
      breakpoints: new Set(breakpoints),
      last: undefined,
    });
  }

  scanning(): boolean {
    return this.#travel?.kind === "scan";
  }

  watched(id: number, _n: number, why: string): void {
    // Reported after the access, as going forward: gdb (RISC-V watchpoints do not step)
    // then steps back over it itself, to just before the access.
    const t = this.#travel;
    if (t?.kind === "scan") t.last = { hart: id, units: this.units[id], why };
  }

  arrivedWhy(): string {
    const why = this.#why;
    this.#why = "";
    return why;
  }

  #goto(to: Point, begin: boolean): void {
    let i = this.snapshots.length - 1;
    while (i > 0 && this.snapshots[i].units[to.hart] > to.units) i--;
    this.#request(i, { kind: "goto", to, begin });
  }

  #request(snap: number, travel: Travel): void {
    this.#travel = undefined;
    this.#pending = { snap, travel };
  }

  #take(m: Machine, prev: Snapshot | undefined): Snapshot {
    const ram = m.mem.ram();
    const words = new Int32Array(ram.buffer, ram.byteOffset, ram.length >> 2);
    const pages: Uint8Array[] = new Array(ram.length / PAGE);
    const zero = new Uint8Array(PAGE);
    let own = 0;
    for (let p = 0; p < pages.length; p++) {
      const w0 = p * (PAGE >> 2);
      const old = prev?.pages[p];
      const oldWords = old && new Int32Array(old.buffer, old.byteOffset, PAGE >> 2);
      let same = true;
      for (let i = 0; i < PAGE >> 2; i++) {
        if (words[w0 + i] !== (oldWords ? oldWords[i] : 0)) {
          same = false;
          break;
        }
      }
      pages[p] = same ? old ?? zero : ram.slice(p * PAGE, (p + 1) * PAGE);
      if (!same) own++;
    }
    return {
      loop: m.saveLoop(),
      point: this.#inner.savePoint(),
      records: saveMachine(m),
      pages,
      units: [...this.units],
      g: this.#g(),
      out: this.#out,
      io: this.#io?.save(),
      own,
    };
  }

  #restore(m: Machine, s: Snapshot): void {
    const ram = m.mem.ram();
    for (let p = 0; p < s.pages.length; p++) ram.set(s.pages[p], p * PAGE);
    // Before the devices' load: a disk re-submits its requests in flight, numbered as then.
    if (this.#io) this.#io.load(s.io);
    loadMachine(m, s.records.harts, s.records.devices);
    // Loading the CLINT re-drives MTIP from the time now, which the run itself does only at
    // its next tick: the mip words go back to the instant's own (a checkpoint hashes them).
    s.records.harts.forEach((h, id) => {
      const mip = new DataView(h.state.buffer, h.state.byteOffset).getInt32(HartLayout.MIP, true);
      Atomics.store(m.mem.i32, (m.mem.hartBase(id) + HartLayout.MIP) >> 2, mip);
    });
    m.loadLoop(s.loop);
    this.#inner.loadPoint(s.point);
    this.units = [...s.units];
    this.#out = s.out;
  }

  /**
   * Drops the snapshot whose neighbours are closest together for its age (older ones go
   * first); the one after it takes over the pages it shared with it. Never the first (the
   * start of the recording) nor the last.
   */
  #thin(): void {
    const ss = this.snapshots, now = ss[ss.length - 1].g;
    let best = 1, score = Infinity;
    for (let i = 1; i < ss.length - 1; i++) {
      const sc = (ss[i + 1].g - ss[i - 1].g) / (now - ss[i].g + 1);
      if (sc < score) [best, score] = [i, sc];
    }
    const [prev, gone, next] = [ss[best - 1], ss[best], ss[best + 1]];
    let own = 0;
    for (let p = 0; p < next.pages.length; p++) if (next.pages[p] !== prev.pages[p]) own++;
    this.#held += (own - next.own - gone.own) * PAGE;
    next.own = own;
    ss.splice(best, 1);
    this.thinned++;
  }

  /** Bytes of RAM pages the snapshots hold, as the cap counts them. */
  get heldBytes(): number {
    return this.#held;
  }

  /** Bytes of RAM the snapshots hold (pages shared between snapshots counted once). */
  snapshotBytes(): number {
    const seen = new Set<Uint8Array>();
    for (const s of this.snapshots) for (const p of s.pages) seen.add(p);
    return seen.size * PAGE;
  }
}
