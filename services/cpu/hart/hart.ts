/**
 * The RV64GC hart: RV64IMAFDC + Zicsr + Zifencei + Zicntr + Sstc + Sdtrig, privileged spec
 * 1.12 (M/S/U), Sv39/Sv48 with a TLB, and PMP, behind the `ExecutionEngine` interface. This file
 * holds the interpreter loop (one hot function with its state in locals) and the public API;
 * the layers it stands on are one concept each:
 *
 * - state.ts: the state record in the shared memory (layout and typed views)
 * - mmu.ts: Sv39/Sv48 walks, PMP checks, the TLB
 * - memory_access.ts: fetch/load/store slow paths and MMIO
 * - csr.ts: the CSR file; trap.ts: traps and interrupts; sdtrig.ts: debug triggers
 * - exec_system.ts, exec_amo.ts, exec_fp.ts (+ fpu.ts), exec_muldiv.ts: instruction groups
 *
 * Representation (no BigInt, no allocation on the hot path): x/f registers are little-endian
 * lo/hi int32 pairs in the record; the pc is a JS double holding the signed 64-bit value
 * (every address a guest can use without faulting is exact in a double).
 *
 * Choices where the spec leaves room: A/D bits are updated by hardware during the walk (as
 * QEMU does); misaligned loads/stores to DRAM are performed (byte-wise), only LR/SC/AMO raise
 * address-misaligned; misaligned MMIO accesses are split as QEMU does; `mtval` for EBREAK is the
 * pc; WFI in U-mode (or in S-mode with mstatus.TW) is illegal at once.
 */
import { DRAM_BASE, GuestMemory, hostOffset } from "../guest_memory.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import { type EngineSnapshot, type ExecutionEngine, StopReason } from "../engine.ts";
import type { FpState } from "./fpu.ts";
import { compressedTable } from "./rvc.ts";
import { createWideArith, type WideArith } from "./wide_arith.ts";
import { Cause } from "./csr_numbers.ts";
import { W_MIE } from "./csr.ts";
import { TLB_INDEX_MASK } from "./mmu.ts";
import { HartTraps } from "./trap.ts";
import { execSystem } from "./exec_system.ts";
import { execAmo } from "./exec_amo.ts";
import { execFp } from "./exec_fp.ts";
import { execMulDiv } from "./exec_muldiv.ts";
import {
  HartLayout,
  type HartSnapshot,
  hiOf,
  i64Of,
  JUMP_CACHE_ENTRIES,
  loOf,
  SAVED_BYTES,
  STATE_VERSION,
  Word,
} from "./state.ts";
import { WARMUP_IMAGE, WARMUP_RAM } from "./warmup_program.ts";
import { jumpCacheOffset } from "../engine/jit/emit.ts";
import { hotIndex, modeKey, Translator, type TranslatorOptions } from "../engine/jit/translator.ts";

/** Constructor arguments of a hart (stable contract with the machine). */
export interface HartOptions {
  mem: GuestMemory;
  hartId: number;
  bus: PhysicalBus;
  clock: VmClock;
  /** "jit": hot regions are translated to WebAssembly; "interp" (default): interpreter only. */
  engine?: EngineKind;
  /** Tuning of the translator (engine "jit"). */
  translator?: TranslatorOptions;
  /** Harts on other threads share the memory (a hart Worker): see `sharedAtomics`. */
  sharedAtomics?: boolean;
}

/** Execution engines a hart offers. */
export type EngineKind = "interp" | "jit";

const TWO32 = 4294967296;
/** 2^-32: multiplying by it is exact and cheaper than dividing by 2^32. */
const INV_TWO32 = 1 / TWO32;
/** Instructions between interrupt / exit-request checks in the interpreter. */
const CHUNK = 4096;
/**
 * The same for translated code, whose every return to TypeScript stores and reloads the
 * registers (4096 made the CPU benchmark leave wasm 47k times): 65536 translated instructions
 * are 50-100 µs, still far below a timer tick.
 */
const JIT_CHUNK = 65536;
/** With harts on other threads, whose IPIs are seen at these checks (a shorter wait). */
const JIT_CHUNK_SHARED = 4096;
/** Hot counters of a hart without translator (never read). */
const NO_COUNTS = new Uint16Array(1);
/** Jump cache index mask (see `jumpCacheOffset`; entries are 4 words). */
const JC_MASK = JUMP_CACHE_ENTRIES - 1;
/** Interpreted instructions after a jump target that count as one more entry of it. */
const SEGMENT_UNIT = 32;

