/**
 * The RV64GC hart interpreter: RV64IMAFDC + Zicsr + Zifencei + Zicntr + Sstc, privileged
 * spec 1.12 (M/S/U), Sv39/Sv48 with a TLB, and PMP.
 *
 * Representation (no BigInt, no allocation on the hot path):
 * - x/f registers live in the shared guest memory as little-endian lo/hi int32 pairs.
 * - The pc is a JS double holding the signed 64-bit value; every address a guest can use
 *   without faulting (canonical Sv39/Sv48 virtual or < 2^56 physical) is exact in a double.
 * - Memory accesses go through a direct-mapped TLB per (privilege/SUM, access kind) that maps
 *   a virtual page to a host byte offset in DRAM. Bare mode uses the same TLB with the
 *   identity mapping, so PMP results are cached too. MMIO is never cached.
 *
 * Choices where the spec leaves room: A/D bits are updated by hardware during the walk (as
 * QEMU does); misaligned loads/stores to DRAM are performed (byte-wise), only LR/SC/AMO raise
 * address-misaligned; misaligned MMIO accesses raise access faults; `mtval` for EBREAK is the
 * pc; WFI in U-mode (or in S-mode with mstatus.TW) is illegal at once.
 */
import { DRAM_BASE, GuestMemory, HartLayout, RAM_OFFSET } from "../guest_memory.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import { type ExecutionEngine, StopReason } from "../engine.ts";
import { fpExecute, type FpState } from "./fpu.ts";
import { compressedTable } from "./rvc.ts";
import { createWideArith, type WideArith } from "./wide_arith.ts";
import { Pmp } from "./pmp.ts";
import { Cause, Csr, MISA_HI, MISA_LO, Mstatus } from "./csr_numbers.ts";
import { WARMUP_IMAGE, WARMUP_RAM } from "./warmup_program.ts";

/** Constructor arguments of a hart (stable contract with the machine). */
export interface HartOptions {
  mem: GuestMemory;
  hartId: number;
  bus: PhysicalBus;
  clock: VmClock;
}

/** Plain, structured-clone-able hart state (see `Hart.save`). */
export interface HartState {
  x: number[];
  f: number[];
  pc: number;
  priv: number;
  instret: number;
  mstatus: number;
  mipSw: number;
  fflags: number;
  frm: number;
  /** Non-zero words of the CSR storage as [index, value] pairs. */
  csr: [number, number][];
  pmp: { cfg: number[]; addrLo: number[]; addrHi: number[] };
  counters: {
    instretDelta: number;
    cycleDelta: number;
    frozenInstret: number;
    frozenCycle: number;
  };
  reservation: { valid: boolean; addr: number };
}

const TWO32 = 4294967296;
/** 2^-32: multiplying by it is exact and cheaper than dividing by 2^32. */
const INV_TWO32 = 1 / TWO32;
const TLB_BITS = 10;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;
/** Mode indices (U, S, S with SUM, M) times access kinds (load, store, fetch). */
const TLB_SETS = 12;
/** Instructions between interrupt / exit-request checks. */
const CHUNK = 4096;
/** Instructions between clock reads for the Sstc comparator while running. */
const TIME_CHECK = 4096;
/** Physical address width (Sv39/Sv48 PPN: 44 bits). */
const PA_LIMIT = 2 ** 56;

const SSIP = 1 << 1, MSIP = 1 << 3, STIP = 1 << 5, MTIP = 1 << 7, SEIP = 1 << 9, MEIP = 1 << 11;
/** Interrupt priority: MEI, MSI, MTI, SEI, SSI, STI. */
const IRQ_ORDER = [11, 3, 7, 9, 1, 5];
const MSTATUS_WMASK = Mstatus.SIE | Mstatus.MIE | Mstatus.SPIE | Mstatus.MPIE | Mstatus.SPP |
  Mstatus.MPP | Mstatus.FS | Mstatus.MPRV | Mstatus.SUM | Mstatus.MXR | Mstatus.TVM |
  Mstatus.TW | Mstatus.TSR;
const SSTATUS_WMASK = Mstatus.SIE | Mstatus.SPIE | Mstatus.SPP | Mstatus.FS | Mstatus.SUM |
  Mstatus.MXR;
const SSTATUS_RMASK = SSTATUS_WMASK;
/** Exceptions that may be delegated to S (not ecall from M, not reserved 10). */
const MEDELEG_MASK = 0xb3ff;
const MIDELEG_MASK = SSIP | STIP | SEIP;
const MIE_MASK = SSIP | MSIP | STIP | MTIP | SEIP | MEIP;
/** mip bits driven by devices through the shared MIP word. */
const EXTERNAL_MASK = SSIP | MSIP | MTIP | SEIP | MEIP;
/** Page-fault and access-fault causes indexed by access kind (load, store, fetch). */
const PAGE_FAULT = [Cause.LOAD_PAGE, Cause.STORE_PAGE, Cause.FETCH_PAGE];
const ACCESS_FAULT = [Cause.LOAD_ACCESS, Cause.STORE_ACCESS, Cause.FETCH_ACCESS];

/** Storage slots (CSR number) of CSRs kept as plain 64-bit words. */
const PLAIN_CSRS = new Set<number>([
  Csr.STVEC,
  Csr.SCOUNTEREN,
  Csr.SENVCFG,
  Csr.SSCRATCH,
  Csr.SEPC,
  Csr.SCAUSE,
  Csr.STVAL,
  Csr.STIMECMP,
  Csr.SATP,
  Csr.MEDELEG,
  Csr.MIDELEG,
  Csr.MIE,
  Csr.MTVEC,
  Csr.MCOUNTEREN,
  Csr.MENVCFG,
  Csr.MCOUNTINHIBIT,
  Csr.MSCRATCH,
  Csr.MEPC,
  Csr.MCAUSE,
  Csr.MTVAL,
]);

/** Converts an exact double to the high word of its 64-bit two's complement. */
function hiOf(v: number): number {
  return Math.floor(v * INV_TWO32) | 0;
}

/** Converts an exact double to the low word of its 64-bit two's complement (ToInt32 is mod 2^32). */
function loOf(v: number): number {
  return v | 0;
}

/** One RISC-V hart: an interpreter behind the `ExecutionEngine` interface. */
export class Hart implements ExecutionEngine, FpState {
  /** View of the whole shared memory (registers and DRAM). */
  readonly i32: Int32Array;
  /** Int32 index of x0.lo in `i32`. */
  readonly xBase: number;
  /** Int32 index of f0.lo in `i32`. */
  readonly fBase: number;
  /** fcsr.fflags (5 bits). */
  fflags = 0;
  /** fcsr.frm (3 bits). */
  frm = 0;
  /** Instructions retired so far. */
  instret = 0;
  /** Called on FENCE.I (hook for a future translation cache). */
  onFenceI: (() => void) | undefined = undefined;

  readonly hartId: number;
  private readonly bus: PhysicalBus;
  private readonly clock: VmClock;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly dv: DataView;
  private readonly ramEnd: number;
  private readonly mipIdx: number;
  private readonly exitIdx: number;
  private readonly pcIdx: number;
  /** Byte address of a scratch 8-byte slot (wide-arith results for rd = x0). */
  private readonly scratchAddr: number;
  private readonly wide: WideArith;
  private readonly ctab: Int32Array;
  private readonly pmp = new Pmp();

  private pcv = 0;
  private privv = 3;
  private mstatus = 0;
  /** Software-written mip bits (SSIP, STIP, SEIP). */
  private mipSw = 0;
  /** Plain 64-bit CSRs: lo at [2n], hi at [2n+1]. */
  private readonly csr = new Int32Array(8192);
  private instretDelta = 0;
  private cycleDelta = 0;
  private frozenInstret = 0;
  private frozenCycle = 0;
  private resValid = false;
  private resAddr = 0;

  // Derived MMU state.
  private satpMode = 0;
  private satpRoot = 0;
  private effPriv = 3;
  private fetchSet = 0;
  private loadSet = 0;
  private storeSet = 0;
  private readonly tlbTag = new Float64Array(TLB_SETS * TLB_SIZE).fill(NaN);
  /** The same tags as lo/hi words, for word-only compares in the loop (lo = 1: invalid). */
  private readonly tlbTagLo = new Int32Array(TLB_SETS * TLB_SIZE).fill(1);
  private readonly tlbTagHi = new Int32Array(TLB_SETS * TLB_SIZE);
  private readonly tlbOff = new Int32Array(TLB_SETS * TLB_SIZE);
  /** MMIO pages: virtual page -> physical page (PMP-uniform pages only). */
  private readonly mmioTag = new Float64Array(TLB_SETS * TLB_SIZE).fill(NaN);
  private readonly mmioBase = new Float64Array(TLB_SETS * TLB_SIZE);
  /** Virtual range covered by cached superpage entries (SFENCE.VMA inside it flushes all). */
  private superLo = Infinity;
  private superHi = -Infinity;
  /** Level of the leaf found by the last successful walk (0 = 4 KiB page). */
  private walkLevel = 0;

  // Out-of-line results (avoid allocation).
  private tmpLo = 0;
  private tmpHi = 0;
  private mmioPa = 0;
  private excCause = -1;
  private excTval = 0;
  private idle = false;
  /** Sstc STIP as last computed, and the instret at that time. */
  private sstcStip = 0;
  private timeCheckedAt = -Infinity;
  private fetchPageBase = NaN;
  private fetchPageOff = 0;
  private readonly byteHost = new Float64Array(8);

