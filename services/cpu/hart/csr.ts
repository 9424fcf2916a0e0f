/**
 * The CSR file: which CSRs exist, who may access them (privilege, FS, counter enables, TVM,
 * Sstc), what reads return (views such as sstatus/sie/sip, counters derived from instret,
 * mip from the devices' word, the software bits and the Sstc comparator) and what writes
 * keep (WARL masks, side effects on the MMU and the TLB).
 */
import { Csr, MISA_HI, MISA_LO, Mstatus } from "./csr_numbers.ts";
import { HartMemoryAccess } from "./memory_access.ts";
import { CSR_WORD, csrWord, hiOf, i64Of, loOf, u64Of } from "./state.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import type { GuestMemory } from "../guest_memory.ts";

const TWO32 = 4294967296;
/** Instructions between clock reads for the Sstc comparator while running. */
const TIME_CHECK = 4096;

export const SSIP = 1 << 1, MSIP = 1 << 3, STIP = 1 << 5, MTIP = 1 << 7;
export const SEIP = 1 << 9, MEIP = 1 << 11;
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

// Record words of the plain CSRs (low word; high word at +1).
export const W_STVEC = csrWord(Csr.STVEC), W_SCOUNTEREN = csrWord(Csr.SCOUNTEREN);
export const W_SEPC = csrWord(Csr.SEPC), W_SCAUSE = csrWord(Csr.SCAUSE);
export const W_STVAL = csrWord(Csr.STVAL), W_STIMECMP = csrWord(Csr.STIMECMP);
export const W_SATP = csrWord(Csr.SATP), W_MEDELEG = csrWord(Csr.MEDELEG);
export const W_MIDELEG = csrWord(Csr.MIDELEG), W_MIE = csrWord(Csr.MIE);
export const W_MTVEC = csrWord(Csr.MTVEC), W_MCOUNTEREN = csrWord(Csr.MCOUNTEREN);
export const W_MENVCFG = csrWord(Csr.MENVCFG), W_MCOUNTINHIBIT = csrWord(Csr.MCOUNTINHIBIT);
export const W_MEPC = csrWord(Csr.MEPC), W_MCAUSE = csrWord(Csr.MCAUSE);
export const W_MTVAL = csrWord(Csr.MTVAL), W_SENVCFG = csrWord(Csr.SENVCFG);

/** The CSR layer. */
export abstract class HartCsrFile extends HartMemoryAccess {
  readonly clock: VmClock;
  /** Sstc STIP as last computed, and the instret at that time (derived, not saved). */
  sstcStip = 0;
  timeCheckedAt = -Infinity;

  constructor(mem: GuestMemory, hartId: number, bus: PhysicalBus, clock: VmClock) {
    super(mem, hartId, bus);
    this.clock = clock;
  }

  /** True when Sstc's stimecmp drives STIP (menvcfg.STCE). */
  sstcEnabled(): boolean {
    return (this.st[W_MENVCFG + 1] & 0x80000000) !== 0;
  }

  /** stimecmp as a double. */
  stimecmp(): number {
    return u64Of(this.st[W_STIMECMP], this.st[W_STIMECMP + 1]);
  }

  /** Current mip: software bits, device lines and the Sstc comparator. */
  readMip(cachedTime = false): number {
    let v = (Atomics.load(this.i32, this.mipIdx) & EXTERNAL_MASK) | this.mipSw;
    if (this.sstcEnabled()) {
      // Between chunks the clock is read at most every TIME_CHECK instructions.
      if (!cachedTime || this.instret - this.timeCheckedAt >= TIME_CHECK) {
        this.sstcStip = this.clock.now() >= this.stimecmp() ? STIP : 0;
        this.timeCheckedAt = this.instret;
      }
      v = (v & ~STIP) | this.sstcStip;
    }
    return v;
  }