/**
 * At a taken jump in the interpreter beside the translator: true when the target (pc low word
 * `tl`) has a region of mode `mode` in the jump cache (word index `jc`) or has just become hot;
 * otherwise counts the entry.
 */
function jitStopsAt(
  r: Int32Array,
  jc: number,
  mode: number,
  hot: Uint16Array,
  limit: number,
  tl: number,
  prevHx: number,
  prevLen: number,
): boolean {
  // The code since the last jump target ran `prevLen` instructions: long straight-line code
  // weighs more than one entry (a 2000-instruction unrolled loop body is hot after a few runs).
  if (prevLen >= SEGMENT_UNIT) {
    const w = hot[prevHx] + Math.floor(prevLen / SEGMENT_UNIT);
    hot[prevHx] = w > 0xffff ? 0xffff : w;
  }
  const j = jc + (jumpCacheOffset(tl, JC_MASK) >> 2);
  const hx = hotIndex(tl), c = hot[hx];
  if ((r[j] === tl && r[j + 3] === mode) || c >= limit) return true;
  hot[hx] = c + 1;
  return false;
}

/**
 * One RISC-V hart: an interpreter behind the `ExecutionEngine` interface.
 *
 * @example
 * ```ts
 * const mem = new GuestMemory(4 << 20);
 * const hart = new Hart({ mem, hartId: 0, bus, clock });
 * hart.reset(0x8000_0000);
 * hart.run(100_000);
 * const snap = hart.save(); // a copy of the state record
 * ```
 */
export class Hart extends HartTraps implements ExecutionEngine, FpState {
  /** Called on FENCE.I (the translator needs no hook: writes to code pages drop its code). */
  onFenceI: (() => void) | undefined = undefined;
  /** The translator (engine "jit"), undefined for the interpreter alone. */
  readonly translator: Translator | undefined;

  private readonly wide: WideArith;
  private readonly ctab: Int32Array;

  /** MMIO accesses so far (the translator's helper leaves translated code after one). */
  readonly #mmio: { accesses: number };