  constructor(opts: HartOptions) {
    const { mem, hartId, bus, clock } = opts;
    this.hartId = hartId;
    this.bus = bus;
    this.clock = clock;
    this.i32 = mem.i32;
    this.u8 = mem.u8;
    this.u16 = mem.u16;
    this.dv = mem.view;
    this.ramEnd = DRAM_BASE + mem.ramSize;
    const base = mem.hartBase(hartId);
    this.xBase = (base + HartLayout.X) >> 2;
    this.fBase = (base + HartLayout.F) >> 2;
    this.mipIdx = (base + HartLayout.MIP) >> 2;
    this.exitIdx = (base + HartLayout.EXIT_REQUEST) >> 2;
    this.pcIdx = (base + HartLayout.PC) >> 2;
    this.scratchAddr = base + HartLayout.CSR;
    this.wide = createWideArith(mem.memory);
    this.ctab = compressedTable();
    this.reset(DRAM_BASE);
    if (!warmedUp) {
      warmedUp = true;
      warmUpInterpreter();
    }
  }

  /** Current pc (signed 64-bit value as a double). */
  get pc(): number {
    return this.pcv;
  }

  /** Current privilege level: 0 U, 1 S, 3 M. */
  get priv(): number {
    return this.privv;
  }

  /** Resets to M-mode at `pc` with architectural reset values. */
  reset(pc: number): void {
    this.i32.fill(0, this.xBase, this.xBase + 128);
    this.pcv = pc;
    this.privv = 3;
    this.mstatus = 0;
    this.mipSw = 0;
    this.csr.fill(0);
    this.fflags = 0;
    this.frm = 0;
    this.instret = 0;
    this.timeCheckedAt = -Infinity;
    this.instretDelta = 0;
    this.cycleDelta = 0;
    this.frozenInstret = 0;
    this.frozenCycle = 0;
    this.resValid = false;
    this.idle = false;
    this.pmp.cfg.fill(0);
    this.pmp.addrLo.fill(0);
    this.pmp.addrHi.fill(0);
    this.pmp.decode();
    this.satpChanged();
  }

  /** Register `i` as an unsigned 64-bit value (tests and boot only). */
  getReg(i: number): bigint {
    const b = this.xBase + 2 * i;
    return (BigInt(this.i32[b + 1] >>> 0) << 32n) | BigInt(this.i32[b] >>> 0);
  }

