/**
 * Traps and interrupts: entering M or S (medeleg/mideleg delegation, xepc/xcause/xtval,
 * the mstatus stack, vectored xtvec) and choosing the interrupt to take (priority MEI, MSI,
 * MTI, SEI, SSI, STI; global enables by privilege).
 */
import { Cause, Mstatus } from "./csr_numbers.ts";
import {
  HartCsrFile,
  W_MCAUSE,
  W_MEDELEG,
  W_MEPC,
  W_MIDELEG,
  W_MIE,
  W_MTVAL,
  W_MTVEC,
  W_SCAUSE,
  W_SEPC,
  W_STVAL,
  W_STVEC,
} from "./csr.ts";
import { hiOf, loOf } from "./state.ts";

/** Interrupt priority: MEI, MSI, MTI, SEI, SSI, STI. */
const IRQ_ORDER = [11, 3, 7, 9, 1, 5];

/** The trap layer. */
export abstract class HartTraps extends HartCsrFile {
  /** Traps taken so far (the translator's helper tells a trap from a plain step by it). */
  traps = 0;
  /** The value LR read (lo/hi words): an SC with `sharedAtomics` compare-exchanges it. */
  resLo = 0;
  resHi = 0;
  #big64: BigInt64Array | undefined;
  /** A 64-bit view of the whole memory (for 64-bit Atomics on DRAM). */
  big64(): BigInt64Array {
    return this.#big64 ??= new BigInt64Array(this.i32.buffer);
  }
  /** Raises illegal-instruction with the instruction bits as tval; returns false. */
  illegal(raw: number, ilen: number): boolean {
    return this.trapNow(Cause.ILLEGAL, ilen === 2 ? raw & 0xffff : raw >>> 0);
  }

  /** Takes exception `cause` now; returns false (the instruction did not retire). */
  trapNow(cause: number, tval: number): boolean {
    this.takeTrap(cause, false, tval);
    return false;
  }

  /** Takes the exception recorded by translate/loadSlow/storeSlow; returns false. */
  trapExc(): boolean {
    const c = this.excCause;
    this.excCause = -1;
    return this.trapNow(c, this.excTval);
  }

  /** Enters the trap handler for `cause` with epc = current pc. */
  takeTrap(cause: number, interrupt: boolean, tval: number): void {
    this.traps++;
    const epc = this.pcv;
    const priv = this.privv;
    const st = this.st;
    this.resValid = false;
    const deleg = interrupt ? st[W_MIDELEG] : st[W_MEDELEG];
    const ms = this.mstatus;
    let tvec: number;
    if (priv <= 1 && ((deleg >>> cause) & 1) !== 0) {
      st[W_SCAUSE] = cause;
      st[W_SCAUSE + 1] = interrupt ? 0x80000000 | 0 : 0;
      st[W_SEPC] = loOf(epc);
      st[W_SEPC + 1] = hiOf(epc);
      st[W_STVAL] = loOf(tval);
      st[W_STVAL + 1] = hiOf(tval);
      let v = ms & ~(Mstatus.SPP | Mstatus.SPIE | Mstatus.SIE);
      if (ms & Mstatus.SIE) v |= Mstatus.SPIE;
      if (priv === 1) v |= Mstatus.SPP;
      this.mstatus = v;
      this.privv = 1;
      tvec = W_STVEC;
    } else {
      st[W_MCAUSE] = cause;
      st[W_MCAUSE + 1] = interrupt ? 0x80000000 | 0 : 0;
      st[W_MEPC] = loOf(epc);
      st[W_MEPC + 1] = hiOf(epc);
      st[W_MTVAL] = loOf(tval);
      st[W_MTVAL + 1] = hiOf(tval);
      let v = ms & ~(Mstatus.MPP | Mstatus.MPIE | Mstatus.MIE);
      if (ms & Mstatus.MIE) v |= Mstatus.MPIE;
      v |= priv << 11;
      this.mstatus = v;
      this.privv = 3;
      tvec = W_MTVEC;
    }
    this.pcv = this.trapVector(tvec, cause, interrupt);
    this.updateMmuMode();
  }

  /** The interrupt to take now (cause number) or -1. */
  pendingInterrupt(cachedTime: boolean): number {
    const mie = this.st[W_MIE];
    if (mie === 0) return -1;
    const pend = this.readMip(cachedTime) & mie;
    if (pend === 0) return -1;
    const mideleg = this.st[W_MIDELEG];
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
}
