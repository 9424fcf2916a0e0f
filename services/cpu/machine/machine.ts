/**
 * The QEMU-`virt`-compatible machine around 1..8 harts: guest memory, the devices of the memory
 * map, the device tree, image loading (firmware, kernel, initrd, bare-metal ELF with HTIF), and
 * the run loop that executes instruction batches (harts in turn, as QEMU's single-threaded
 * TCG does) and services devices and time between them.
 */
import { setImmediate } from "node:timers";
import { DRAM_BASE, GuestMemory, HartLayout, MAX_HARTS } from "../guest_memory.ts";
import { type ExecutionEngine, StopReason } from "../engine.ts";
import { InstructionClock, TIMEBASE_HZ, type VmClock, WallClock } from "./clock.ts";
import type { PhysicalBus } from "./mmio.ts";
import { MmioBus } from "./physical_bus.ts";
import { HartIrqLines } from "./hart_irq.ts";
import { deviceTreeBlob } from "./device_tree.ts";
import { ElfError, type ElfImage, isElf, loadElf, parseElf } from "./elf.ts";
import { Htif } from "./htif.ts";
import {
  BOOT_ROM,
  CLINT,
  GOLDFISH_RTC,
  KERNEL_RAW_BASE,
  type MemoryRegion,
  PLIC,
  PLIC_NDEV,
  SIFIVE_TEST,
  UART0,
} from "./memory_map.ts";
import { Clint } from "../devices/clint.ts";
import { Plic } from "../devices/plic.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { type FinisherRequest, SifiveTest } from "../devices/sifive_test.ts";
import { GoldfishRtc } from "../devices/goldfish_rtc.ts";
import { BootRom } from "../devices/boot_rom.ts";
import {
  EmptyVirtioMmio,
  freeVirtioSlots,
  type MountedVirtio,
  mountVirtio,
  type VirtioSlotSpec,
} from "../virtio/slot.ts";
import { type EngineKind, Hart } from "../hart/mod.ts";
import { SAVED_BYTES, STATE_VERSION } from "../hart/state.ts";
import { EpochClock } from "../smp/epoch_clock.ts";
import { HartThreads, type HartWorkerDone } from "../smp/hart_threads.ts";
import { CodeSync } from "../smp/code_sync.ts";

/** The hart as the machine drives it (the hart module's public contract). */
export interface MachineHart extends ExecutionEngine {
  setReg(i: number, v: bigint): void;
  /**
   * Drops the LR reservation (other harts ran since this one did, and may have stored to the
   * reserved granule: an SC must then fail, which the spec allows at any time).
   */
  clearReservation?(): void;
}

/** What `createHart` is given. */
export interface HartConfig {
  mem: GuestMemory;
  hartId: number;
  bus: PhysicalBus;
  clock: VmClock;
  /** Execution engine of the default hart: "jit" (translator) or "interp". */
  engine?: EngineKind;
}

/** A configuration error (bad image, bad size); the message is one line meant for the user. */
export class MachineError extends Error {
  override name = "MachineError";
}

