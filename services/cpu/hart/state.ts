/**
 * The hart's state record: every piece of architectural hart state at a fixed byte offset in
 * the shared `WebAssembly.Memory`, so the interpreter, a translator's WebAssembly code and
 * another thread read the same bytes (the v86 model). `Hart.save()` is a copy of these bytes.
 *
 * Every 64-bit value is a little-endian i64 (low word at +0, high word at +4): the
 * interpreter works on Int32 halves, wasm loads it as one i64.
 *
 * | bytes          | field                 | what                                                 |
 * | -------------- | --------------------- | ---------------------------------------------------- |
 * | 0 .. 256       | `X`                   | x0..x31 (x0 stays zero)                              |
 * | 256 .. 512     | `F`                   | f0..f31, raw IEEE bits (singles NaN-boxed)           |
 * | 512            | `PC`                  | pc (i64)                                             |
 * | 520            | `MIP`                 | device-driven mip bits, i32, written with Atomics    |
 * | 524            | `EXIT_REQUEST`        | nonzero: leave `run()` soon (Atomics; not saved)     |
 * | 528            | `PRIV`                | privilege: 0 U, 1 S, 3 M                             |
 * | 532 / 536      | `FFLAGS` / `FRM`      | fcsr fields                                          |
 * | 540            | `MIP_SW`              | software-written mip bits (SSIP, STIP, SEIP)         |
 * | 544            | `MSTATUS`             | mstatus low word (the high word's UXL/SXL/SD are     |
 * |                |                       | computed on read)                                    |
 * | 552            | `INSTRET`             | instructions retired (i64)                           |
 * | 560 .. 592     | `CYCLE_DELTA` ...     | counter state: mcycle/minstret = instret + delta, or |
 * |                |                       | the frozen value while mcountinhibit holds it        |
 * | 592 / 600      | `RES_VALID`/`RES_ADDR`| LR reservation (physical address)                    |
 * | 608            | `SCRATCH`             | 8-byte sink for wide-arith results to x0 (no state)  |
 * | 616 .. 808     | `CSR`                 | the plain CSRs in compact slots (`CSR_SLOTS`)        |
 * | 808 .. 824     | `PMPCFG`              | pmp0cfg..pmp15cfg, one byte each                     |
 * | 824 .. 952     | `PMPADDR`             | pmpaddr0..15 (i64)                                   |
 * | 952 / 956      | `TSELECT`/`TCONTROL`  | Sdtrig tselect; tcontrol (reserved: not implemented, |
 * |                |                       | as in QEMU 7.2)                                      |
 * | 960 .. 1152    | `TRIGGERS`            | per trigger: tdata1, tdata2, tdata3 (i64 each)       |
 * | 1152 / 1160    | `SUPER_LO`/`SUPER_HI` | TLB: virtual range of cached superpages (f64)        |
 * | 4096 ..        | `TLB`                 | TLB_SETS x TLB_SIZE entries of 16 bytes (below)      |
 *
 * A TLB entry is four i32 words: tag low, tag high (the virtual page), then for a DRAM page
 * the host byte offset of the physical page (word 2; word 3 unused), and for an MMIO page the physical page (words 2, 3) with bit 0 of the tag low word set, so the DRAM
 * fast path (which compares the page-aligned address) never matches it. An empty entry holds
 * 2 in every word. The TLB is a cache: it is not saved, and `load()` flushes it.
 */
import type { EngineSnapshot } from "../engine.ts";

import type { GuestMemory } from "../guest_memory.ts";

/** Byte offsets inside one hart's record. */
export const HartLayout = {
  X: 0,
  F: 256,
  PC: 512,
  MIP: 520,
  EXIT_REQUEST: 524,
  PRIV: 528,
  FFLAGS: 532,
  FRM: 536,
  MIP_SW: 540,
  MSTATUS: 544,
  INSTRET: 552,
  CYCLE_DELTA: 560,
  INSTRET_DELTA: 568,
  CYCLE_FROZEN: 576,
  INSTRET_FROZEN: 584,
  RES_VALID: 592,
  RES_ADDR: 600,
  SCRATCH: 608,
  CSR: 616,
  PMPCFG: 808,
  PMPADDR: 824,
  TSELECT: 952,
  TCONTROL: 956,
  TRIGGERS: 960,
  SUPER_LO: 1152,
  SUPER_HI: 1160,
  TLB: 4096,
} as const;

