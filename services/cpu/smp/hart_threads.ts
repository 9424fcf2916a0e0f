/**
 * The main thread's side of `--smp-threads`: one Worker per hart (hart_worker.ts) over the
 * machine's shared memory, and the MMIO mailbox served on the machine's bus.
 */
import { type GuestMemory, HartLayout } from "../guest_memory.ts";
import type { EngineSnapshot } from "../engine.ts";
import type { EngineKind } from "../hart/mod.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import { MailboxServer } from "./mailbox.ts";

/** What a hart Worker is started with. */
export interface HartWorkerStart {
  hartId: number;
  harts: number;
  ramSize: number;
  memory: WebAssembly.Memory;
  /** The hart's state record to start from (the main thread's hart, reset or loaded). */
  state: EngineSnapshot;
  engine: EngineKind;
  /** The shared clock's epoch (`EpochClock.epochMs`). */
  epochMs: number;
  /** The CLINT's shared state (`Clint.shared`) and where it is mapped. */
  clintShared: SharedArrayBuffer;
  clintBase: number;
  clintSize: number;
  /** The PLIC's shared state (`Plic.shared`), its sources and where it is mapped. */
  plicShared: SharedArrayBuffer;
  plicNdev: number;
  plicBase: number;
  plicSize: number;
  mailbox: SharedArrayBuffer;
  /** [base, end) of every mapped MMIO range. */
  mapped: [number, number][];
  /** Instructions between the Worker's own timer checks. */
  batch: number;
  /** `GuestMemory.codePages.buffer` and the `CodeSync` state of the machine. */
  codePages: SharedArrayBuffer;
  codeSync: SharedArrayBuffer;
}

/** What a hart Worker reports when it finishes. */
export interface HartWorkerDone {
  hartId: number;
  instret: number;
  /** MMIO accesses that went through the mailbox, and how many of them were posted stores. */
  mmio: number;
  posted: number;
  /** WFI sleeps (Atomics.wait calls). */
  sleeps: number;
  /** Suspect pages' translations dropped at FENCE.I (see hart_worker.ts). */
  fenceIDrops: number;
  /** The translator's counters, in words (engine jit). */
  jit?: string;
  /** Set when the hart's thread failed. */
  error?: string;
}

/** What every hart Worker shares (the per-hart part is added by `HartThreads.start`). */
export type HartThreadsConfig = Omit<HartWorkerStart, "hartId" | "state" | "mailbox">;

/** The hart Workers of one machine. */
export class HartThreads {
  readonly mailbox: MailboxServer;
  readonly #workers: Worker[] = [];
  readonly #done: Promise<HartWorkerDone>[] = [];

  constructor(readonly cfg: HartThreadsConfig, readonly mem: GuestMemory) {
    this.mailbox = new MailboxServer(cfg.harts);
  }

  /** Starts a Worker per hart, each from its hart's `states[id]`. */
  start(states: EngineSnapshot[]): void {
    for (let hartId = 0; hartId < this.cfg.harts; hartId++) {
      const w = new Worker(new URL("./hart_worker.ts", import.meta.url).href, { type: "module" });
      this.#done.push(
        new Promise<HartWorkerDone>((resolve) => {
          w.onmessage = (e: MessageEvent<HartWorkerDone>) => resolve(e.data);
          w.onerror = (e) => {
            e.preventDefault();
            const error = String(e.message);
            resolve({ hartId, instret: 0, mmio: 0, posted: 0, sleeps: 0, fenceIDrops: 0, error });
          };
        }),
      );
      const start: HartWorkerStart = {
        ...this.cfg,
        hartId,
        state: states[hartId],
        mailbox: this.mailbox.shared,
      };
      w.postMessage(start);
      this.#workers.push(w);
    }
  }

  /** Serves pending MMIO on `bus`; returns how many requests there were. */
  serve(bus: PhysicalBus): number {
    return this.mailbox.serve(bus);
  }

  /**
   * Tells every hart to finish (they leave their run loop at the next check), serving their
   * MMIO meanwhile; resolves with each one's report.
   */
  async stop(bus: PhysicalBus, kick: (hart: number) => void): Promise<HartWorkerDone[]> {
    this.mailbox.setStop();
    for (let h = 0; h < this.cfg.harts; h++) {
      kick(h);
      // A hart sleeping in WFI waits on its mip word.
      Atomics.notify(this.mem.i32, (this.mem.hartBase(h) + HartLayout.MIP) >> 2);
    }
    let finished = false;
    const all = Promise.all(this.#done).finally(() => {
      finished = true;
    });
    while (!finished) {
      const seen = this.mailbox.doorbell();
      this.serve(bus);
      await Promise.race([all, this.mailbox.waitRing(seen, 5)]);
    }
    this.serve(bus); // stores a hart posted just before it finished
    for (const w of this.#workers) w.terminate();
    return await all;
  }
}