/** Machine options. Images are bytes or file paths. */
export interface MachineOptions {
  /** Bytes of DRAM (multiple of 4 KiB). */
  ramSize: number;
  /** Number of harts, 1..8 (QEMU's `-smp`); default 1. */
  harts?: number;
  /**
   * The guest memory to run in (its size must equal `ramSize`); made here when absent. Give
   * one to share it with other threads or engines, or to restore a snapshot into it.
   */
  mem?: GuestMemory;
  /** Firmware loaded at DRAM base (ELF or raw), like QEMU's `-bios`; omit or null for none. */
  bios?: Uint8Array | string | null;
  /** Kernel or bare-metal program: ELF at its addresses, or a raw Image (QEMU's `-kernel`). */
  kernel?: Uint8Array | string;
  /** Initial ramdisk (placed as QEMU does, described in /chosen). */
  initrd?: Uint8Array | string;
  /** Kernel command line. */
  append?: string;
  /** Console output (UART and HTIF), delivered in batches. */
  onConsoleOutput?: (bytes: Uint8Array) => void;
  /** Time source: a clock, or "instructions" for deterministic instruction-count time. */
  clock?: VmClock | "instructions";
  /** Stop after this many instructions (exit code 124, cause "limit"). */
  maxInstructions?: number;
  /** Instructions per batch between device servicing (default 100000; per hart with SMP). */
  batch?: number;
  /** Execution engine: "jit" translates hot code to WebAssembly, "interp" only interprets. */
  engine?: EngineKind;
  /** Builds the hart (default: the interpreter in ../hart). */
  createHart?: (cfg: HartConfig) => MachineHart;
  /** Stop (cause "reset") instead of rebooting when the guest asks for a reset (QEMU -no-reboot). */
  noReboot?: boolean;
  /** Nanoseconds since the Unix epoch the RTC reads at mtime 0 (default: the host's time now). */
  rtcEpochNs?: number;
  /** Records or replays the run (needs `clock: "instructions"` and the interpreter). */
  journal?: RunJournal;
  /** Virtio devices on virtio-mmio slots 0..7 (mapped and listed in ascending slot order). */
  virtio?: VirtioSlotSpec[];
  /**
   * A debugger that runs each hart's batch in place of `hart.run` (the GDB stub: it may hold
   * the harts); `hart` is the hart id.
   */
  debug?: { runBatch(budget: number, hart: number): Promise<StopReason> };
  /**
   * Experimental (`--smp-threads`): each hart runs in its own Worker over the shared memory
   * (services/cpu/smp), on the shared wall clock, without a journal, debugger, instruction
   * limit or guest reboot.
   */
  threads?: boolean;
}

/**
 * A record or replay of a run (services/cpu/replay): the run loop tells it each step, console
 * input reaches the UART only at the top of a step, and a replay supplies that input itself.
 */
export interface RunJournal {
  /** True when replaying: console input from outside is ignored. */
  readonly replaying: boolean;
  /**
   * Top of run-loop step `step` (a counter every run shares given the same inputs). A replay
   * returns the bytes the UART took at this step in the recording, or "stop" where the
   * recorded run was stopped (or where it diverged); a record returns undefined.
   */
  step(step: number, m: Machine): Uint8Array | "stop" | undefined;
  /** Record: the UART took `bytes` at step `step`. */
  fed(step: number, bytes: Uint8Array): void;
  /** The run ended at step `step` with exit code `code`. */
  end(step: number, m: Machine, code: number): void;
  /**
   * True when the journal is about to put the machine back to an earlier step (a debugger's
   * reverse step on a replay): the current step is dropped, output and all, and the next
   * `step()` call restores the machine (`loadLoop` and the rest) before it goes on.
   */
  readonly rewinding?: boolean;
  /**
   * Asked when every hart waits at step `step`: true keeps guest time from jumping to the
   * next deadline (a recording while devices owe replies, so the guest does not time out on
   * real latency; a replay where the recording held it).
   */
  holdTime?(step: number): boolean;
  /**
   * After the top of a step: a promise when what the step applied has effects still to run
   * in promise callbacks (block replies), awaited before the harts run so those effects land
   * at the same point whatever the harts do (a debugger holding them mid-batch included).
   */
  settle?(): Promise<void> | undefined;
}

/** The run loop's own state at the top of a step (saved and restored with a machine's records). */
export interface RunLoopState {
  step: number;
  budget: number;
  idleHarts: boolean[];
  /** Instruction-count time skipped while idle (instruction-count time only). */
  skipped: number;
}

/** Why the machine stopped. */
export type StopCause = "poweroff" | "fail" | "reset" | "htif" | "limit" | "stopped";

/** Instructions per batch right after an HTIF command (the program waits for its answer). */
const HTIF_BATCH = 2_000;

/** Exit code used when the machine is stopped by a limit or from outside. */
export const EXIT_STOPPED = 124;

const readImage = (img: Uint8Array | string, what: string): Uint8Array => {
  if (typeof img !== "string") return img;
  try {
    return Deno.readFileSync(img);
  } catch (e) {
    throw new MachineError(`cannot read ${what} ${img}: ${e instanceof Error ? e.message : e}`);
  }
};