  /** Extra access rules beyond the number encoding (FS, counter enables, TVM, Sstc). */
  csrAllowed(n: number): boolean {
    const priv = this.privv;
    const st = this.st;
    if (n <= 3) return (this.mstatus & Mstatus.FS) !== 0;
    if (n >= Csr.CYCLE && n <= 0xc1f && priv < 3) {
      const bit = 1 << (n - Csr.CYCLE);
      if ((st[W_MCOUNTEREN] & bit) === 0) return false;
      if (priv === 0 && (st[W_SCOUNTEREN] & bit) === 0) return false;
      return true;
    }
    if (n === Csr.SATP && priv === 1 && (this.mstatus & Mstatus.TVM)) return false;
    if (n === Csr.STIMECMP && priv < 3) {
      if ((st[W_MCOUNTEREN] & 2) === 0) return false;
      if (!this.sstcEnabled()) return false;
    }
    return true;
  }

  /** mcycle (which 0) or minstret (which 2) as a double. */
  counterRead(which: 0 | 2): number {
    const inhibit = this.st[W_MCOUNTINHIBIT];
    if (which === 0) return inhibit & 1 ? this.frozenCycle : this.instret + this.cycleDelta;
    return inhibit & 4 ? this.frozenInstret : this.instret + this.instretDelta;
  }