/** Int32 word indexes inside the record (byte offset / 4). */
export const Word = {
  X: HartLayout.X >> 2,
  F: HartLayout.F >> 2,
  PC: HartLayout.PC >> 2,
  MIP: HartLayout.MIP >> 2,
  EXIT_REQUEST: HartLayout.EXIT_REQUEST >> 2,
  PRIV: HartLayout.PRIV >> 2,
  FFLAGS: HartLayout.FFLAGS >> 2,
  FRM: HartLayout.FRM >> 2,
  MIP_SW: HartLayout.MIP_SW >> 2,
  MSTATUS: HartLayout.MSTATUS >> 2,
  INSTRET: HartLayout.INSTRET >> 2,
  CYCLE_DELTA: HartLayout.CYCLE_DELTA >> 2,
  INSTRET_DELTA: HartLayout.INSTRET_DELTA >> 2,
  CYCLE_FROZEN: HartLayout.CYCLE_FROZEN >> 2,
  INSTRET_FROZEN: HartLayout.INSTRET_FROZEN >> 2,
  RES_VALID: HartLayout.RES_VALID >> 2,
  RES_ADDR: HartLayout.RES_ADDR >> 2,
  SCRATCH: HartLayout.SCRATCH >> 2,
  CSR: HartLayout.CSR >> 2,
  PMPADDR: HartLayout.PMPADDR >> 2,
  TSELECT: HartLayout.TSELECT >> 2,
  TCONTROL: HartLayout.TCONTROL >> 2,
  TRIGGERS: HartLayout.TRIGGERS >> 2,
} as const;

/** CSRs kept as plain 64-bit words, in slot order (slot i at `CSR + 8 * i`). */
export const CSR_SLOTS = [
  0x105, // stvec
  0x106, // scounteren
  0x10a, // senvcfg
  0x140, // sscratch
  0x141, // sepc
  0x142, // scause
  0x143, // stval
  0x14d, // stimecmp
  0x180, // satp
  0x302, // medeleg
  0x303, // mideleg
  0x304, // mie
  0x305, // mtvec
  0x306, // mcounteren
  0x30a, // menvcfg
  0x320, // mcountinhibit
  0x340, // mscratch
  0x341, // mepc
  0x342, // mcause
  0x343, // mtval
] as const;

/** Slots the `CSR` area has room for. */
export const CSR_SLOT_CAPACITY = (HartLayout.PMPCFG - HartLayout.CSR) / 8;

/** Record word index of a plain CSR's low word, by CSR number; -1 when not a plain CSR. */
export const CSR_WORD: Int16Array = (() => {
  const t = new Int16Array(4096).fill(-1);
  CSR_SLOTS.forEach((n, i) => t[n] = Word.CSR + 2 * i);
  return t;
})();

/** Record word index of a plain CSR's low word (throws for others: a programming error). */
export function csrWord(n: number): number {
  const w = CSR_WORD[n];
  if (w < 0) throw new RangeError(`CSR 0x${n.toString(16)} has no slot`);
  return w;
}

/** Triggers the TRIGGERS area has room for (QEMU 7.2 implements 2). */
export const TRIGGER_CAPACITY = (HartLayout.SUPER_LO - HartLayout.TRIGGERS) / 24;

/** log2 of the entries per TLB set. */
export const TLB_BITS = 10;
/** Entries per TLB set (direct-mapped on the virtual page number). */
export const TLB_SIZE = 1 << TLB_BITS;
/** Mode (U, S, S with SUM, M) times access kind (load, store, fetch). */
export const TLB_SETS = 12;
/** Bytes per TLB entry. */
export const TLB_ENTRY_BYTES = 16;
/** Int32 words per TLB entry. */
export const TLB_ENTRY_WORDS = TLB_ENTRY_BYTES >> 2;
/**
 * Tag bit of an MMIO page's TLB entry (a DRAM page's tag is the bare virtual page). Flag bits
 * sit above bit 2 so that a tag compare with the access's alignment bits kept
 * (`va & (~0xfff | (size - 1))`, as translated code does) never matches a flagged entry.
 */
export const TLB_MMIO = 0x800;
/** Word of an empty TLB entry (matches neither a DRAM nor an MMIO tag, nor an access). */
export const TLB_EMPTY = 0x400;
/**
 * The translator's words after the TLB: an i32 a translated region writes its exit reason
 * into, then the jump cache (virtual pc -> table slot and mode key of a region, 16 bytes per
 * entry, an odd pc marks an empty entry). Both are caches and scratch: never saved.
 */