  constructor(opts: HartOptions) {
    const mmio = { accesses: 0 };
    const bus: PhysicalBus = opts.engine !== "jit" ? opts.bus : {
      load: (pa, size) => (mmio.accesses++, opts.bus.load(pa, size)),
      store: (pa, size, v) => (mmio.accesses++, opts.bus.store(pa, size, v)),
    };
    super(opts.mem, opts.hartId, bus, opts.clock);
    this.#mmio = mmio;
    opts.mem.addStoreEvictor(opts.hartId, (page) => this.evictStorePage(page));
    this.wide = createWideArith(opts.mem.memory);
    this.ctab = compressedTable();
    this.sharedAtomics = opts.sharedAtomics ?? false;
    if (opts.engine === "jit") {
      const t = new Translator(this, opts.translator);
      this.translator = t;
      this.onTlbFlush = (va) => va === undefined ? t.flushJumpCache() : t.flushJumpCachePage(va);
    }
    this.reset(DRAM_BASE);
    if (!warmedUp && warmUpWanted()) {
      warmedUp = true;
      warmUpInterpreter();
    }
    if (opts.engine === "jit" && !warmedUpJit && warmUpWanted()) {
      // The interpreter's jump-stopping paths and the translator, before V8 optimizes them.
      warmedUpJit = true;
      warmUpInterpreter("jit");
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

  /** Resets to M-mode at `pc` with architectural reset values (the TLB flushed). */
  reset(pc: number): void {
    const st = this.st;
    // Everything but the device-driven MIP word and the EXIT_REQUEST control word.
    st.fill(0, 0, Word.MIP);
    st.fill(0, Word.EXIT_REQUEST + 1);
    this.privv = 3;
    this.pcv = pc;
    this.instret = 0;
    this.flushCounters();
    this.timeCheckedAt = -Infinity;
    this.idle = false;
    this.pmp.decode();
    this.triggers.reset();
    this.triggersChanged();
    this.satpChanged();
  }

  /**
   * The translator's helper: interprets the one instruction at the record's pc and leaves the
   * record's pc where the hart goes on. Returns 0 when translated code may continue after it,
   * 1 when it must return (trap, mode change, MMIO access, WFI, exit request).
   */
  jitStep(): number {
    const st = this.st;
    this.pcv = i64Of(st[Word.PC], st[Word.PC + 1]);
    const traps = this.traps, mmio = this.#mmio.accesses;
    const fs = this.fetchSet, ls = this.loadSet, ss = this.storeSet;
    this.exec(1);
    st[Word.PC] = loOf(this.pcv);
    st[Word.PC + 1] = hiOf(this.pcv);
    // An interrupt pending now was enabled by this instruction (a CSR write): it is taken
    // before the next one, at the run loop's check.
    return this.traps !== traps || this.#mmio.accesses !== mmio || this.fetchSet !== fs ||
        this.loadSet !== ls || this.storeSet !== ss || this.idle ||
        Atomics.load(this.i32, this.exitIdx) !== 0 || this.pendingInterrupt(true) >= 0
      ? 1
      : 0;
  }

  /** Drops the LR reservation (another hart may have stored to its granule meanwhile). */
  clearReservation(): void {
    this.resValid = false;
  }

  /** Makes a running `run()` return soon (callable from any thread: an Atomics store). */
  kick(): void {
    Atomics.store(this.i32, this.exitIdx, 1);
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
    this.flushCounters();
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
    return (this.readMip() & this.st[W_MIE]) !== 0;
  }

  /** mtime value at which the Sstc timer fires (Infinity when not armed by Sstc). */
  nextDeadline(): number {
    return this.sstcEnabled() ? this.stimecmp() : Infinity;
  }

  /** Budget units the last `run()` used: one per instruction attempted (trapped ones too). */
  ran = 0;
  /** The last `exec` stopped only at its limit (no trap, CSR write, MMIO access or WFI). */
  private execFull = false;
  /** Units left in the interrupt-check chunk the last `run()` stopped inside (0: at a check). */
  #chunkLeft = 0;
  /**
   * Instructions the interpreter's current `exec` (as an unsplit run makes it) has done, across
   * resumed runs: a trap on its first instruction costs a budget unit, a trap after some costs
   * none (exec reports only the instructions done), so a split run must know which it is.
   */
  #execDone = 0;

  /**
   * Executes up to `budget` instructions. With `resume`, the run goes on where the last one
   * stopped as if the two were one call: no interrupt check unless the last one ended at a
   * check point, and the same chunk boundaries (exact on the interpreter). A debugger that
   * stops a deterministic replay inside a batch splits it this way without changing when
   * interrupts are taken.
   */
  run(budget: number, resume = false): StopReason {
    const i32 = this.i32;
    let left = budget;
    let reason = StopReason.Budget;
    let check = !resume || this.#chunkLeft <= 0;
    if (check) this.#execDone = 0;
    while (left > 0) {
      if (Atomics.load(i32, this.exitIdx) !== 0) {
        reason = StopReason.Halted;
        break;
      }
      if (check) {
        const irq = this.pendingInterrupt(left !== budget || resume);
        if (irq >= 0) this.takeTrap(irq, true, 0);
        this.#chunkLeft = CHUNK;
      }
      check = true;
      const jit = this.translator;
      if (jit !== undefined) {
        // Translated code where there is some; else the interpreter up to the next jump,
        // where the next entry point is looked up.
        const most = this.sharedAtomics ? JIT_CHUNK_SHARED : JIT_CHUNK;
        const n = jit.enter(left < most ? left : most);
        if (this.idle) {
          // WFI ran as a helper inside translated code.
          this.idle = false;
          reason = StopReason.Idle;
          break;
        }
        if (n > 0) {
          left -= n;
          if (!jit.slowExit || left <= 0) continue;
        }
      }
      const lim = left < this.#chunkLeft ? left : this.#chunkLeft;
      const done = this.exec(lim);
      left -= done > 0 ? done : this.#execDone > 0 ? 0 : 1;
      // Stopped by the budget inside a chunk: a resumed run finishes that chunk first.
      const mid = this.execFull && lim < this.#chunkLeft;
      this.#chunkLeft = mid ? this.#chunkLeft - lim : 0;
      this.#execDone = mid ? this.#execDone + done : 0;
      if (this.idle) {
        this.idle = false;
        reason = StopReason.Idle;
        break;
      }
    }
    if (reason === StopReason.Budget && Atomics.load(i32, this.exitIdx) !== 0) {
      reason = StopReason.Halted;
    }
    this.ran = budget - left;
    // Regions that became hot in this run start compiling now (async: while devices run).
    this.translator?.compileQueued();
    this.flushCounters();
    return reason;
  }

  /**
   * A copy of the state record's architectural bytes (everything but the TLB, a cache).
   * Valid between `run()` calls.
   */
  save(): HartSnapshot {
    this.flushCounters();
    const bytes = this.u8.slice(this.base, this.base + SAVED_BYTES);
    new DataView(bytes.buffer).setInt32(HartLayout.EXIT_REQUEST, 0, true);
    return { kind: "rv64-hart", version: STATE_VERSION, bytes };
  }

  /** Restores what `save()` produced (on this or another hart); the TLB starts empty. */
  load(s: EngineSnapshot): void {
    if (s?.kind !== "rv64-hart" || s.version !== STATE_VERSION) {
      throw new RangeError(
        `not a hart state of version ${STATE_VERSION} (got ${s?.kind} v${s?.version})`,
      );
    }
    if (!(s.bytes instanceof Uint8Array) || s.bytes.length !== SAVED_BYTES) {
      throw new RangeError(`hart state must be ${SAVED_BYTES} bytes`);
    }
    const exit = Atomics.load(this.i32, this.exitIdx);
    this.u8.set(s.bytes, this.base);
    Atomics.store(this.i32, this.exitIdx, exit);
    this.i32[this.xBase] = 0;
    this.i32[this.xBase + 1] = 0;
    this.reloadCounters();
    this.timeCheckedAt = -Infinity;
    this.idle = false;
    this.pmp.decode();
    this.triggers.decode();
    this.triggersChanged();
    this.satpChanged();
  }

  // ---------------------------------------------------------------------------------------
  // The hot loop.

  /**
   * Executes up to `limit` instructions; returns how many were attempted. With a translator,
   * it also returns after a taken branch or jump to code that has a region or became hot.
   */
  private exec(limit: number): number {
    const r = this.i32, u8 = this.u8, u16 = this.u16;
    // `| 0` makes these untagged int32 in optimized code (no Smi checks in the loop).
    const xb = this.xBase | 0, lim = limit | 0;
    const tlb = this.tlb, ctab = this.ctab;
    const fetchSet = this.fetchSet | 0, ldSet = this.loadSet | 0, stSet = this.storeSet | 0;
    const ib = this.instret;
    // With the translator: at a taken jump, leave when the target has a region (jump cache
    // hit) or became hot, so the run loop can enter translated code there.
    const jit = this.translator;
    const hot = jit !== undefined ? jit.hotCounts : NO_COUNTS;
    const hotLimit = jit !== undefined ? jit.threshold : 0;
    const jc = jit !== undefined ? jit.jumpCacheIndex : 0;
    const mode = modeKey(fetchSet, ldSet, stSet);
    // Harts on other threads: 64-bit loads and stores as one 8-byte access (never torn).
    const whole64 = this.sharedAtomics, f64 = this.mem.f64;
    let pc = this.pcv;
    let fpBase = NaN, fpOff = 0;
    let n = 0, attempted = 0;
    // The current straight-line segment: its jump target's hot counter and where it began.
    let segHx = hotIndex(pc | 0), segAt = 0;
    /** Bits of an illegal instruction (the trap's tval). */
    let illBits = 0;
    let exc = -1, excTval = 0, ill = false;
    let full = false;
    loop: while (true) {
      if (n >= lim) {
        full = true;
        break;
      }
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
        if (jit !== undefined && d >= 4096 && d <= 4098 && n > 1) {
          // Fell through into the next page: translated code may start here (straight-line
          // code that crosses pages has no jump where the interpreter would stop).
          const stop = jitStopsAt(r, jc, mode, hot, hotLimit, pc | 0, segHx, n - 1 - segAt);
          segHx = hotIndex(pc | 0);
          segAt = n - 1;
          if (stop) {
            n--;
            break;
          }
        }
        if (!(d >= 0 && d < 4095)) {
          const plo = pc | 0;
          const ti = fetchSet + ((plo >>> 10) & TLB_INDEX_MASK);
          if (tlb[ti] === (plo & ~0xfff) && tlb[ti + 1] === (Math.floor(pc * INV_TWO32) | 0)) {
            const pb = pc - (plo & 0xfff);
            fpBase = pb;
            fpOff = tlb[ti + 2];
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
            execMulDiv(r, this.wide, xb, this.scratchAddr, f3, rd, rs1i, rs2i);
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
          const ti = ldSet + ((alo >>> 10) & TLB_INDEX_MASK);
          let lo: number, hi = 0;
          if (
            tlb[ti] === (alo & ~0xfff) && tlb[ti + 1] === ahi &&
            (alo & ((1 << sz) - 1)) === 0 && f3 !== 7
          ) {
            const h = tlb[ti + 2] + (alo & 0xfff);
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
                if (whole64) {
                  // A bit copy (Float64Array keeps NaN payloads): registers are 8-aligned.
                  if (rd !== 0) f64[(xb + (rd << 1)) >> 1] = f64[h >> 3];
                  pc += ilen;
                  continue;
                }
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
            this.instret = ib + n - 1; // mtime as devices see it: exact, wherever exec began
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
          const ti = stSet + ((alo >>> 10) & TLB_INDEX_MASK);
          if (tlb[ti] === (alo & ~0xfff) && tlb[ti + 1] === ahi && (alo & ((1 << f3) - 1)) === 0) {
            const h = tlb[ti + 2] + (alo & 0xfff);
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
                if (whole64) f64[h >> 3] = f64[rs2i >> 1];
                else {
                  r[h >> 2] = vlo;
                  r[(h >> 2) + 1] = r[rs2i + 1];
                }
            }
            pc += ilen;
            continue;
          }
          this.pcv = pc;
          this.instret = ib + n - 1; // mtime as devices see it: exact, wherever exec began
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
            if (jit !== undefined) {
              const stop = jitStopsAt(r, jc, mode, hot, hotLimit, pc | 0, segHx, n - segAt);
              segHx = hotIndex(pc | 0);
              segAt = n;
              if (stop) break loop;
            }
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
          if (jit !== undefined) {
            const stop = jitStopsAt(r, jc, mode, hot, hotLimit, pc | 0, segHx, n - segAt);
            segHx = hotIndex(pc | 0);
            segAt = n;
            if (stop) break loop;
          }
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
          if (jit !== undefined) {
            const stop = jitStopsAt(r, jc, mode, hot, hotLimit, pc | 0, segHx, n - segAt);
            segHx = hotIndex(pc | 0);
            segAt = n;
            if (stop) break loop;
          }
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
            // Nothing for the translator to do: every write to a page with translated code
            // (stores, DMA) already dropped that code, and the jump cache only names live code.
            if (this.onFenceI) this.onFenceI();
          } else if (f3 === 0) {
            // Harts on other threads: a sequentially consistent access orders this thread's.
            if (this.sharedAtomics) Atomics.add(r, this.exitIdx, 0);
          } else {
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
          const ok = execSystem(this, insn, raw, ilen);
          pc = this.pcv;
          // A CSR read that writes nothing (csrrs/csrrc with rs1 = x0) changes no state: go on.
          if (ok && ((insn >>> 12) & 3) >= 2 && ((insn >>> 15) & 31) === 0) continue;
          if (!ok) n--;
          break loop;
        }
        case 11: { // AMO
          this.pcv = pc;
          this.instret = ib + n - 1; // mtime as devices see it: exact, wherever exec began
          if (!execAmo(this, insn, rd, rs1i, rs2i)) {
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
          this.instret = ib + n - 1; // mtime as devices see it: exact, wherever exec began
          if (!execFp(this, insn, raw, ilen, rd, rs1i)) {
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
    this.execFull = full;
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
}

/** Device window of the warm-up machine: loads read 0, stores are accepted. */
const WARMUP_MMIO = 0x1000_0000;
/** Set once the interpreter has been warmed up in this process (or worker). */
let warmedUp = false;
/** Set once the interpreter has been warmed up with the translator beside it. */
let warmedUpJit = false;

/**
 * False when VMESH_NO_WARMUP is set: cli/boot_bench.ts boots without the warm-up to show what
 * it is worth (measured: Linux boot CPU time 1.64-1.72 s with it, 2.19-2.25 s without).
 */
function warmUpWanted(): boolean {
  try {
    return !Deno.env.get("VMESH_NO_WARMUP");
  } catch {
    return true; // no env permission: the default
  }
}

/**
 * Runs the warm-up program (warmup_program.ts) on a throwaway hart with its own 32 KiB of
 * memory and no devices, so V8 has seen every interpreter path before it optimizes the loop.
 * Returns the finished hart (tests check that the program ran to its end).
 */
export function warmUpInterpreter(engine: EngineKind = "interp"): Hart {
  warmedUp = true;
  if (engine === "jit") warmedUpJit = true;
  const mem = new GuestMemory(WARMUP_RAM);
  for (const [offset, words] of WARMUP_IMAGE) {
    mem.u32.set(words, hostOffset(DRAM_BASE + offset) >> 2);
  }
  const hart = new Hart({
    mem,
    hartId: 0,
    bus: {
      load: (pa, size) => pa >= WARMUP_MMIO && pa + size <= WARMUP_MMIO + 4096 ? 0 : -1,
      store: (pa, size) => pa >= WARMUP_MMIO && pa + size <= WARMUP_MMIO + 4096,
    },
    clock: { now: () => 0 },
    engine,
    // Compiled at once, so the warm-up also runs translated code and the paths into it.
    translator: { threshold: 2, async: false },
  });
  hart.run(100_000);
  return hart;
}