/** Longest a busy run loop goes without a timer turn, in which Deno polls sockets (ms). */
const POLL_EVERY_MS = 100;
/**
 * While a device interrupted since the last timer turn (frames or replies are flowing), a busy
 * run loop takes a timer turn after this long (ms), so bus traffic waits ~10 ms, not 100. Not
 * less: a timer turn parks the thread (setTimeout 0 took 2.6 ms on a loaded host), and with a
 * 1 ms period the guest's own TCP sends ran slower than with none.
 */
const IO_POLL_MS = 10;

/** One RISC-V `virt` machine. */
export class Machine {
  readonly mem: GuestMemory;
  readonly bus: MmioBus = new MmioBus();
  readonly clock: VmClock;
  readonly clint: Clint;
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  readonly test: SifiveTest;
  readonly rom: BootRom;
  /** The harts, by hart id. */
  readonly harts: readonly MachineHart[];
  /** Hart 0 (the boot hart). */
  readonly hart: MachineHart;
  /** The device tree blob and where it was placed. */
  readonly fdt: Uint8Array;
  readonly fdtAddr: number;
  /** Where the reset vector jumps. */
  readonly startAddr: number;
  /** Mapped regions (for the device tree and diagnostics). */
  readonly regions: MemoryRegion[];
  /** Why `run()` returned (set when it does). */
  stopCause: StopCause | undefined;
  /** The mounted virtio-mmio transports, in slot order. */
  readonly virtio: MountedVirtio[];

  #opts: MachineOptions;
  #htif: Htif | undefined;
  #out: number[] = [];
  #input: Uint8Array[] = [];
  #exitCode: number | undefined;
  #wake: (() => void) | undefined;
  #irqLines: HartIrqLines;
  /** Harts that returned Idle (WFI) and have no interrupt to take yet. */
  #idleHarts: boolean[];
  #rebootPending = false;
  /** Device states right after construction, restored on reboot. */
  #resetState: (() => void) | undefined;
  /** Run-loop step (journaled runs: input and checkpoints are placed by it). */
  #step = 0;
  /** Instructions per hart in the next batch. */
  #budget = 0;