  /** Reads CSR `n` into tmpLo/tmpHi; false when it does not exist. */
  csrRead(n: number): boolean {
    let lo = 0, hi = 0;
    const st = this.st;
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
        lo = st[W_MIE] & st[W_MIDELEG];
        break;
      case Csr.SIP:
        lo = this.readMip() & st[W_MIDELEG];
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
      default: {
        const w = n < 4096 ? CSR_WORD[n] : -1;
        if (w >= 0) {
          lo = st[w];
          hi = st[w + 1];
        } else if (n >= Csr.PMPCFG0 && n < Csr.PMPCFG0 + 16) {
          if (n & 1) return false;
          lo = this.pmp.readCfg(n - Csr.PMPCFG0, false);
          hi = this.pmp.readCfg(n - Csr.PMPCFG0, true);
        } else if (n >= Csr.PMPADDR0 && n < Csr.PMPADDR0 + 64) {
          const i = n - Csr.PMPADDR0;
          if (i < 16) {
            lo = this.pmp.addr[2 * i];
            hi = this.pmp.addr[2 * i + 1];
          }
        } else if (this.triggers.read(n)) {
          lo = this.triggers.lo;
          hi = this.triggers.hi;
        } else if (
          !((n >= 0xc03 && n <= 0xc1f) || (n >= 0xb03 && n <= 0xb1f) || (n >= 0x323 && n <= 0x33f))
        ) {
          return false;
        }
      }
    }
    this.tmpLo = lo | 0;
    this.tmpHi = hi | 0;
    return true;
  }

  /** Writes CSR `n` (existence and permission already checked). */
  csrWrite(n: number, lo: number, hi: number): void {
    const st = this.st;
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
        const m = st[W_MIDELEG] & MIDELEG_MASK;
        st[W_MIE] = (st[W_MIE] & ~m) | (lo & m);
        return;
      }
      case Csr.SIP: {
        const m = st[W_MIDELEG] & SSIP;
        this.mipSw = (this.mipSw & ~m) | (lo & m);
        return;
      }
      case Csr.MIE:
        st[W_MIE] = lo & MIE_MASK;
        return;
      case Csr.MIP: {
        const m = SSIP | SEIP | (this.sstcEnabled() ? 0 : STIP);
        this.mipSw = (this.mipSw & ~m) | (lo & m);
        return;
      }
      case Csr.MEDELEG:
        st[W_MEDELEG] = lo & MEDELEG_MASK;
        return;
      case Csr.MIDELEG:
        st[W_MIDELEG] = lo & MIDELEG_MASK;
        return;
      case Csr.MTVEC:
      case Csr.STVEC: {
        if ((lo & 3) >= 2) return; // reserved modes: keep the old value
        const w = CSR_WORD[n];
        st[w] = lo;
        st[w + 1] = hi;
        return;
      }
      case Csr.MEPC:
      case Csr.SEPC: {
        const w = CSR_WORD[n];
        st[w] = lo & ~1;
        st[w + 1] = hi;
        return;
      }
      case Csr.MCOUNTEREN:
      case Csr.SCOUNTEREN:
        st[CSR_WORD[n]] = lo;
        return;
      case Csr.MENVCFG:
        this.timeCheckedAt = -Infinity;
        st[W_MENVCFG] = lo & 1;
        st[W_MENVCFG + 1] = hi & (0x80000000 | 0);
        return;
      case Csr.SENVCFG:
        st[W_SENVCFG] = lo & 1;
        return;
      case Csr.SATP: {
        const mode = hi >>> 28;
        if (mode !== 0 && mode !== 8 && mode !== 9) return;
        st[W_SATP] = lo;
        st[W_SATP + 1] = hi;
        this.satpChanged();
        return;
      }
      case Csr.MCOUNTINHIBIT: {
        const old = st[W_MCOUNTINHIBIT];
        const v = lo & 5;
        if ((v & 1) && !(old & 1)) this.frozenCycle = this.instret + this.cycleDelta;
        if (!(v & 1) && (old & 1)) this.cycleDelta = this.frozenCycle - this.instret;
        if ((v & 4) && !(old & 4)) this.frozenInstret = this.instret + this.instretDelta;
        if (!(v & 4) && (old & 4)) this.instretDelta = this.frozenInstret - this.instret;
        st[W_MCOUNTINHIBIT] = v;
        return;
      }
      case Csr.MCYCLE:
      case Csr.MINSTRET: {
        // The written value is what the next instruction sees.
        const v = (hi >>> 0) * TWO32 + (lo >>> 0);
        const cyc = n === Csr.MCYCLE;
        const inhibited = st[W_MCOUNTINHIBIT] & (cyc ? 1 : 4);
        if (cyc) {
          if (inhibited) this.frozenCycle = v;
          else this.cycleDelta = v - (this.instret + 1);
        } else {
          if (inhibited) this.frozenInstret = v;
          else this.instretDelta = v - (this.instret + 1);
        }
        return;
      }
      default: {
        const w = n < 4096 ? CSR_WORD[n] : -1;
        if (w >= 0) {
          if (n === Csr.STIMECMP) this.timeCheckedAt = -Infinity;
          st[w] = lo;
          st[w + 1] = hi;
        } else if (n >= Csr.PMPCFG0 && n < Csr.PMPCFG0 + 16) {
          this.pmp.writeCfg(n - Csr.PMPCFG0, lo, hi);
          this.flushTlb();
        } else if (n >= Csr.PMPADDR0 && n < Csr.PMPADDR0 + 16) {
          this.pmp.writeAddr(n - Csr.PMPADDR0, lo, hi);
          this.flushTlb();
        } else if (this.triggers.write(n, lo, hi)) this.triggersChanged();
        // Other counters/events and misa: read-only zero / WARL, writes ignored.
      }
    }
  }

  /** Writes mstatus (MPP=2 is reserved: kept), flushing the TLB when MXR changes. */
  setMstatus(v: number): void {
    if (((v >> 11) & 3) === 2) v = (v & ~Mstatus.MPP) | (this.mstatus & Mstatus.MPP);
    const changed = v ^ this.mstatus;
    this.mstatus = v;
    if (changed & Mstatus.MXR) this.flushTlb();
    this.updateMmuMode();
  }

  /** The target address in xtvec word `w` for `cause` (vectored for interrupts). */
  trapVector(w: number, cause: number, interrupt: boolean): number {
    const lo = this.st[w], hi = this.st[w + 1];
    let target = i64Of(lo & ~3, hi);
    if ((lo & 3) === 1 && interrupt) target += 4 * cause;
    return target;
  }
}