export const JIT_EXIT_REASON = HartLayout.TLB + TLB_SETS * TLB_SIZE * TLB_ENTRY_BYTES;
/** Byte offset of the jump cache in the record. */
export const JIT_JUMP_CACHE = JIT_EXIT_REASON + 16;
/** Entries of the jump cache (a power of two). */
export const JUMP_CACHE_ENTRIES = 8192;
/** Total bytes of one hart's record. */
export const HART_RECORD_BYTES = JIT_JUMP_CACHE + JUMP_CACHE_ENTRIES * 16;
/** Bytes `save()` copies: the architectural part, everything before the TLB metadata. */
export const SAVED_BYTES = HartLayout.SUPER_LO;
/** Format version of a saved record; bump when the layout changes. */
export const STATE_VERSION = 1;

/** A saved hart: a copy of the record's architectural bytes (structured-clone-able). */
export interface HartSnapshot extends EngineSnapshot {
  /** What made it. */
  kind: "rv64-hart";
  /** `STATE_VERSION` of the layout. */
  version: number;
  /** `SAVED_BYTES` bytes of the record, EXIT_REQUEST zeroed. */
  bytes: Uint8Array;
}

const TWO32 = 4294967296;
/** 2^-32: multiplying by it is exact and cheaper than dividing by 2^32. */
const INV_TWO32 = 1 / TWO32;

/** The high word of an exact double's 64-bit two's complement. */
export function hiOf(v: number): number {
  return Math.floor(v * INV_TWO32) | 0;
}

/** The low word of an exact double's 64-bit two's complement (ToInt32 is mod 2^32). */
export function loOf(v: number): number {
  return v | 0;
}

/** The signed 64-bit value of words (lo, hi) as a double (exact below 2^53). */
export function i64Of(lo: number, hi: number): number {
  return hi * TWO32 + (lo >>> 0);
}