  constructor(opts: MachineOptions) {
    this.#opts = opts;
    if (!Number.isInteger(opts.ramSize) || opts.ramSize <= 0 || opts.ramSize % 4096 !== 0) {
      throw new MachineError(`RAM size must be a positive multiple of 4 KiB (got ${opts.ramSize})`);
    }
    if (opts.mem) {
      if (opts.mem.ramSize !== opts.ramSize) {
        throw new MachineError(
          `the given guest memory has ${opts.mem.ramSize} bytes of RAM, not ${opts.ramSize}`,
        );
      }
      this.mem = opts.mem;
    } else {
      try {
        this.mem = new GuestMemory(opts.ramSize);
      } catch (e) {
        throw new MachineError(e instanceof Error ? e.message : String(e));
      }
    }
    const nHarts = opts.harts ?? 1;
    if (!Number.isInteger(nHarts) || nHarts < 1 || nHarts > MAX_HARTS) {
      throw new MachineError(`the machine has 1 to ${MAX_HARTS} harts (got ${nHarts})`);
    }
    const j = opts.journal;
    if (
      j && (opts.clock !== "instructions" || opts.engine === "jit" || (opts.debug && !j.replaying))
    ) {
      throw new MachineError(
        "record/replay needs instruction-count time and the interpreter; the GDB stub a replay",
      );
    }
    if (
      opts.threads &&
      (j || opts.debug || opts.maxInstructions !== undefined ||
        (opts.clock !== undefined && !(opts.clock instanceof EpochClock)))
    ) {
      throw new MachineError(
        "hart threads (--smp-threads) run on the wall clock, " +
          "without --record/--replay, --gdb or --max-instructions",
      );
    }
    const clockOpt = opts.clock ?? (opts.threads ? new EpochClock() : new WallClock());
    this.clock = clockOpt === "instructions"
      ? new InstructionClock(() => this.harts ? this.instret : 0)
      : clockOpt;
    this.#irqLines = new HartIrqLines(this.mem);

    // Devices, busiest first on the bus.
    this.plic = new Plic(nHarts, PLIC_NDEV, this.#irqLines);
    this.uart = new Uart16550({
      onTransmit: (b) => this.#out.push(b),
      setIrq: (level) => this.plic.setIrq(UART0.irq!, level),
    });
    this.clint = new Clint(nHarts, this.clock, this.#irqLines);
    this.rtc = new GoldfishRtc(
      this.clock,
      (level) => this.plic.setIrq(GOLDFISH_RTC.irq!, level),
      opts.rtcEpochNs,
    );
    this.test = new SifiveTest((req) => this.#finisher(req));
    this.virtio = this.#mountVirtio(opts.virtio ?? []);

    // Images.
    const { startAddr, nextAddr, initrd, tohost } = this.#loadImages();
    this.startAddr = startAddr;
    this.regions = [
      BOOT_ROM,
      SIFIVE_TEST,
      GOLDFISH_RTC,
      CLINT,
      PLIC,
      UART0,
      ...this.virtio.map((v) => v.region),
    ];
    this.fdt = deviceTreeBlob({
      harts: nHarts,
      ramSize: opts.ramSize,
      regions: this.regions,
      bootargs: opts.append,
      initrd,
    });
    this.fdtAddr = this.#placeFdt();
    this.mem.writePhys(this.fdtAddr, this.fdt);
    this.rom = new BootRom({ startAddr, fdtAddr: this.fdtAddr, nextAddr, size: BOOT_ROM.size });

    this.bus.map(UART0.base, UART0.size, this.uart);
    this.bus.map(CLINT.base, CLINT.size, this.clint);
    this.bus.map(PLIC.base, PLIC.size, this.plic);
    this.bus.map(BOOT_ROM.base, BOOT_ROM.size, this.rom);
    this.bus.map(SIFIVE_TEST.base, SIFIVE_TEST.size, this.test);
    this.bus.map(GOLDFISH_RTC.base, GOLDFISH_RTC.size, this.rtc);
    for (const v of this.virtio) this.bus.map(v.region.base, v.region.size, v.transport);
    // As QEMU `virt`, every slot answers: the free ones as a transport with no device.
    for (const r of freeVirtioSlots(this.virtio.map((v) => v.slot))) {
      this.bus.map(r.base, r.size, new EmptyVirtioMmio(`virtio_mmio@${r.base.toString(16)}`));
    }

    if (tohost !== undefined) {
      this.#htif = new Htif(this.mem, tohost.tohost, tohost.fromhost, (b) => this.#out.push(...b));
    }

    const create = opts.createHart ?? ((cfg: HartConfig): MachineHart => new Hart(cfg));
    // Every hart starts in the boot ROM, which passes mhartid in a0 (as QEMU's reset vector).
    this.harts = Array.from({ length: nHarts }, (_, hartId) => {
      const h = create({
        mem: this.mem,
        hartId,
        bus: this.bus,
        clock: this.clock,
        // With hart threads these only hold state: the Workers translate (and mark code pages).
        engine: opts.threads ? "interp" : opts.engine,
      });
      h.reset(BOOT_ROM.base);
      return h;
    });
    this.hart = this.harts[0];
    this.#idleHarts = new Array(nHarts).fill(false);
    const initial = [
      this.clint,
      this.plic,
      this.uart,
      this.rtc,
      ...this.virtio.map((v) => v.transport),
    ]
      .map((d) => ({ d: d as { load(s: unknown): void }, s: structuredClone(d.save()) }));
    this.#resetState = () => {
      for (const { d, s } of initial) d.load(structuredClone(s));
    };
  }

  /** A guest-requested reset: images and device tree reloaded, devices and hart reset. */
  #reboot(): void {
    this.#rebootPending = false;
    this.#loadImages();
    this.mem.writePhys(this.fdtAddr, this.fdt);
    for (let id = 0; id < this.harts.length; id++) {
      Atomics.store(this.mem.i32, (this.mem.hartBase(id) + HartLayout.MIP) >> 2, 0);
    }
    for (const v of this.virtio) v.transport.reset();
    this.#resetState?.();
    for (let id = 0; id < this.harts.length; id++) {
      this.harts[id].reset(BOOT_ROM.base);
      this.#idleHarts[id] = false;
      Atomics.store(this.mem.i32, (this.mem.hartBase(id) + HartLayout.EXIT_REQUEST) >> 2, 0);
    }
  }

  /** Asks every hart to leave its run loop soon. */
  #kickAll(): void {
    for (const h of this.harts) h.kick();
  }