  /** Sets register `i` (writes to x0 are ignored). */
  setReg(i: number, v: bigint): void {
    if (i === 0) return;
    const b = this.xBase + 2 * i;
    this.i32[b] = Number(BigInt.asIntN(32, v));
    this.i32[b + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }

  /** Raw bits of f register `i`. */
  getFReg(i: number): bigint {
    const b = this.fBase + 2 * i;
    return (BigInt(this.i32[b + 1] >>> 0) << 32n) | BigInt(this.i32[b] >>> 0);
  }

  /** The pc as an unsigned 64-bit value. */
  getPc(): bigint {
    return BigInt.asUintN(64, BigInt(this.pcv));
  }

  /** Sets the pc (boot and tests). */
  setPc(v: bigint): void {
    this.pcv = Number(BigInt.asIntN(64, v));
  }

  /** Reads CSR `n` regardless of privilege (tests); throws RangeError for unknown CSRs. */
  readCsr(n: number): bigint {
    if (!this.csrRead(n)) throw new RangeError(`no CSR 0x${n.toString(16)}`);
    return (BigInt(this.tmpHi >>> 0) << 32n) | BigInt(this.tmpLo >>> 0);
  }

  /** Writes CSR `n` regardless of privilege (boot and tests); throws for unknown CSRs. */
  writeCsr(n: number, v: bigint): void {
    if (!this.csrRead(n)) throw new RangeError(`no CSR 0x${n.toString(16)}`);
    this.csrWrite(n, Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
  }

  /** True when an interrupt is pending and enabled in mie (ends a WFI wait). */
  interruptPending(): boolean {
    return (this.readMip() & this.csr[Csr.MIE * 2]) !== 0;
  }

  /** mtime value at which the Sstc timer fires (Infinity when not armed by Sstc). */
  timerDeadline(): number {
    if ((this.csr[Csr.MENVCFG * 2 + 1] & 0x80000000) === 0) return Infinity;
    return (this.csr[Csr.STIMECMP * 2 + 1] >>> 0) * TWO32 + (this.csr[Csr.STIMECMP * 2] >>> 0);
  }

  /** Executes up to `budget` instructions. */
  run(budget: number): StopReason {
    const i32 = this.i32;
    let left = budget;
    let reason = StopReason.Budget;
    while (left > 0) {
      if (Atomics.load(i32, this.exitIdx) !== 0) {
        reason = StopReason.Halted;
        break;
      }
      const irq = this.pendingInterrupt(left !== budget);
      if (irq >= 0) this.takeTrap(irq, true, 0);
      const done = this.exec(left < CHUNK ? left : CHUNK);
      left -= done > 0 ? done : 1;
      if (this.idle) {
        this.idle = false;
        reason = StopReason.Idle;
        break;
      }
    }
    if (reason === StopReason.Budget && Atomics.load(i32, this.exitIdx) !== 0) {
      reason = StopReason.Halted;
    }
    i32[this.pcIdx] = loOf(this.pcv);
    i32[this.pcIdx + 1] = hiOf(this.pcv);
    return reason;
  }

  /** Plain copy of all hart state. */
  save(): HartState {
    const csr: [number, number][] = [];
    for (let i = 0; i < this.csr.length; i++) if (this.csr[i] !== 0) csr.push([i, this.csr[i]]);
    return {
      x: Array.from(this.i32.subarray(this.xBase, this.xBase + 64)),
      f: Array.from(this.i32.subarray(this.fBase, this.fBase + 64)),
      pc: this.pcv,
      priv: this.privv,
      instret: this.instret,
      mstatus: this.mstatus,
      mipSw: this.mipSw,
      fflags: this.fflags,
      frm: this.frm,
      csr,
      pmp: this.pmp.save(),
      counters: {
        instretDelta: this.instretDelta,
        cycleDelta: this.cycleDelta,
        frozenInstret: this.frozenInstret,
        frozenCycle: this.frozenCycle,
      },
      reservation: { valid: this.resValid, addr: this.resAddr },
    };
  }

  /** Restores what `save()` produced. */
  load(s: HartState): void {
    this.i32.set(s.x, this.xBase);
    this.i32[this.xBase] = 0;
    this.i32[this.xBase + 1] = 0;
    this.i32.set(s.f, this.fBase);
    this.pcv = s.pc;
    this.privv = s.priv;
    this.instret = s.instret;
    this.timeCheckedAt = -Infinity;
    this.mstatus = s.mstatus;
    this.mipSw = s.mipSw;
    this.fflags = s.fflags;
    this.frm = s.frm;
    this.csr.fill(0);
    for (const [i, v] of s.csr) this.csr[i] = v;
    this.pmp.load(s.pmp);
    this.instretDelta = s.counters.instretDelta;
    this.cycleDelta = s.counters.cycleDelta;
    this.frozenInstret = s.counters.frozenInstret;
    this.frozenCycle = s.counters.frozenCycle;
    this.resValid = s.reservation.valid;
    this.resAddr = s.reservation.addr;
    this.idle = false;
    this.satpChanged();
  }

  // ---------------------------------------------------------------------------------------
  // The hot loop.

  /** Executes up to `limit` instructions; returns how many were attempted. */
  private exec(limit: number): number {
    const r = this.i32, u8 = this.u8, u16 = this.u16;
    // `| 0` makes these untagged int32 in optimized code (no Smi checks in the loop).
    const xb = this.xBase | 0, lim = limit | 0;
    const tlbTag = this.tlbTag, tlbOff = this.tlbOff, ctab = this.ctab;
    const tagLo = this.tlbTagLo, tagHi = this.tlbTagHi;
    const fetchSet = this.fetchSet | 0, ldSet = this.loadSet | 0, stSet = this.storeSet | 0;
    const ib = this.instret;
    let pc = this.pcv;
    let fpBase = NaN, fpOff = 0;
    let n = 0, attempted = 0;
    /** Bits of an illegal instruction (the trap's tval). */
    let illBits = 0;
    let exc = -1, excTval = 0, ill = false;
    loop: while (n < lim) {
      n++;
      let raw: number;
      // Fetch: the current page is cached in locals (fast case: a whole 32-bit parcel fits),
      // then the fetch TLB; else out of line.
      let d = pc - fpBase;
      if (d >= 0 && d < 4094) {
        const hh = (fpOff + (d | 0)) >> 1; // d is an exact integer in [0, 4094)
        raw = u16[hh];
        if ((raw & 3) === 3) raw |= u16[hh + 1] << 16;
      } else {
        if (!(d >= 0 && d < 4095)) {
          const plo = pc | 0;
          const ti = fetchSet + ((plo >>> 12) & TLB_MASK);
          const pb = pc - (plo & 0xfff);
          if (tlbTag[ti] === pb) {
            fpBase = pb;
            fpOff = tlbOff[ti];
            d = pc - pb;
          }
        }
        if (d >= 0 && d < 4095) {
          const hh = (fpOff + (d | 0)) >> 1; // d is an exact integer in [0, 4095)
          raw = u16[hh];
          if ((raw & 3) === 3) {
            if (d === 4094) {
              raw = this.fetchSlow(pc);
              if (this.excCause >= 0) {
                exc = this.excCause;
                excTval = this.excTval;
                this.excCause = -1;
                n--;
                break;
              }
            } else raw |= u16[hh + 1] << 16;
          }
        } else {
          raw = this.fetchSlow(pc);
          if (this.excCause >= 0) {
            exc = this.excCause;
            excTval = this.excTval;
            this.excCause = -1;
            n--;
            break;
          }
          fpBase = this.fetchPageBase;
          fpOff = this.fetchPageOff;
        }
      }
      const ilen = (raw & 3) === 3 ? 4 : 2;
      const insn = ilen === 4 ? raw : ctab[raw];
      if (insn === 0) {
        illBits = raw;
        ill = true;
        break;
      }
      const rd = (insn >> 7) & 31;
      const rs1i = xb + ((insn >> 14) & 62);
      const rs2i = xb + ((insn >> 19) & 62);
      switch ((insn >>> 2) & 31) { // major opcode (bits 1:0 are always 11 here)
        case 4: { // OP-IMM
          const imm = insn >> 20;
          const alo = r[rs1i], ahi = r[rs1i + 1];
          let lo: number, hi: number;
          switch ((insn >>> 12) & 7) {
            case 0: {
              // Word-only 64-bit add (no float64 on the hot path): carry = unsigned wrap.
              lo = (alo + imm) | 0;
              hi = (ahi + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
              break;
            }
            case 1: {
              if ((insn >>> 26) !== 0) {
                illBits = ilen === 2 ? raw & 0xffff : insn;
                ill = true;
                break loop;
              }
              const sh = imm & 63;
              if (sh === 0) {
                lo = alo;
                hi = ahi;
              } else if (sh < 32) {
                hi = (ahi << sh) | (alo >>> (32 - sh));
                lo = alo << sh;
              } else {
                hi = alo << (sh - 32);
                lo = 0;
              }
              break;
            }
            case 2: {
              const ih = imm >> 31;
              lo = ahi < ih || (ahi === ih && (alo >>> 0) < (imm >>> 0)) ? 1 : 0;
              hi = 0;
              break;
            }
            case 3: {
              const ih = imm >> 31;
              lo = (ahi >>> 0) < (ih >>> 0) || (ahi === ih && (alo >>> 0) < (imm >>> 0)) ? 1 : 0;
              hi = 0;
              break;
            }
            case 4:
              lo = alo ^ imm;
              hi = ahi ^ (imm >> 31);
              break;
            case 5: {
              const f6 = insn >>> 26;
              const sh = imm & 63;
              if (f6 === 0) {
                if (sh === 0) {
                  lo = alo;
                  hi = ahi;
                } else if (sh < 32) {
                  lo = (alo >>> sh) | (ahi << (32 - sh));
                  hi = ahi >>> sh;
                } else {
                  lo = ahi >>> (sh - 32);
                  hi = 0;
                }
              } else if (f6 === 0x10) {
                if (sh === 0) {
                  lo = alo;
                  hi = ahi;
                } else if (sh < 32) {
                  lo = (alo >>> sh) | (ahi << (32 - sh));
                  hi = ahi >> sh;
                } else {
                  lo = ahi >> (sh - 32);
                  hi = ahi >> 31;
                }
              } else {
                illBits = ilen === 2 ? raw & 0xffff : insn;
                ill = true;
                break loop;
              }
              break;
            }
            case 6:
              lo = alo | imm;
              hi = ahi | (imm >> 31);
              break;
            default:
              lo = alo & imm;
              hi = ahi & (imm >> 31);
              break;
          }
          if (rd !== 0) {
            const w = xb + (rd << 1);
            r[w] = lo;
            r[w + 1] = hi;
          }
          pc += ilen;
          continue;
        }
        case 12: { // OP
          const f7 = insn >>> 25;
          const f3 = (insn >>> 12) & 7;
          const alo = r[rs1i], ahi = r[rs1i + 1], blo = r[rs2i], bhi = r[rs2i + 1];
          let lo: number, hi: number;
          if (f7 === 0) {
            switch (f3) {
              case 0: {
                lo = (alo + blo) | 0;
                hi = (ahi + bhi + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
                break;
              }
              case 1: {
                const sh = blo & 63;
                if (sh === 0) {
                  lo = alo;
                  hi = ahi;
                } else if (sh < 32) {
                  hi = (ahi << sh) | (alo >>> (32 - sh));
                  lo = alo << sh;
                } else {
                  hi = alo << (sh - 32);
                  lo = 0;
                }
                break;
              }
              case 2:
                lo = ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0)) ? 1 : 0;
                hi = 0;
                break;
              case 3:
                lo = (ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0))
                  ? 1
                  : 0;
                hi = 0;
                break;
              case 4:
                lo = alo ^ blo;
                hi = ahi ^ bhi;
                break;
              case 5: {
                const sh = blo & 63;
                if (sh === 0) {
                  lo = alo;
                  hi = ahi;
                } else if (sh < 32) {
                  lo = (alo >>> sh) | (ahi << (32 - sh));
                  hi = ahi >>> sh;
                } else {
                  lo = ahi >>> (sh - 32);
                  hi = 0;
                }
                break;
              }
              case 6:
                lo = alo | blo;
                hi = ahi | bhi;
                break;
              default:
                lo = alo & blo;
                hi = ahi & bhi;
                break;
            }
          } else if (f7 === 0x20) {
            if (f3 === 0) {
              lo = (alo - blo) | 0;
              hi = (ahi - bhi - ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
            } else if (f3 === 5) {
              const sh = blo & 63;
              if (sh === 0) {
                lo = alo;
                hi = ahi;
              } else if (sh < 32) {
                lo = (alo >>> sh) | (ahi << (32 - sh));
                hi = ahi >> sh;
              } else {
                lo = ahi >> (sh - 32);
                hi = ahi >> 31;
              }
            } else {
              illBits = ilen === 2 ? raw & 0xffff : insn;
              ill = true;
              break loop;
            }
          } else if (f7 === 1) {
            this.mulDiv(f3, rd, rs1i, rs2i);
            pc += ilen;
            continue;
          } else {
            illBits = ilen === 2 ? raw & 0xffff : insn;
            ill = true;
            break loop;
          }
          if (rd !== 0) {
            const w = xb + (rd << 1);
            r[w] = lo;
            r[w + 1] = hi;
          }
          pc += ilen;
          continue;
        }
        case 0: { // LOAD
          const imm = insn >> 20;
          const blo = r[rs1i];
          const alo = (blo + imm) | 0;
          const ahi = (r[rs1i + 1] + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
          const f3 = (insn >>> 12) & 7;
          const sz = f3 & 3;
          const ti = ldSet + ((alo >>> 12) & TLB_MASK);
          let lo: number, hi = 0;
          if (
            tagLo[ti] === (alo & ~0xfff) && tagHi[ti] === ahi &&
            (alo & ((1 << sz) - 1)) === 0 && f3 !== 7
          ) {
            const h = tlbOff[ti] + (alo & 0xfff);
            switch (f3) {
              case 0:
                lo = (u8[h] << 24) >> 24;
                hi = lo >> 31;
                break;
              case 1:
                lo = (u16[h >> 1] << 16) >> 16;
                hi = lo >> 31;
                break;
              case 2:
                lo = r[h >> 2];
                hi = lo >> 31;
                break;
              case 3:
                lo = r[h >> 2];
                hi = r[(h >> 2) + 1];
                break;
              case 4:
                lo = u8[h];
                break;
              case 5:
                lo = u16[h >> 1];
                break;
              default:
                lo = r[h >> 2];
                break;
            }
          } else {
            if (f3 === 7) {
              illBits = ilen === 2 ? raw & 0xffff : insn;
              ill = true;
              break loop;
            }
            this.pcv = pc;
            const st = this.loadInsn(ahi * TWO32 + (alo >>> 0), f3, rd);
            if (st === 2) {
              exc = this.excCause;
              excTval = this.excTval;
              this.excCause = -1;
              n--;
              break loop;
            }
            pc += ilen;
            if (st === 1) break loop;
            continue;
          }
          if (rd !== 0) {
            const w = xb + (rd << 1);
            r[w] = lo;
            r[w + 1] = hi;
          }
          pc += ilen;
          continue;
        }
        case 8: { // STORE
          const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 31);
          const blo = r[rs1i];
          const alo = (blo + imm) | 0;
          const ahi = (r[rs1i + 1] + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
          const f3 = (insn >>> 12) & 7;
          if (f3 > 3) {
            illBits = ilen === 2 ? raw & 0xffff : insn;
            ill = true;
            break loop;
          }
          const vlo = r[rs2i];
          const ti = stSet + ((alo >>> 12) & TLB_MASK);
          if (tagLo[ti] === (alo & ~0xfff) && tagHi[ti] === ahi && (alo & ((1 << f3) - 1)) === 0) {
            const h = tlbOff[ti] + (alo & 0xfff);
            switch (f3) {
              case 0:
                u8[h] = vlo;
                break;
              case 1:
                u16[h >> 1] = vlo;
                break;
              case 2:
                r[h >> 2] = vlo;
                break;
              default:
                r[h >> 2] = vlo;
                r[(h >> 2) + 1] = r[rs2i + 1];
            }
            pc += ilen;
            continue;
          }
          this.pcv = pc;
          const st = this.storeSlow(ahi * TWO32 + (alo >>> 0), 1 << f3, vlo, r[rs2i + 1]);
          if (st === 2) {
            exc = this.excCause;
            excTval = this.excTval;
            this.excCause = -1;
            n--;
            break loop;
          }
          pc += ilen;
          if (st === 1) break loop;
          continue;
        }
        case 24: { // BRANCH
          const alo = r[rs1i], ahi = r[rs1i + 1], blo = r[rs2i], bhi = r[rs2i + 1];
          let take: boolean;
          switch ((insn >>> 12) & 7) {
            case 0:
              take = alo === blo && ahi === bhi;
              break;
            case 1:
              take = alo !== blo || ahi !== bhi;
              break;
            case 4:
              take = ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0));
              break;
            case 5:
              take = !(ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0)));
              break;
            case 6:
              take = (ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0));
              break;
            case 7:
              take = !((ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0)));
              break;
            default:
              illBits = ilen === 2 ? raw & 0xffff : insn;
              ill = true;
              break loop;
          }
          if (take) {
            pc += ((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11) |
              (((insn >>> 25) & 0x3f) << 5) | (((insn >>> 8) & 0xf) << 1);
          } else pc += ilen;
          continue;
        }
        case 27: { // JAL
          if (rd !== 0) {
            const l = pc + ilen;
            const w = xb + (rd << 1);
            r[w] = loOf(l);
            r[w + 1] = hiOf(l);
          }
          pc += ((insn >> 31) << 20) | (((insn >>> 12) & 0xff) << 12) |
            (((insn >>> 20) & 1) << 11) | (((insn >>> 21) & 0x3ff) << 1);
          continue;
        }
        case 25: { // JALR
          if (((insn >>> 12) & 7) !== 0) {
            illBits = ilen === 2 ? raw & 0xffff : insn;
            ill = true;
            break loop;
          }
          const imm = insn >> 20;
          const blo = r[rs1i];
          const t = r[rs1i + 1] * TWO32 + (blo >>> 0) + imm - ((blo + imm) & 1);
          if (rd !== 0) {
            const l = pc + ilen;
            const w = xb + (rd << 1);
            r[w] = loOf(l);
            r[w + 1] = hiOf(l);
          }
          pc = t;
          continue;
        }
        case 13: { // LUI
          if (rd !== 0) {
            const w = xb + (rd << 1);
            const lo = insn & 0xfffff000;
            r[w] = lo;
            r[w + 1] = lo >> 31;
          }
          pc += ilen;
          continue;
        }
        case 5: { // AUIPC
          if (rd !== 0) {
            const v = pc + (insn & 0xfffff000);
            const w = xb + (rd << 1);
            r[w] = loOf(v);
            r[w + 1] = hiOf(v);
          }
          pc += ilen;
          continue;
        }
        case 6: { // OP-IMM-32
          const alo = r[rs1i];
          const f3 = (insn >>> 12) & 7;
          let lo: number;
          if (f3 === 0) lo = (alo + (insn >> 20)) | 0;
          else {
            const f7 = insn >>> 25;
            const sh = (insn >>> 20) & 31;
            if (f3 === 1 && f7 === 0) lo = alo << sh;
            else if (f3 === 5 && f7 === 0) lo = alo >>> sh | 0;
            else if (f3 === 5 && f7 === 0x20) lo = alo >> sh;
            else {
              illBits = ilen === 2 ? raw & 0xffff : insn;
              ill = true;
              break loop;
            }
          }
          if (rd !== 0) {
            const w = xb + (rd << 1);
            r[w] = lo;
            r[w + 1] = lo >> 31;
          }
          pc += ilen;
          continue;
        }
        case 14: { // OP-32
          const f7 = insn >>> 25;
          const f3 = (insn >>> 12) & 7;
          const alo = r[rs1i], blo = r[rs2i];
          let lo: number;
          if (f7 === 0 && f3 === 0) lo = (alo + blo) | 0;
          else if (f7 === 0x20 && f3 === 0) lo = (alo - blo) | 0;
          else if (f7 === 0 && f3 === 1) lo = alo << (blo & 31);
          else if (f7 === 0 && f3 === 5) lo = (alo >>> (blo & 31)) | 0;
          else if (f7 === 0x20 && f3 === 5) lo = alo >> (blo & 31);
          else if (f7 === 1) {
            switch (f3) {
              case 0:
                lo = Math.imul(alo, blo);
                break;
              case 4:
                lo = blo === 0 ? -1 : (alo / blo) | 0;
                break;
              case 5:
                lo = blo === 0 ? -1 : ((alo >>> 0) / (blo >>> 0)) | 0;
                break;
              case 6:
                lo = blo === 0 ? alo : (alo % blo) | 0;
                break;
              case 7:
                lo = blo === 0 ? alo : ((alo >>> 0) % (blo >>> 0)) | 0;
                break;
              default:
                illBits = ilen === 2 ? raw & 0xffff : insn;
                ill = true;
                break loop;
            }
          } else {
            illBits = ilen === 2 ? raw & 0xffff : insn;
            ill = true;
            break loop;
          }
          if (rd !== 0) {
            const w = xb + (rd << 1);
            r[w] = lo;
            r[w + 1] = lo >> 31;
          }
          pc += ilen;
          continue;
        }
        case 3: { // MISC-MEM
          const f3 = (insn >>> 12) & 7;
          if (f3 === 1) {
            if (this.onFenceI) this.onFenceI();
          } else if (f3 !== 0) {
            illBits = ilen === 2 ? raw & 0xffff : insn;
            ill = true;
            break loop;
          }
          pc += ilen;
          continue;
        }
        case 28: { // SYSTEM: leaves the loop (privilege, CSRs, translation may change)
          this.pcv = pc;
          this.instret = ib + n - 1;
          const ok = this.system(insn, raw, ilen);
          pc = this.pcv;
          // A CSR read that writes nothing (csrrs/csrrc with rs1 = x0) changes no state: go on.
          if (ok && ((insn >>> 12) & 3) >= 2 && ((insn >>> 15) & 31) === 0) continue;
          if (!ok) n--;
          break loop;
        }
        case 11: { // AMO
          this.pcv = pc;
          if (!this.amo(insn, rd, rs1i, rs2i)) {
            n--;
            pc = this.pcv;
            break loop;
          }
          pc = this.pcv;
          continue;
        }
        case 1:
        case 9:
        case 16:
        case 17:
        case 18:
        case 19:
        case 20: {
          this.pcv = pc;
          if (!this.fp(insn, raw, ilen, rd, rs1i)) {
            n--;
            pc = this.pcv;
            break loop;
          }
          pc = this.pcv;
          continue;
        }
        default:
          illBits = ilen === 2 ? raw & 0xffff : insn;
          ill = true;
          break loop;
      }
    }
    attempted = n;
    if (ill) {
      n--;
      exc = Cause.ILLEGAL;
      excTval = illBits >>> 0;
    }
    if (exc >= 0) attempted = n + 1;
    this.pcv = pc;
    this.instret = ib + n;
    if (exc >= 0) this.takeTrap(exc, false, excTval);
    return attempted;
  }

  // ---------------------------------------------------------------------------------------
  // Out-of-line instruction groups.

  /**
   * A load that missed the TLB fast path (out of line to keep the hot loop small): performs
   * it, extends the value for funct3 and writes rd. Returns loadSlow's status.
   */
  private loadInsn(a: number, f3: number, rd: number): number {
    const st = this.loadSlow(a, 1 << (f3 & 3));
    if (st === 2) return st;
    let lo = this.tmpLo, hi = this.tmpHi;
    switch (f3) {
      case 0:
        lo = (lo << 24) >> 24;
        hi = lo >> 31;
        break;
      case 1:
        lo = (lo << 16) >> 16;
        hi = lo >> 31;
        break;
      case 2:
        hi = lo >> 31;
        break;
      case 3:
        break;
      default:
        hi = 0;
    }
    if (rd !== 0) {
      const w = this.xBase + (rd << 1);
      this.i32[w] = lo;
      this.i32[w + 1] = hi;
    }
    return st;
  }

  /** RV64M on full registers (multiply, divide and remainder through the i64 helper). */
  private mulDiv(f3: number, rd: number, rs1i: number, rs2i: number): void {
    const r = this.i32;
    const dst = rd === 0 ? this.scratchAddr : (this.xBase + 2 * rd) << 2;
    const a = rs1i << 2, b = rs2i << 2;
    const blo = r[rs2i], bhi = r[rs2i + 1];
    if (f3 >= 4 && blo === 0 && bhi === 0) {
      // Division by zero: quotient all ones, remainder the dividend.
      if (rd === 0) return;
      const w = this.xBase + 2 * rd;
      if (f3 <= 5) {
        r[w] = -1;
        r[w + 1] = -1;
      } else {
        const alo = r[rs1i], ahi = r[rs1i + 1];
        r[w] = alo;
        r[w + 1] = ahi;
      }
      return;
    }
    if (
      (f3 === 4 || f3 === 6) && blo === -1 && bhi === -1 && r[rs1i] === 0 &&
      r[rs1i + 1] === (0x80000000 | 0)
    ) {
      // Signed overflow: quotient is the dividend, remainder zero.
      if (rd === 0) return;
      const w = this.xBase + 2 * rd;
      r[w] = 0;
      r[w + 1] = f3 === 4 ? 0x80000000 | 0 : 0;
      return;
    }
    const wa = this.wide;
    switch (f3) {
      case 0:
        wa.mul(dst, a, b);
        break;
      case 1:
        wa.mulh(dst, a, b);
        break;
      case 2:
        wa.mulhsu(dst, a, b);
        break;
      case 3:
        wa.mulhu(dst, a, b);
        break;
      case 4:
        wa.div(dst, a, b);
        break;
      case 5:
        wa.divu(dst, a, b);
        break;
      case 6:
        wa.rem(dst, a, b);
        break;
      default:
        wa.remu(dst, a, b);
    }
  }

  /** SYSTEM opcode: CSR access, ECALL/EBREAK, xRET, WFI, SFENCE.VMA. Returns false on trap. */
  private system(insn: number, raw: number, ilen: number): boolean {
    const f3 = (insn >>> 12) & 7;
    const priv = this.privv;
    if (f3 === 0) {
      switch (insn) {
        case 0x00000073: // ECALL
          return this.trapNow(
            priv === 0 ? Cause.ECALL_U : priv === 1 ? Cause.ECALL_S : Cause.ECALL_M,
            0,
          );
        case 0x00100073: // EBREAK
          return this.trapNow(Cause.BREAKPOINT, this.pcv);
        case 0x30200073: { // MRET
          if (priv !== 3) return this.illegal(raw, ilen);
          const ms = this.mstatus;
          const mpp = (ms >> 11) & 3;
          let v = (ms & ~(Mstatus.MIE | Mstatus.MPP)) | Mstatus.MPIE;
          if (ms & Mstatus.MPIE) v |= Mstatus.MIE;
          if (mpp !== 3) v &= ~Mstatus.MPRV;
          this.mstatus = v;
          this.privv = mpp;
          this.pcv = this.csr[Csr.MEPC * 2 + 1] * TWO32 + (this.csr[Csr.MEPC * 2] >>> 0);
          this.resValid = false;
          this.updateMmuMode();
          return true;
        }
        case 0x10200073: { // SRET
          if (priv === 0 || (priv === 1 && (this.mstatus & Mstatus.TSR))) {
            return this.illegal(raw, ilen);
          }
          const ms = this.mstatus;
          const spp = (ms >> 8) & 1;
          let v = (ms & ~(Mstatus.SIE | Mstatus.SPP | Mstatus.MPRV)) | Mstatus.SPIE;
          if (ms & Mstatus.SPIE) v |= Mstatus.SIE;
          this.mstatus = v;
          this.privv = spp;
          this.pcv = this.csr[Csr.SEPC * 2 + 1] * TWO32 + (this.csr[Csr.SEPC * 2] >>> 0);
          this.resValid = false;
          this.updateMmuMode();
          return true;
        }
        case 0x10500073: // WFI
          if (priv === 0 || (priv === 1 && (this.mstatus & Mstatus.TW))) {
            return this.illegal(raw, ilen);
          }
          this.pcv += ilen;
          if ((this.readMip() & this.csr[Csr.MIE * 2]) === 0) this.idle = true;
          return true;
        default:
          if ((insn & 0xfe007fff) === 0x12000073) { // SFENCE.VMA
            if (priv === 0 || (priv === 1 && (this.mstatus & Mstatus.TVM))) {
              return this.illegal(raw, ilen);
            }
            const rs1 = (insn >>> 15) & 31;
            const b = this.xBase + 2 * rs1;
            const va = this.i32[b + 1] * TWO32 + (this.i32[b] >>> 0);
            if (rs1 === 0 || (va >= this.superLo && va < this.superHi)) this.flushTlb();
            else this.flushTlbPage(va);
            this.pcv += ilen;
            return true;
          }
          return this.illegal(raw, ilen);
      }
    }
    if (f3 === 4) return this.illegal(raw, ilen);
    // Zicsr.
    const n = insn >>> 20;
    const rs1 = (insn >>> 15) & 31;
    const rd = (insn >>> 7) & 31;
    const r = this.i32;
    let slo: number, shi: number;
    if (f3 >= 5) {
      slo = rs1;
      shi = 0;
    } else {
      slo = r[this.xBase + 2 * rs1];
      shi = r[this.xBase + 2 * rs1 + 1];
    }
    const op = f3 & 3;
    const writes = op === 1 || rs1 !== 0;
    if (((n >>> 8) & 3) > priv) return this.illegal(raw, ilen);
    if (writes && (n >>> 10) === 3) return this.illegal(raw, ilen);
    if (!this.csrAllowed(n)) return this.illegal(raw, ilen);
    if (!this.csrRead(n)) return this.illegal(raw, ilen);
    const rlo = this.tmpLo, rhi = this.tmpHi;
    let olo = rlo;
    const ohi = rhi;
    if (writes) {
      if (n === Csr.MIP && op !== 1) olo = (olo & ~SEIP) | (this.mipSw & SEIP);
      let nlo: number, nhi: number;
      if (op === 1) {
        nlo = slo;
        nhi = shi;
      } else if (op === 2) {
        nlo = olo | slo;
        nhi = ohi | shi;
      } else {
        nlo = olo & ~slo;
        nhi = ohi & ~shi;
      }
      this.csrWrite(n, nlo, nhi);
    }
    if (rd !== 0) {
      r[this.xBase + 2 * rd] = rlo;
      r[this.xBase + 2 * rd + 1] = rhi;
    }
    this.pcv += ilen;
    return true;
  }

  /** LR/SC/AMO*.W/.D. Returns false on trap. */
  private amo(insn: number, rd: number, rs1i: number, rs2i: number): boolean {
    const f3 = (insn >>> 12) & 7;
    if (f3 !== 2 && f3 !== 3) return this.illegal(insn, 4);
    const size = f3 === 2 ? 4 : 8;
    const f5 = insn >>> 27;
    const r = this.i32;
    const alo = r[rs1i];
    const a = r[rs1i + 1] * TWO32 + (alo >>> 0);
    const slo = r[rs2i], shi = r[rs2i + 1];
    // Valid funct5: AMOADD 0, SWAP 1, LR 2 (rs2 = 0), SC 3, XOR 4, OR 8, AND 12, MIN/MAX 16..28.
    if (((0x1111111f >>> f5) & 1) === 0 || (f5 === 2 && ((insn >>> 20) & 31) !== 0)) {
      return this.illegal(insn, 4);
    }
    if (alo & (size - 1)) {
      return this.trapNow(f5 === 2 ? Cause.LOAD_MISALIGNED : Cause.STORE_MISALIGNED, a);
    }
    const h = this.dataHost(a, f5 === 2 ? 0 : 1, size);
    if (h === -2) return this.trapExc();
    const pa = h >= 0 ? h - RAM_OFFSET + DRAM_BASE : this.mmioPa;
    // Read the old value.
    let olo = 0, ohi = 0;
    if (f5 !== 3) {
      if (h >= 0) {
        olo = r[h >> 2];
        ohi = size === 8 ? r[(h >> 2) + 1] : olo >> 31;
      } else {
        const l = this.bus.load(pa, 4);
        const hh = size === 8 && l >= 0 ? this.bus.load(pa + 4, 4) : 0;
        if (l < 0 || hh < 0) {
          return this.trapNow(f5 === 2 ? Cause.LOAD_ACCESS : Cause.STORE_ACCESS, a);
        }
        olo = l | 0;
        ohi = size === 8 ? hh | 0 : olo >> 31;
      }
    }
    let nlo = 0, nhi = 0, write = true;
    switch (f5) {
      case 2: // LR
        this.resValid = true;
        this.resAddr = pa;
        write = false;
        break;
      case 3: // SC
        if (this.resValid && this.resAddr === pa) {
          nlo = slo;
          nhi = shi;
          olo = 0;
        } else {
          write = false;
          olo = 1;
        }
        ohi = 0;
        this.resValid = false;
        break;
      case 1:
        nlo = slo;
        nhi = shi;
        break;
      case 0: {
        const s = (olo >>> 0) + (slo >>> 0);
        nlo = s | 0;
        nhi = (ohi + shi + (s > 4294967295 ? 1 : 0)) | 0;
        break;
      }
      case 4:
        nlo = olo ^ slo;
        nhi = ohi ^ shi;
        break;
      case 8:
        nlo = olo | slo;
        nhi = ohi | shi;
        break;
      case 0xc:
        nlo = olo & slo;
        nhi = ohi & shi;
        break;
      default: {
        // MIN/MAX/MINU/MAXU: compare old (o) with source (s).
        const signed = f5 === 0x10 || f5 === 0x14;
        let less: boolean;
        if (size === 4) {
          less = signed ? olo < slo : (olo >>> 0) < (slo >>> 0);
        } else if (ohi !== shi) {
          less = signed ? ohi < shi : (ohi >>> 0) < (shi >>> 0);
        } else less = (olo >>> 0) < (slo >>> 0);
        const pickOld = (f5 === 0x10 || f5 === 0x18) ? less : !less;
        nlo = pickOld ? olo : slo;
        nhi = pickOld ? ohi : shi;
      }
    }
    if (write) {
      if (h >= 0) {
        r[h >> 2] = nlo;
        if (size === 8) r[(h >> 2) + 1] = nhi;
      } else {
        const ok = this.bus.store(pa, 4, nlo) && (size === 4 || this.bus.store(pa + 4, 4, nhi));
        if (!ok) return this.trapNow(Cause.STORE_ACCESS, a);
      }
    }
    if (rd !== 0) {
      const w = this.xBase + 2 * rd;
      r[w] = olo;
      r[w + 1] = size === 4 ? olo >> 31 : ohi;
    }
    this.pcv += 4;
    return true;
  }

  /** F/D loads, stores and arithmetic (arithmetic in fpu.ts). Returns false on trap. */
  private fp(insn: number, raw: number, ilen: number, rd: number, rs1i: number): boolean {
    if ((this.mstatus & Mstatus.FS) === 0) return this.illegal(raw, ilen);
    const op = insn & 0x7f;
    const f3 = (insn >>> 12) & 7;
    const r = this.i32;
    if (op === 0x07 || op === 0x27) {
      if (f3 !== 2 && f3 !== 3) return this.illegal(raw, ilen);
      const size = f3 === 2 ? 4 : 8;
      const imm = op === 0x07 ? insn >> 20 : ((insn >> 25) << 5) | ((insn >>> 7) & 31);
      const a = r[rs1i + 1] * TWO32 + (r[rs1i] >>> 0) + imm;
      const alo = (r[rs1i] + imm) | 0;
      // TLB fast path for aligned accesses.
      const ti = (op === 0x07 ? this.loadSet : this.storeSet) + ((alo >>> 12) & (TLB_SIZE - 1));
      const h = this.tlbTag[ti] === a - (alo & 0xfff) && (alo & (size - 1)) === 0
        ? (this.tlbOff[ti] + (alo & 0xfff)) >> 2
        : -1;
      if (op === 0x07) {
        let lo: number, hi: number;
        if (h >= 0) {
          lo = r[h];
          hi = size === 4 ? -1 : r[h + 1];
        } else {
          if (this.loadSlow(a, size) === 2) return this.trapExc();
          lo = this.tmpLo;
          hi = size === 4 ? -1 : this.tmpHi;
        }
        const w = this.fBase + 2 * rd;
        r[w] = lo;
        r[w + 1] = hi;
        this.mstatus |= Mstatus.FS;
      } else {
        const fs = this.fBase + 2 * ((insn >>> 20) & 31);
        if (h >= 0) {
          r[h] = r[fs];
          if (size === 8) r[h + 1] = r[fs + 1];
        } else if (this.storeSlow(a, size, r[fs], r[fs + 1]) === 2) return this.trapExc();
      }
      this.pcv += ilen;
      return true;
    }
    let ok: boolean;
    try {
      ok = fpExecute(this, insn);
    } catch {
      ok = false; // a guest must never be able to throw out of run()
    }
    if (!ok) return this.illegal(raw, ilen);
    this.r0();
    this.mstatus |= Mstatus.FS;
    this.pcv += ilen;
    return true;
  }

  /** Keeps x0 zero after code that may have written it. */
  private r0(): void {
    this.i32[this.xBase] = 0;
    this.i32[this.xBase + 1] = 0;
  }

  // ---------------------------------------------------------------------------------------
  // Traps and interrupts.

  private illegal(raw: number, ilen: number): boolean {
    return this.trapNow(Cause.ILLEGAL, ilen === 2 ? raw & 0xffff : raw >>> 0);
  }

  private trapNow(cause: number, tval: number): boolean {
    this.takeTrap(cause, false, tval);
    return false;
  }

  /** Takes the exception recorded by translate/loadSlow/storeSlow. */
  private trapExc(): boolean {
    const c = this.excCause;
    this.excCause = -1;
    return this.trapNow(c, this.excTval);
  }

  /** Records a fault for the caller; returns the FAULT status of loadSlow/storeSlow (2). */
  private fault(cause: number, tval: number): number {
    this.excCause = cause;
    this.excTval = tval;
    return 2;
  }

  /** Enters the trap handler for `cause` with epc = current pc. */
  private takeTrap(cause: number, interrupt: boolean, tval: number): void {
    const epc = this.pcv;
    const priv = this.privv;
    const c = this.csr;
    this.resValid = false;
    const deleg = interrupt ? c[Csr.MIDELEG * 2] : c[Csr.MEDELEG * 2];
    const ms = this.mstatus;
    let tvec: number;
    if (priv <= 1 && ((deleg >>> cause) & 1) !== 0) {
      c[Csr.SCAUSE * 2] = cause;
      c[Csr.SCAUSE * 2 + 1] = interrupt ? 0x80000000 | 0 : 0;
      c[Csr.SEPC * 2] = loOf(epc);
      c[Csr.SEPC * 2 + 1] = hiOf(epc);
      c[Csr.STVAL * 2] = loOf(tval);
      c[Csr.STVAL * 2 + 1] = hiOf(tval);
      let v = ms & ~(Mstatus.SPP | Mstatus.SPIE | Mstatus.SIE);
      if (ms & Mstatus.SIE) v |= Mstatus.SPIE;
      if (priv === 1) v |= Mstatus.SPP;
      this.mstatus = v;
      this.privv = 1;
      tvec = Csr.STVEC;
    } else {
      c[Csr.MCAUSE * 2] = cause;
      c[Csr.MCAUSE * 2 + 1] = interrupt ? 0x80000000 | 0 : 0;
      c[Csr.MEPC * 2] = loOf(epc);
      c[Csr.MEPC * 2 + 1] = hiOf(epc);
      c[Csr.MTVAL * 2] = loOf(tval);
      c[Csr.MTVAL * 2 + 1] = hiOf(tval);
      let v = ms & ~(Mstatus.MPP | Mstatus.MPIE | Mstatus.MIE);
      if (ms & Mstatus.MIE) v |= Mstatus.MPIE;
      v |= priv << 11;
      this.mstatus = v;
      this.privv = 3;
      tvec = Csr.MTVEC;
    }
    const lo = c[tvec * 2], hi = c[tvec * 2 + 1];
    let target = hi * TWO32 + ((lo & ~3) >>> 0);
    if ((lo & 3) === 1 && interrupt) target += 4 * cause;
    this.pcv = target;
    this.updateMmuMode();
  }

  /** Current mip: software bits, device lines and the Sstc comparator. */
  private readMip(cachedTime = false): number {
    let v = (Atomics.load(this.i32, this.mipIdx) & EXTERNAL_MASK) | this.mipSw;
    if (this.csr[Csr.MENVCFG * 2 + 1] & 0x80000000) {
      // Between chunks the clock is read at most every TIME_CHECK instructions.
      if (!cachedTime || this.instret - this.timeCheckedAt >= TIME_CHECK) {
        const cmp = (this.csr[Csr.STIMECMP * 2 + 1] >>> 0) * TWO32 +
          (this.csr[Csr.STIMECMP * 2] >>> 0);
        this.sstcStip = this.clock.now() >= cmp ? STIP : 0;
        this.timeCheckedAt = this.instret;
      }
      v = (v & ~STIP) | this.sstcStip;
    }
    return v;
  }

  /** The interrupt to take now (cause number) or -1. */
  private pendingInterrupt(cachedTime: boolean): number {
    const mie = this.csr[Csr.MIE * 2];
    if (mie === 0) return -1;
    const pend = this.readMip(cachedTime) & mie;
    if (pend === 0) return -1;
    const mideleg = this.csr[Csr.MIDELEG * 2];
    const priv = this.privv;
    const m = pend & ~mideleg;
    let take = 0;
    if (m !== 0 && (priv < 3 || (this.mstatus & Mstatus.MIE))) take = m;
    else {
      const s = pend & mideleg;
      if (s !== 0 && (priv < 1 || (priv === 1 && (this.mstatus & Mstatus.SIE)))) take = s;
    }
    if (take === 0) return -1;
    for (const c of IRQ_ORDER) if (take & (1 << c)) return c;
    return -1;
  }

  // ---------------------------------------------------------------------------------------
  // CSRs.

  /** Extra access rules beyond the number encoding (FS, counter enables, TVM, Sstc). */
  private csrAllowed(n: number): boolean {
    const priv = this.privv;
    if (n <= 3) return (this.mstatus & Mstatus.FS) !== 0;
    if (n >= Csr.CYCLE && n <= 0xc1f && priv < 3) {
      const bit = 1 << (n - Csr.CYCLE);
      if ((this.csr[Csr.MCOUNTEREN * 2] & bit) === 0) return false;
      if (priv === 0 && (this.csr[Csr.SCOUNTEREN * 2] & bit) === 0) return false;
      return true;
    }
    if (n === Csr.SATP && priv === 1 && (this.mstatus & Mstatus.TVM)) return false;
    if (n === Csr.STIMECMP && priv < 3) {
      if ((this.csr[Csr.MCOUNTEREN * 2] & 2) === 0) return false;
      if ((this.csr[Csr.MENVCFG * 2 + 1] & 0x80000000) === 0) return false;
    }
    return true;
  }

  private counterRead(which: 0 | 2): number {
    const inhibit = this.csr[Csr.MCOUNTINHIBIT * 2];
    if (which === 0) return inhibit & 1 ? this.frozenCycle : this.instret + this.cycleDelta;
    return inhibit & 4 ? this.frozenInstret : this.instret + this.instretDelta;
  }

  /** Reads CSR `n` into tmpLo/tmpHi; false when it does not exist. */
  private csrRead(n: number): boolean {
    let lo = 0, hi = 0;
    const c = this.csr;
    switch (n) {
      case Csr.FFLAGS:
        lo = this.fflags;
        break;
      case Csr.FRM:
        lo = this.frm;
        break;
      case Csr.FCSR:
        lo = (this.frm << 5) | this.fflags;
        break;
      case Csr.CYCLE:
      case Csr.MCYCLE:
      case Csr.INSTRET:
      case Csr.MINSTRET: {
        const v = this.counterRead(n === Csr.CYCLE || n === Csr.MCYCLE ? 0 : 2);
        lo = loOf(v);
        hi = hiOf(v);
        break;
      }
      case Csr.TIME: {
        const v = Math.floor(this.clock.now());
        lo = loOf(v);
        hi = hiOf(v);
        break;
      }
      case Csr.SSTATUS:
        lo = this.mstatus & SSTATUS_RMASK;
        hi = 2 | ((this.mstatus & Mstatus.FS) === Mstatus.FS ? 0x80000000 : 0);
        break;
      case Csr.SIE:
        lo = c[Csr.MIE * 2] & c[Csr.MIDELEG * 2];
        break;
      case Csr.SIP:
        lo = this.readMip() & c[Csr.MIDELEG * 2];
        break;
      case Csr.MSTATUS:
        lo = this.mstatus;
        hi = 0xa | ((this.mstatus & Mstatus.FS) === Mstatus.FS ? 0x80000000 : 0);
        break;
      case Csr.MISA:
        lo = MISA_LO;
        hi = MISA_HI;
        break;
      case Csr.MIP:
        lo = this.readMip();
        break;
      case Csr.MHARTID:
        lo = this.hartId;
        break;
      case Csr.MVENDORID:
      case Csr.MARCHID:
      case Csr.MIMPID:
      case Csr.MCONFIGPTR:
        break;
      default:
        if (PLAIN_CSRS.has(n)) {
          lo = c[n * 2];
          hi = c[n * 2 + 1];
        } else if (n >= Csr.PMPCFG0 && n < Csr.PMPCFG0 + 16) {
          if (n & 1) return false;
          lo = this.pmp.readCfg(n - Csr.PMPCFG0, false);
          hi = this.pmp.readCfg(n - Csr.PMPCFG0, true);
        } else if (n >= Csr.PMPADDR0 && n < Csr.PMPADDR0 + 64) {
          const i = n - Csr.PMPADDR0;
          if (i < 16) {
            lo = this.pmp.addrLo[i];
            hi = this.pmp.addrHi[i];
          }
        } else if (
          !((n >= 0xc03 && n <= 0xc1f) || (n >= 0xb03 && n <= 0xb1f) || (n >= 0x323 && n <= 0x33f))
        ) {
          return false;
        }
    }
    this.tmpLo = lo | 0;
    this.tmpHi = hi | 0;
    return true;
  }

  /** Writes CSR `n` (existence and permission already checked). */
  private csrWrite(n: number, lo: number, hi: number): void {
    const c = this.csr;
    switch (n) {
      case Csr.FFLAGS:
        this.fflags = lo & 31;
        this.mstatus |= Mstatus.FS;
        return;
      case Csr.FRM:
        this.frm = lo & 7;
        this.mstatus |= Mstatus.FS;
        return;
      case Csr.FCSR:
        this.fflags = lo & 31;
        this.frm = (lo >> 5) & 7;
        this.mstatus |= Mstatus.FS;
        return;
      case Csr.SSTATUS:
        this.setMstatus((this.mstatus & ~SSTATUS_WMASK) | (lo & SSTATUS_WMASK));
        return;
      case Csr.MSTATUS:
        this.setMstatus((this.mstatus & ~MSTATUS_WMASK) | (lo & MSTATUS_WMASK));
        return;
      case Csr.SIE: {
        const m = c[Csr.MIDELEG * 2] & MIDELEG_MASK;
        c[Csr.MIE * 2] = (c[Csr.MIE * 2] & ~m) | (lo & m);
        return;
      }
      case Csr.SIP: {
        const m = c[Csr.MIDELEG * 2] & SSIP;
        this.mipSw = (this.mipSw & ~m) | (lo & m);
        return;
      }
      case Csr.MIE:
        c[n * 2] = lo & MIE_MASK;
        return;
      case Csr.MIP: {
        const stce = (c[Csr.MENVCFG * 2 + 1] & 0x80000000) !== 0;
        const m = SSIP | SEIP | (stce ? 0 : STIP);
        this.mipSw = (this.mipSw & ~m) | (lo & m);
        return;
      }
      case Csr.MEDELEG:
        c[n * 2] = lo & MEDELEG_MASK;
        return;
      case Csr.MIDELEG:
        c[n * 2] = lo & MIDELEG_MASK;
        return;
      case Csr.MTVEC:
      case Csr.STVEC:
        if ((lo & 3) >= 2) return; // reserved modes: keep the old value
        c[n * 2] = lo;
        c[n * 2 + 1] = hi;
        return;
      case Csr.MEPC:
      case Csr.SEPC:
        c[n * 2] = lo & ~1;
        c[n * 2 + 1] = hi;
        return;
      case Csr.MCOUNTEREN:
      case Csr.SCOUNTEREN:
        c[n * 2] = lo;
        return;
      case Csr.MENVCFG:
        this.timeCheckedAt = -Infinity;
        c[n * 2] = lo & 1;
        c[n * 2 + 1] = hi & (0x80000000 | 0);
        return;
      case Csr.SENVCFG:
        c[n * 2] = lo & 1;
        return;
      case Csr.SATP: {
        const mode = hi >>> 28;
        if (mode !== 0 && mode !== 8 && mode !== 9) return;
        c[n * 2] = lo;
        c[n * 2 + 1] = hi;
        this.satpChanged();
        return;
      }
      case Csr.MCOUNTINHIBIT: {
        const old = c[n * 2];
        const v = lo & 5;
        if ((v & 1) && !(old & 1)) this.frozenCycle = this.instret + this.cycleDelta;
        if (!(v & 1) && (old & 1)) this.cycleDelta = this.frozenCycle - this.instret;
        if ((v & 4) && !(old & 4)) this.frozenInstret = this.instret + this.instretDelta;
        if (!(v & 4) && (old & 4)) this.instretDelta = this.frozenInstret - this.instret;
        c[n * 2] = v;
        return;
      }
      case Csr.MCYCLE:
      case Csr.MINSTRET: {
        // The written value is what the next instruction sees.
        const v = (hi >>> 0) * TWO32 + (lo >>> 0);
        const cyc = n === Csr.MCYCLE;
        const inhibited = c[Csr.MCOUNTINHIBIT * 2] & (cyc ? 1 : 4);
        if (cyc) {
          if (inhibited) this.frozenCycle = v;
          else this.cycleDelta = v - (this.instret + 1);
        } else {
          if (inhibited) this.frozenInstret = v;
          else this.instretDelta = v - (this.instret + 1);
        }
        return;
      }
      default:
        if (PLAIN_CSRS.has(n)) {
          if (n === Csr.STIMECMP) this.timeCheckedAt = -Infinity;
          c[n * 2] = lo;
          c[n * 2 + 1] = hi;
        } else if (n >= Csr.PMPCFG0 && n < Csr.PMPCFG0 + 16) {
          this.pmp.writeCfg(n - Csr.PMPCFG0, lo, hi);
          this.flushTlb();
        } else if (n >= Csr.PMPADDR0 && n < Csr.PMPADDR0 + 16) {
          this.pmp.writeAddr(n - Csr.PMPADDR0, lo, hi);
          this.flushTlb();
        }
        // Other counters/events and misa: read-only zero / WARL, writes ignored.
    }
  }

  private setMstatus(v: number): void {
    if (((v >> 11) & 3) === 2) v = (v & ~Mstatus.MPP) | (this.mstatus & Mstatus.MPP);
    const changed = v ^ this.mstatus;
    this.mstatus = v;
    if (changed & Mstatus.MXR) this.flushTlb();
    this.updateMmuMode();
  }

  // ---------------------------------------------------------------------------------------
  // Address translation and memory.

  private satpChanged(): void {
    const hi = this.csr[Csr.SATP * 2 + 1], lo = this.csr[Csr.SATP * 2];
    this.satpMode = hi >>> 28;
    this.satpRoot = ((hi & 0xfff) * TWO32 + (lo >>> 0)) * 4096;
    this.flushTlb();
    this.updateMmuMode();
  }

  /** Forgets all cached translations. */
  flushTlb(): void {
    this.tlbTag.fill(NaN);
    this.tlbTagLo.fill(1);
    this.mmioTag.fill(NaN);
    this.superLo = Infinity;
    this.superHi = -Infinity;
  }

  /** Forgets cached translations of the 4 KiB page holding `va` (all modes and kinds). */
  private flushTlbPage(va: number): void {
    const page = va - (va - Math.floor(va / 4096) * 4096);
    const idx = (page / 4096) & (TLB_SIZE - 1);
    for (let s = 0; s < TLB_SETS; s++) {
      if (this.tlbTag[s * TLB_SIZE + idx] === page) {
        this.tlbTag[s * TLB_SIZE + idx] = NaN;
        this.tlbTagLo[s * TLB_SIZE + idx] = 1;
      }
      if (this.mmioTag[s * TLB_SIZE + idx] === page) this.mmioTag[s * TLB_SIZE + idx] = NaN;
    }
  }

  private updateMmuMode(): void {
    const ms = this.mstatus;
    const priv = this.privv;
    const eff = priv === 3 && (ms & Mstatus.MPRV) ? (ms >> 11) & 3 : priv;
    this.effPriv = eff;
    const sum = (ms & Mstatus.SUM) !== 0;
    const fm = priv === 3 ? 3 : priv;
    const lm = eff === 3 ? 3 : eff === 0 ? 0 : sum ? 2 : 1;
    this.fetchSet = (fm * 3 + 2) * TLB_SIZE;
    this.loadSet = (lm * 3) * TLB_SIZE;
    this.storeSet = (lm * 3 + 1) * TLB_SIZE;
  }

  /**
   * Translates `va` for an access of `size` bytes (access: 0 load, 1 store, 2 fetch) and
   * checks PMP. Returns the host byte offset for DRAM, -1 for MMIO (address in mmioPa), or
   * -2 after recording a fault. Fills the TLB for cacheable pages.
   */
  private translate(va: number, access: number, size: number): number {
    const eff = access === 2 ? this.privv : this.effPriv;
    let pa: number;
    this.walkLevel = 0;
    if (eff === 3 || this.satpMode === 0) {
      if (va < 0 || va >= PA_LIMIT) return this.fault(ACCESS_FAULT[access], va) - 4;
      pa = va;
    } else {
      pa = this.walk(va, access, eff);
      if (pa < 0) return -2;
    }
    if (!this.pmp.check(pa, size, access, eff)) return this.fault(ACCESS_FAULT[access], va) - 4;
    const po = pa % 4096;
    const ppage = pa - po;
    const vpage = va - po;
    const set = access === 2 ? this.fetchSet : access === 0 ? this.loadSet : this.storeSet;
    const idx = set + ((vpage / 4096) & TLB_MASK);
    const cacheable = this.pmp.checkPage(ppage, access, eff) === 1;
    if (cacheable && this.walkLevel !== 0) {
      const span = 4096 * 512 ** this.walkLevel;
      const base = Math.floor(va / span) * span;
      if (base < this.superLo) this.superLo = base;
      if (base + span > this.superHi) this.superHi = base + span;
    }
    if (pa >= DRAM_BASE && pa + size <= this.ramEnd) {
      const host = pa - DRAM_BASE + RAM_OFFSET;
      if (cacheable) {
        this.tlbTag[idx] = vpage;
        this.tlbTagLo[idx] = loOf(vpage);
        this.tlbTagHi[idx] = hiOf(vpage);
        this.tlbOff[idx] = host - po;
      }
      return host;
    }
    if (cacheable && access !== 2) {
      this.mmioTag[idx] = vpage;
      this.mmioBase[idx] = ppage;
    }
    this.mmioPa = pa;
    return -1;
  }

  /** Sv39/Sv48 page walk; returns the physical address or -1 after recording a fault. */
  private walk(va: number, access: number, eff: number): number {
    const levels = this.satpMode === 8 ? 3 : 4;
    const limit = levels === 3 ? 2 ** 38 : 2 ** 47;
    if (va >= limit || va < -limit) return this.fault(PAGE_FAULT[access], va) - 3;
    const w = va < 0 ? va + 2 ** 48 : va;
    const r = this.i32;
    let base = this.satpRoot;
    for (let i = levels - 1; i >= 0; i--) {
      const shift = 2 ** (12 + 9 * i);
      const vpn = Math.floor(w / shift) % 512;
      const pteAddr = base + vpn * 8;
      if (
        !this.pmp.check(pteAddr, 8, 0, 1) || pteAddr < DRAM_BASE || pteAddr + 8 > this.ramEnd
      ) {
        return this.fault(ACCESS_FAULT[access], va) - 3;
      }
      const idx = (pteAddr - DRAM_BASE + RAM_OFFSET) >> 2;
      const lo = r[idx], hi = r[idx + 1];
      if ((lo & 1) === 0 || (lo & 6) === 4 || (hi & 0xffc00000) !== 0) break;
      const ppn = (hi & 0x3fffff) * 4194304 + (lo >>> 10);
      if ((lo & 0xa) === 0) {
        base = ppn * 4096;
        continue;
      }
      // Leaf: U-bit, SUM, MXR and permission checks.
      if (lo & 0x10) {
        if (eff === 1 && (access === 2 || (this.mstatus & Mstatus.SUM) === 0)) break;
      } else if (eff === 0) break;
      if (access === 2) {
        if ((lo & 8) === 0) break;
      } else if (access === 0) {
        if ((lo & 2) === 0 && !((this.mstatus & Mstatus.MXR) && (lo & 8))) break;
      } else if ((lo & 4) === 0) break;
      const span = 2 ** (9 * i);
      if (i > 0 && ppn % span !== 0) break; // misaligned superpage
      // Hardware A/D update (atomic on the low word).
      const need = access === 1 ? 0xc0 : 0x40;
      if ((lo & need) !== need) Atomics.or(r, idx, need);
      this.walkLevel = i;
      return (ppn + Math.floor(w / 4096) % span) * 4096 + (w % 4096);
    }
    return this.fault(PAGE_FAULT[access], va) - 3;
  }

  /** Host offset of the fetch parcel at `va` (TLB first), -1 for MMIO, -2 on fault. */
  private fetchHost(va: number): number {
    const po = va - Math.floor(va / 4096) * 4096;
    const ti = this.fetchSet + (((va - po) / 4096) & TLB_MASK);
    if (this.tlbTag[ti] === va - po) return this.tlbOff[ti] + po;
    return this.translate(va, 2, 2);
  }

  /** Fetches the instruction at `pc` (any alignment to 2, any page/region). */
  private fetchSlow(pc: number): number {
    this.fetchPageBase = NaN;
    const h = this.fetchHost(pc);
    if (h === -2) return 0;
    let p: number;
    if (h >= 0) {
      p = this.u16[h >> 1];
      const po = pc - Math.floor(pc / 4096) * 4096;
      const ti = this.fetchSet + (((pc - po) / 4096) & TLB_MASK);
      if (this.tlbTag[ti] === pc - po) {
        this.fetchPageBase = pc - po;
        this.fetchPageOff = this.tlbOff[ti];
      }
    } else {
      p = this.bus.load(this.mmioPa, 2);
      if (p < 0) return this.fault(Cause.FETCH_ACCESS, pc);
    }
    if ((p & 3) !== 3) return p;
    const pc2 = pc + 2;
    const h2 = this.fetchHost(pc2);
    if (h2 === -2) return 0;
    let q: number;
    if (h2 >= 0) q = this.u16[h2 >> 1];
    else {
      q = this.bus.load(this.mmioPa, 2);
      if (q < 0) return this.fault(Cause.FETCH_ACCESS, pc2);
    }
    return p | (q << 16);
  }

  /** Host offset for a data access (TLB, then MMIO TLB, then a walk); see `translate`. */
  private dataHost(va: number, access: number, size: number): number {
    const po = va - Math.floor(va / 4096) * 4096;
    const ti = (access === 0 ? this.loadSet : this.storeSet) + (((va - po) / 4096) & TLB_MASK);
    if (this.tlbTag[ti] === va - po) return this.tlbOff[ti] + po;
    if (this.mmioTag[ti] === va - po) {
      this.mmioPa = this.mmioBase[ti] + po;
      return -1;
    }
    return this.translate(va, access, size);
  }

  /** Loads `size` bytes at `va` into tmpLo/tmpHi: 0 ok, 1 ok from MMIO, 2 fault. */
  private loadSlow(va: number, size: number): number {
    const po = va - Math.floor(va / 4096) * 4096;
    if (po + size > 4096) return this.loadBytes(va, size);
    const h = this.dataHost(va, 0, size);
    if (h === -2) return 2;
    if (h === -1) {
      const pa = this.mmioPa;
      if (pa % size !== 0) return this.fault(Cause.LOAD_ACCESS, va);
      if (size === 8) {
        const l = this.bus.load(pa, 4);
        const hh = l < 0 ? -1 : this.bus.load(pa + 4, 4);
        if (l < 0 || hh < 0) return this.fault(Cause.LOAD_ACCESS, va);
        this.tmpLo = l | 0;
        this.tmpHi = hh | 0;
      } else {
        const v = this.bus.load(pa, size as 1 | 2 | 4);
        if (v < 0) return this.fault(Cause.LOAD_ACCESS, va);
        this.tmpLo = v | 0;
        this.tmpHi = 0;
      }
      return 1;
    }
    const dv = this.dv;
    switch (size) {
      case 1:
        this.tmpLo = this.u8[h];
        break;
      case 2:
        this.tmpLo = dv.getUint16(h, true);
        break;
      case 4:
        this.tmpLo = dv.getInt32(h, true);
        break;
      default:
        this.tmpLo = dv.getInt32(h, true);
        this.tmpHi = dv.getInt32(h + 4, true);
    }
    return 0;
  }

  /** A load that crosses a page boundary, byte by byte (DRAM only). */
  private loadBytes(va: number, size: number): number {
    let lo = 0, hi = 0;
    for (let i = 0; i < size; i++) {
      const h = this.translate(va + i, 0, 1);
      if (h === -2) return 2;
      if (h === -1) return this.fault(Cause.LOAD_ACCESS, va + i);
      const b = this.u8[h];
      if (i < 4) lo |= b << (8 * i);
      else hi |= b << (8 * (i - 4));
    }
    this.tmpLo = lo;
    this.tmpHi = hi;
    return 0;
  }

  /** Stores `size` bytes of lo/hi at `va`: 0 ok, 1 ok to MMIO, 2 fault. */
  private storeSlow(va: number, size: number, lo: number, hi: number): number {
    const po = va - Math.floor(va / 4096) * 4096;
    if (po + size > 4096) {
      // Page-crossing: translate every byte first so a fault leaves memory untouched.
      const hosts = this.byteHost;
      for (let i = 0; i < size; i++) {
        const h = this.translate(va + i, 1, 1);
        if (h === -2) return 2;
        if (h === -1) return this.fault(Cause.STORE_ACCESS, va + i);
        hosts[i] = h;
      }
      for (let i = 0; i < size; i++) {
        this.u8[hosts[i]] = i < 4 ? lo >>> (8 * i) : hi >>> (8 * (i - 4));
      }
      return 0;
    }
    const h = this.dataHost(va, 1, size);
    if (h === -2) return 2;
    if (h === -1) {
      const pa = this.mmioPa;
      if (pa % size !== 0) return this.fault(Cause.STORE_ACCESS, va);
      const ok = size === 8
        ? this.bus.store(pa, 4, lo) && this.bus.store(pa + 4, 4, hi)
        : this.bus.store(pa, size as 1 | 2 | 4, size === 4 ? lo : lo & ((1 << (8 * size)) - 1));
      if (!ok) return this.fault(Cause.STORE_ACCESS, va);
      return 1;
    }
    const dv = this.dv;
    switch (size) {
      case 1:
        this.u8[h] = lo;
        break;
      case 2:
        dv.setUint16(h, lo & 0xffff, true);
        break;
      case 4:
        dv.setInt32(h, lo, true);
        break;
      default:
        dv.setInt32(h, lo, true);
        dv.setInt32(h + 4, hi, true);
    }
    return 0;
  }
}

/** Device window of the warm-up machine: loads read 0, stores are accepted. */
const WARMUP_MMIO = 0x1000_0000;
/** Set once the interpreter has been warmed up in this process (or worker). */
let warmedUp = false;

/**
 * Runs the warm-up program (warmup_program.ts) on a throwaway hart with its own 32 KiB of
 * memory and no devices, so V8 has seen every interpreter path before it optimizes the loop.
 * Returns the finished hart (tests check that the program ran to its end).
 */
export function warmUpInterpreter(): Hart {
  warmedUp = true;
  const mem = new GuestMemory(WARMUP_RAM);
  for (const [offset, words] of WARMUP_IMAGE) mem.u32.set(words, (RAM_OFFSET + offset) >> 2);
  const hart = new Hart({
    mem,
    hartId: 0,
    bus: {
      load: (pa, size) => pa >= WARMUP_MMIO && pa + size <= WARMUP_MMIO + 4096 ? 0 : -1,
      store: (pa, size) => pa >= WARMUP_MMIO && pa + size <= WARMUP_MMIO + 4096,
    },
    clock: { now: () => 0 },
  });
  hart.run(100_000);
  return hart;
}