/** The unsigned 64-bit value of words (lo, hi) as a double (exact below 2^53). */
export function u64Of(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/**
 * Typed views over one hart's record, with accessors for the fields the rest of the hart
 * reads by name. The pc and instret are the exceptions: the interpreter keeps working copies
 * (`pcv`, `instret`) while it runs and writes them back with `flushCounters()` at every exit
 * from `run()`, so outside `run()` the record is complete.
 *
 * @example
 * ```ts
 * // A subclass (the Hart) is built over a GuestMemory:
 * // const hart = new Hart({ mem, hartId: 0, bus, clock });
 * // hart.st[Word.PRIV] === 3 after reset
 * ```
 */
export abstract class HartRecordViews {
  /** mhartid. */
  readonly hartId: number;
  /** The whole shared memory as i32 (registers and DRAM). */
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly dv: DataView;
  /** The record's words, indexed by `Word` (and `CSR_WORD`). */
  readonly st: Int32Array;
  /** The record's TLB, `TLB_ENTRY_WORDS` words per entry. */
  readonly tlb: Int32Array;
  /** SUPER_LO, SUPER_HI as doubles. */
  readonly superRange: Float64Array;
  /** Byte offset of the record in the memory. */
  readonly base: number;
  /** Int32 index (in `i32`) of x0.lo. */
  readonly xBase: number;
  /** Int32 index (in `i32`) of f0.lo. */
  readonly fBase: number;
  /** Int32 indexes (in `i32`) of the MIP and EXIT_REQUEST words. */
  readonly mipIdx: number;
  readonly exitIdx: number;
  /** Byte address of the wide-arith scratch slot. */
  readonly scratchAddr: number;
  /** Guest physical end of DRAM. */
  readonly ramEnd: number;

  /** Working copy of the pc (record PC is current outside `run()`). */
  pcv = 0;
  /** Working copy of instret (record INSTRET is current outside `run()`). */
  instret = 0;

  // Out-of-line results of the slow paths (not state: valid only right after the call).
  excCause = -1;
  excTval = 0;
  /** Set by WFI with nothing pending: `run()` returns Idle. */
  idle = false;

  /** The guest memory (its `codePages` and `onCodeWrite` keep translations coherent). */
  readonly mem: GuestMemory;

  constructor(mem: GuestMemory, hartId: number) {
    this.mem = mem;
    const buf = mem.memory.buffer;
    this.hartId = hartId;
    this.base = mem.hartBase(hartId);
    this.i32 = new Int32Array(buf);
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.dv = new DataView(buf);
    this.st = new Int32Array(buf, this.base, HartLayout.TLB >> 2);
    this.tlb = new Int32Array(buf, this.base + HartLayout.TLB, TLB_SETS * TLB_SIZE * 4);
    this.superRange = new Float64Array(buf, this.base + HartLayout.SUPER_LO, 2);
    this.xBase = (this.base + HartLayout.X) >> 2;
    this.fBase = (this.base + HartLayout.F) >> 2;
    this.mipIdx = (this.base + HartLayout.MIP) >> 2;
    this.exitIdx = (this.base + HartLayout.EXIT_REQUEST) >> 2;
    this.scratchAddr = this.base + HartLayout.SCRATCH;
    this.ramEnd = 0x8000_0000 + mem.ramSize;
  }

  /** Writes the working pc and instret into the record. */
  flushCounters(): void {
    const st = this.st, pc = this.pcv, n = this.instret;
    st[Word.PC] = loOf(pc);
    st[Word.PC + 1] = hiOf(pc);
    st[Word.INSTRET] = loOf(n);
    st[Word.INSTRET + 1] = hiOf(n);
  }

  /** Reloads the working pc and instret from the record. */
  reloadCounters(): void {
    const st = this.st;
    this.pcv = i64Of(st[Word.PC], st[Word.PC + 1]);
    this.instret = u64Of(st[Word.INSTRET], st[Word.INSTRET + 1]);
  }

  /** Reads a signed 64-bit record field as a double. */
  protected get64(w: number): number {
    return i64Of(this.st[w], this.st[w + 1]);
  }

  /** Writes an exact double to a 64-bit record field. */
  protected set64(w: number, v: number): void {
    this.st[w] = loOf(v);
    this.st[w + 1] = hiOf(v);
  }

  /** Privilege level: 0 U, 1 S, 3 M. */
  get privv(): number {
    return this.st[Word.PRIV];
  }
  set privv(v: number) {
    this.st[Word.PRIV] = v;
  }

  /** mstatus (low word). */
  get mstatus(): number {
    return this.st[Word.MSTATUS];
  }
  set mstatus(v: number) {
    this.st[Word.MSTATUS] = v;
  }

  /** Software-written mip bits. */
  get mipSw(): number {
    return this.st[Word.MIP_SW];
  }
  set mipSw(v: number) {
    this.st[Word.MIP_SW] = v;
  }

  /** fcsr.fflags (5 bits). */
  get fflags(): number {
    return this.st[Word.FFLAGS];
  }
  set fflags(v: number) {
    this.st[Word.FFLAGS] = v;
  }

  /** fcsr.frm (3 bits). */
  get frm(): number {
    return this.st[Word.FRM];
  }
  set frm(v: number) {
    this.st[Word.FRM] = v;
  }

  /** LR reservation valid. */
  get resValid(): boolean {
    return this.st[Word.RES_VALID] !== 0;
  }
  set resValid(v: boolean) {
    this.st[Word.RES_VALID] = v ? 1 : 0;
  }

  /** LR reservation physical address. */
  get resAddr(): number {
    return this.get64(Word.RES_ADDR);
  }
  set resAddr(v: number) {
    this.set64(Word.RES_ADDR, v);
  }

  /** mcycle = instret + cycleDelta while counting. */
  get cycleDelta(): number {
    return this.get64(Word.CYCLE_DELTA);
  }
  set cycleDelta(v: number) {
    this.set64(Word.CYCLE_DELTA, v);
  }

  /** minstret = instret + instretDelta while counting. */
  get instretDelta(): number {
    return this.get64(Word.INSTRET_DELTA);
  }
  set instretDelta(v: number) {
    this.set64(Word.INSTRET_DELTA, v);
  }

  /** mcycle while mcountinhibit.CY holds it. */
  get frozenCycle(): number {
    return this.get64(Word.CYCLE_FROZEN);
  }
  set frozenCycle(v: number) {
    this.set64(Word.CYCLE_FROZEN, v);
  }

  /** minstret while mcountinhibit.IR holds it. */
  get frozenInstret(): number {
    return this.get64(Word.INSTRET_FROZEN);
  }
  set frozenInstret(v: number) {
    this.set64(Word.INSTRET_FROZEN, v);
  }
}