  /** Builds the virtio transports; a device's interrupt also wakes an idle run loop. */
  #mountVirtio(specs: VirtioSlotSpec[]): MountedVirtio[] {
    const sorted = [...specs].sort((a, b) => a.slot - b.slot);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].slot === sorted[i - 1].slot) {
        throw new MachineError(`two virtio devices on slot ${sorted[i].slot}`);
      }
    }
    return sorted.map((spec) => {
      try {
        return mountVirtio(this.mem, spec, this.plic, () => {
          this.#ioSincePoll = true;
          this.#wake?.();
        });
      } catch (e) {
        throw new MachineError(e instanceof Error ? e.message : String(e));
      }
    });
  }

  #loadImages() {
    const opts = this.#opts;
    const bios = opts.bios == null ? undefined : readImage(opts.bios, "firmware");
    const kernel = opts.kernel === undefined ? undefined : readImage(opts.kernel, "kernel");
    const biosName = typeof opts.bios === "string" ? opts.bios : "firmware";
    const kernelName = typeof opts.kernel === "string" ? opts.kernel : "kernel";
    if (!bios && !kernel) throw new MachineError("nothing to run: give a firmware or a kernel");
    this.#opts = { ...opts, bios: bios ?? null, kernel };
    let startAddr = DRAM_BASE;
    let nextAddr: number | undefined;
    let tohost: { tohost: number; fromhost?: number } | undefined;
    let kernelEntry: number | undefined;
    const load = (bytes: Uint8Array, rawBase: number, what: string) => {
      if (!isElf(bytes)) {
        if (!this.mem.inRam(rawBase, bytes.length)) {
          throw new MachineError(
            `${what} (${bytes.length} bytes at 0x${rawBase.toString(16)}) does not fit in RAM`,
          );
        }
        this.mem.writePhys(rawBase, bytes);
        return rawBase;
      }
      let img: ElfImage;
      try {
        img = loadElf(this.mem, bytes, parseElf(bytes));
      } catch (e) {
        if (e instanceof ElfError) throw new MachineError(`${what}: ${e.message}`);
        throw e;
      }
      const th = img.symbols.get("tohost");
      if (th !== undefined && this.mem.inRam(th, 8) && th % 8 === 0) {
        const fh = img.symbols.get("fromhost");
        tohost = {
          tohost: th,
          fromhost: fh !== undefined && this.mem.inRam(fh, 8) && fh % 8 === 0 ? fh : undefined,
        };
      }
      return img.entry;
    };
    if (bios) {
      startAddr = load(bios, DRAM_BASE, biosName);
      if (kernel) kernelEntry = nextAddr = load(kernel, KERNEL_RAW_BASE, kernelName);
    } else if (kernel) {
      if (!isElf(kernel)) throw new MachineError(`${kernelName}: not an ELF file (bad magic)`);
      kernelEntry = startAddr = load(kernel, DRAM_BASE, kernelName);
    }
    let initrd: { start: number; end: number } | undefined;
    if (opts.initrd !== undefined) {
      const bytes = readImage(opts.initrd, "initrd");
      this.#opts.initrd = bytes;
      const base = kernelEntry ?? KERNEL_RAW_BASE;
      const start = base + Math.min(Math.floor(opts.ramSize / 2), 128 * 1024 * 1024);
      if (!this.mem.inRam(start, bytes.length)) {
        throw new MachineError("initrd does not fit in RAM");
      }
      this.mem.writePhys(start, bytes);
      initrd = { start, end: start + bytes.length };
    }
    return { startAddr, nextAddr, initrd, tohost };
  }

  /** QEMU's placement: just below the end of DRAM (max 3 GiB), aligned down to 2 MiB. */
  #placeFdt(): number {
    const end = Math.min(DRAM_BASE + this.mem.ramSize, 0xC000_0000);
    let addr = Math.floor((end - this.fdt.length) / 0x20_0000) * 0x20_0000;
    if (addr < DRAM_BASE) addr = (end - this.fdt.length) & ~7;
    if (addr < DRAM_BASE) throw new MachineError("RAM too small for the device tree");
    return addr;
  }

  #finisher(req: FinisherRequest): void {
    if (req.kind === "pass") this.#stop("poweroff", 0);
    else if (req.kind === "fail") this.#stop("fail", req.code);
    else if (this.#opts.noReboot) this.#stop("reset", 0);
    else {
      this.#rebootPending = true;
      this.#kickAll();
    }
  }

  #stop(cause: StopCause, code: number): void {
    if (this.#exitCode !== undefined) return;
    this.stopCause = cause;
    this.#exitCode = code;
    this.#kickAll();
    this.#wake?.();
  }

  /** Asks a running machine to stop; `run()` then resolves with `code`. */
  stop(code = EXIT_STOPPED): void {
    this.#stop("stopped", code);
  }

  /** Queues console input for the UART (delivered as the guest drains its FIFO). */
  sendInput(bytes: Uint8Array): void {
    const journal = this.#opts.journal;
    if (bytes.length === 0 || journal?.replaying) return;
    this.#input.push(bytes.slice());
    if (!journal) this.#feedInput();
    this.#wake?.();
  }

  /** Console input queued but not yet taken by the UART (a live migration carries it). */
  pendingInput(): Uint8Array {
    const out = new Uint8Array(this.#input.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of this.#input) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  /** Moves queued input into the UART FIFO; returns the bytes it took. */
  #feedInput(): Uint8Array {
    const took: number[] = [];
    while (this.#input.length && this.uart.rxSpace > 0) {
      const head = this.#input[0];
      const n = this.uart.receive(head);
      took.push(...head.subarray(0, n));
      if (n === head.length) this.#input.shift();
      else this.#input[0] = head.subarray(n);
    }
    return new Uint8Array(took);
  }

  #flush(): void {
    if (this.#out.length === 0) return;
    const bytes = new Uint8Array(this.#out);
    this.#out = [];
    this.#opts.onConsoleOutput?.(bytes);
  }

  #service(): void {
    this.clint.tick();
    this.rtc.tick();
    // Journaled runs take input only at the top of a step, where a replay can put it again.
    if (this.#input.length && !this.#opts.journal) this.#feedInput();
  }

  /** The run loop's state; valid at the top of a step (inside `RunJournal.step`). */
  saveLoop(): RunLoopState {
    const c = this.clock;
    return {
      step: this.#step,
      budget: this.#budget,
      idleHarts: [...this.#idleHarts],
      skipped: c instanceof InstructionClock ? c.skipped : 0,
    };
  }

  /** Puts the run loop back to `s` (with the harts, devices and RAM of that same instant). */
  loadLoop(s: RunLoopState): void {
    this.#step = s.step;
    this.#budget = s.budget;
    this.#idleHarts = [...s.idleHarts];
    if (this.clock instanceof InstructionClock) this.clock.skipped = s.skipped;
    this.#out = [];
  }

  /** A journaled run's top of step: input fed (or replayed) and checkpoints; false to stop. */
  #journalStep(journal: RunJournal): boolean {
    const r = journal.step(this.#step, this);
    // The journal may have rewound the machine to an earlier step: take the step from it.
    const step = this.#step++;
    if (r === "stop") return false;
    if (r !== undefined) {
      const n = this.uart.receive(r);
      if (n !== r.length) {
        throw new MachineError(
          `replay diverged at step ${step}: the UART took ${n} of ${r.length} bytes`,
        );
      }
    } else if (!journal.replaying && this.#input.length) {
      const took = this.#feedInput();
      if (took.length) journal.fed(step, took);
    }
    return true;
  }

  /**
   * Longest run of batches, ms, before I/O callbacks get a turn (a live migration shortens it:
   * its socket writes progress only in those turns).
   */
  yieldMs = 15;
  /** When the run loop last waited on a timer (idle sleep or a polling yield). */
  #lastPoll = 0;
  /** A virtio device interrupted since the last timer turn: its I/O wants socket polls. */
  #ioSincePoll = false;

  /** Runs until poweroff, HTIF exit, a limit or `stop()`; resolves with the exit code. */
  async run(): Promise<number> {
    if (this.#opts.threads) return await this.#runThreaded();
    const batch = this.#opts.batch ?? 100_000;
    // After an HTIF command the program is likely spinning on fromhost: answer sooner.
    this.#budget = batch;
    const max = this.#opts.maxInstructions ?? Infinity;
    let lastYield = performance.now();
    const journal = this.#opts.journal;
    this.#step = 0;
    while (this.#exitCode === undefined) {
      if (journal && !this.#journalStep(journal)) {
        this.#stop("stopped", EXIT_STOPPED);
        break;
      }
      const settling = journal?.settle?.();
      if (settling) await settling;
      const left = max - this.instret;
      if (left <= 0) {
        this.#stop("limit", EXIT_STOPPED);
        break;
      }
      this.#service();
      const reason = await this.#runHarts(Math.min(this.#budget, left));
      if (journal?.rewinding) {
        this.#out = [];
        continue;
      }
      if (this.#htif) {
        const before = this.#htif.commands;
        const ev = this.#htif.poll();
        this.#budget = this.#htif.commands !== before
          ? HTIF_BATCH
          : Math.min(batch, this.#budget * 2);
        if (ev) this.#stop("htif", ev.exit);
      }
      this.#flush();
      if (this.#exitCode !== undefined) break;
      if (this.#rebootPending) {
        this.#reboot();
        continue;
      }
      if (reason === StopReason.Halted) {
        this.#stop("stopped", EXIT_STOPPED);
        break;
      }
      if (reason === StopReason.Idle) {
        // A wait that slept was an event-loop turn: no yield before the woken harts run (a timer
        // turn there cost every disk completion 1-2 ms under load before the guest saw it).
        if (await this.#idle()) lastYield = performance.now();
        // Woken harts re-check their WFI loop (WFI may end for any reason, as the spec allows).
        this.#idleHarts.fill(false);
      }
      // An idle machine on virtual time skips ahead without sleeping: it must yield too.
      const since = performance.now() - lastYield;
      if (since > this.yieldMs || (this.#ioSincePoll && since > IO_POLL_MS)) {
        // Let I/O callbacks and signal handlers run. A setImmediate turn is cheap but Deno
        // polls sockets in few of them (yield_io_bench.ts: 4 loopback round trips a second),
        // so a busy guest's bus replies and console input would wait: a timer turn now and
        // then bounds that wait, and soon after a device interrupt (I/O is flowing).
        const now = performance.now();
        if (this.#ioSincePoll || now - this.#lastPoll >= POLL_EVERY_MS) {
          this.#ioSincePoll = false;
          await new Promise<void>((r) => setTimeout(r, 0));
          this.#lastPoll = performance.now();
        } else await new Promise<void>((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
    this.#flush();
    journal?.end(this.#step, this, this.#exitCode!);
    return this.#exitCode!;
  }

  /**
   * `run()` with a Worker per hart: this thread serves their MMIO (the mailbox), devices, time
   * and console until the machine stops; then the harts' records are loaded back into `harts`.
   * A guest reset stops the Workers, reboots the machine and starts new ones from the reset.
   */
  async #runThreaded(): Promise<number> {
    for (;;) {
      await this.#runThreadsOnce();
      if (this.#exitCode !== undefined || !this.#rebootPending) return this.#exitCode!;
      this.#reboot();
      // No Worker runs now, so no hart holds a translation: no page is code any more.
      this.mem.codePages.fill(0);
    }
  }

  /** One start of the hart Workers, until the machine stops or the guest resets. */
  async #runThreadsOnce(): Promise<void> {
    const code = new CodeSync(this.harts.length, this.mem.codePages.length);
    const threads = new HartThreads({
      harts: this.harts.length,
      ramSize: this.mem.ramSize,
      memory: this.mem.memory,
      engine: this.#opts.engine ?? "interp",
      epochMs: (this.clock as EpochClock).epochMs,
      clintShared: this.clint.shared,
      clintBase: CLINT.base,
      clintSize: CLINT.size,
      plicShared: this.plic.shared,
      plicNdev: PLIC_NDEV,
      plicBase: PLIC.base,
      plicSize: PLIC.size,
      mapped: this.bus.ranges(),
      batch: this.#opts.batch ?? 50_000,
      codePages: this.mem.codePages.buffer as SharedArrayBuffer,
      codeSync: code.shared,
    }, this.mem);
    // DMA into a page a hart translated code from: that hart drops it before it runs on.
    const onCodeWrite = this.mem.onCodeWrite;
    this.mem.onCodeWrite = (page) => {
      onCodeWrite?.(page);
      code.codeWritten(this.mem.codePages, page, -1, (h) => this.mem.kick(h));
    };
    threads.start(this.harts.map((h) => h.save()));
    this.#wake = () => threads.mailbox.ring();
    while (this.#exitCode === undefined && !this.#rebootPending) {
      const seen = threads.mailbox.doorbell();
      threads.serve(this.bus);
      this.#service();
      const ev = this.#htif?.poll();
      if (ev) this.#stop("htif", ev.exit);
      this.#flush();
      if (this.#exitCode !== undefined || this.#rebootPending) break;
      await threads.mailbox.waitRing(seen, 2);
    }
    const done = await threads.stop(this.bus, (h) => this.mem.kick(h));
    this.#wake = undefined;
    this.mem.onCodeWrite = onCodeWrite;
    this.#flush();
    for (const d of done) {
      if (d.error) throw new MachineError(`hart ${d.hartId}'s thread failed: ${d.error}`);
      const base = this.mem.hartBase(d.hartId);
      const bytes = this.mem.u8.slice(base, base + SAVED_BYTES);
      new DataView(bytes.buffer).setInt32(HartLayout.EXIT_REQUEST, 0, true);
      this.harts[d.hartId].load({ kind: "rv64-hart", version: STATE_VERSION, bytes });
    }
    this.threadStats = done;
  }

  /** After a run with `threads`: each hart thread's report (instructions, MMIO, sleeps). */
  threadStats: HartWorkerDone[] | undefined;

  /**
   * Runs each hart that has work for up to `budget` instructions (all of them in total no more
   * than `budget` past a limit); Idle when every hart waits in WFI, Halted on a stop request.
   */
  async #runHarts(budget: number): Promise<StopReason> {
    const harts = this.harts, debug = this.#opts.debug;
    if (harts.length === 1) return debug ? await debug.runBatch(budget, 0) : harts[0].run(budget);
    const max = this.#opts.maxInstructions ?? Infinity;
    let ran = false;
    for (let id = 0; id < harts.length; id++) {
      const h = harts[id];
      if (this.#idleHarts[id]) {
        if (!h.interruptPending()) continue;
        this.#idleHarts[id] = false;
      }
      const left = max - this.instret;
      if (left <= 0) return StopReason.Budget;
      h.clearReservation?.();
      const n = Math.min(budget, left);
      const reason = debug ? await debug.runBatch(n, id) : h.run(n);
      if (reason === StopReason.Halted) return reason;
      if (reason === StopReason.Idle) this.#idleHarts[id] = true;
      else ran = true;
    }
    return ran ? StopReason.Budget : StopReason.Idle;
  }

  /**
   * Waits (without spinning) until the next timer deadline or an external event; true when it
   * slept (so I/O callbacks ran).
   */
  async #idle(): Promise<boolean> {
    this.#service();
    if (this.harts.some(hartWantsToRun)) return false;
    const now = this.clock.now();
    let deadline = this.clint.nextDeadline();
    for (const h of this.harts) deadline = Math.min(deadline, h.nextDeadline());
    if (this.clock.advanceTo) {
      // Virtual time: jump to the deadline instead of sleeping (unless a recording holds it).
      const journal = this.#opts.journal;
      if (deadline > now && Number.isFinite(deadline) && !journal?.holdTime?.(this.#step)) {
        this.clock.advanceTo(deadline);
        return false;
      }
      // A replay waits for nothing: what comes from outside is in its log.
      if (journal?.replaying) return false;
    }
    const MAX_SLEEP_MS = 10;
    const ms = deadline > now
      ? Math.min((deadline - now) / (TIMEBASE_HZ / 1000), MAX_SLEEP_MS)
      : MAX_SLEEP_MS;
    this.#lastPoll = performance.now();
    this.#ioSincePoll = false;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
    });
    this.#lastPoll = performance.now();
    this.#ioSincePoll = false;
    return true;
  }

  /** Instructions retired so far, by all harts. */
  get instret(): number {
    let n = 0;
    for (const h of this.harts) n += h.instret;
    return n;
  }
}

/** True when the hart has an enabled interrupt to take (so idling would be wrong). */
function hartWantsToRun(hart: MachineHart): boolean {
  return hart.interruptPending();
}
