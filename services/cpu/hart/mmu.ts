/**
 * Address translation: Sv39/Sv48 page walks (A/D bits updated by hardware, as QEMU does),
 * PMP checks, and the TLB in the hart's state record (fill, flush, per-page flush). Bare
 * mode uses the same TLB with the identity mapping, so PMP results are cached too; pages
 * that PMP splits are never cached.
 */
import { Cause, Csr, Mstatus } from "./csr_numbers.ts";
import { Pmp } from "./pmp.ts";
import { Triggers } from "./sdtrig.ts";
import {
  csrWord,
  HartLayout,
  HartRecordViews,
  hiOf,
  i64Of,
  loOf,
  TLB_EMPTY,
  TLB_ENTRY_WORDS,
  TLB_MMIO,
  TLB_SETS,
  TLB_SIZE,
} from "./state.ts";
import { hostOffset } from "../guest_memory.ts";

/** Words of one TLB set. */
export const TLB_SET_WORDS = TLB_SIZE * TLB_ENTRY_WORDS;
/** Mask that turns `va_lo >>> 10` into the word index of its entry inside a set. */
export const TLB_INDEX_MASK = (TLB_SIZE - 1) * TLB_ENTRY_WORDS;
/** Physical address width (Sv39/Sv48 PPN: 44 bits). */
const PA_LIMIT = 2 ** 56;
const DRAM_BASE = 0x8000_0000;
/** Page-fault and access-fault causes indexed by access kind (load, store, fetch). */
export const PAGE_FAULT = [Cause.LOAD_PAGE, Cause.STORE_PAGE, Cause.FETCH_PAGE];
export const ACCESS_FAULT = [Cause.LOAD_ACCESS, Cause.STORE_ACCESS, Cause.FETCH_ACCESS];
const SATP = csrWord(Csr.SATP);

/** The hart's MMU layer: translation state derived from satp/mstatus/priv, and the TLB. */
export abstract class HartMmu extends HartRecordViews {
  /**
   * True when harts on other threads share this memory (`--smp-threads`): LR/SC and AMOs on
   * DRAM then use Atomics (exec_amo.ts), FENCE is a real barrier, and 8-byte accesses on the
   * slow paths (PTE reads, TLB misses, FLD/FSD) are one access, never torn.
   */
  sharedAtomics = false;
  /** PMP registers (views into the record) with their decoded ranges. */
  readonly pmp: Pmp = new Pmp(
    this.u8.subarray(this.base + HartLayout.PMPCFG, this.base + HartLayout.PMPCFG + 16),
    this.i32.subarray(
      (this.base + HartLayout.PMPADDR) >> 2,
      ((this.base + HartLayout.PMPADDR) >> 2) + 32,
    ),
  );

  /** Sdtrig trigger registers (in the record) and their match table. */
  readonly triggers: Triggers = new Triggers(this.st);

  // Derived from satp, mstatus and priv (recomputed by satpChanged/updateMmuMode).
  satpMode = 0;
  satpRoot = 0;
  /** Privilege of data accesses (MPRV applied). */
  effPriv = 3;
  /** Word index in `tlb` of the set for fetches, loads and stores in the current mode. */
  fetchSet = 0;
  loadSet = 0;
  storeSet = 0;
  /** Level of the leaf found by the last successful walk (0 = 4 KiB page). */
  walkLevel = 0;
  /** Physical address of the last MMIO translation. */
  mmioPa = 0;
  /**
   * False while a debug trigger is armed: the pages it watches are then never cached (their
   * accesses take the slow paths, which check triggers); other pages are.
   */
  tlbFillAllowed = true;

  /** Records a fault for the caller; returns the FAULT status of loadSlow/storeSlow (2). */
  fault(cause: number, tval: number): number {
    this.excCause = cause;
    this.excTval = tval;
    return 2;
  }

  /** Recomputes the walk parameters after a satp write (and flushes the TLB). */
  satpChanged(): void {
    const hi = this.st[SATP + 1], lo = this.st[SATP];
    this.satpMode = hi >>> 28;
    this.satpRoot = ((hi & 0xfff) * 4294967296 + (lo >>> 0)) * 4096;
    this.flushTlb();
    this.updateMmuMode();
  }

  /**
   * Drops the store entries that map DRAM page `page` (the translator is about to make code
   * from it, and stores to code pages must take the slow path).
   */
  evictStorePage(page: number): void {
    const host = hostOffset(DRAM_BASE + page * 4096), tlb = this.tlb;
    for (let mode = 0; mode < 4; mode++) {
      const set = (mode * 3 + 1) * TLB_SET_WORDS;
      for (let e = set; e < set + TLB_SET_WORDS; e += TLB_ENTRY_WORDS) {
        if (tlb[e + 2] === host && (tlb[e] & TLB_MMIO) === 0) tlb.fill(TLB_EMPTY, e, e + 4);
      }
    }
  }

  /**
   * Called after every TLB flush, with the virtual address for a flush by page (the
   * translator's jump cache is keyed by virtual pc).
   */
  onTlbFlush: ((va?: number) => void) | undefined = undefined;

  /** Forgets all cached translations. */
  flushTlb(): void {
    this.tlb.fill(TLB_EMPTY);
    this.onTlbFlush?.();
    this.superRange[0] = Infinity;
    this.superRange[1] = -Infinity;
  }

  /** True when a flush by address at `va` must flush everything (a superpage covers it). */
  inSuperpage(va: number): boolean {
    return va >= this.superRange[0] && va < this.superRange[1];
  }

  /** Forgets cached translations of the 4 KiB page holding `va` (all modes and kinds). */
  flushTlbPage(va: number): void {
    const vlo = loOf(va), vhi = hiOf(va), page = vlo & ~0xfff;
    const tlb = this.tlb;
    const idx = (vlo >>> 10) & TLB_INDEX_MASK;
    for (let s = 0; s < TLB_SETS; s++) {
      const e = s * TLB_SET_WORDS + idx;
      if (tlb[e + 1] === vhi && (tlb[e] & ~TLB_MMIO) === page) tlb.fill(TLB_EMPTY, e, e + 4);
    }
    this.onTlbFlush?.(va);
  }

  /** Picks the TLB sets for the current privilege, MPRV and SUM. */
  updateMmuMode(): void {
    const ms = this.mstatus;
    const priv = this.privv;
    const eff = priv === 3 && (ms & Mstatus.MPRV) ? (ms >> 11) & 3 : priv;
    this.effPriv = eff;
    const sum = (ms & Mstatus.SUM) !== 0;
    const fm = priv === 3 ? 3 : priv;
    const lm = eff === 3 ? 3 : eff === 0 ? 0 : sum ? 2 : 1;
    this.fetchSet = (fm * 3 + 2) * TLB_SET_WORDS;
    this.loadSet = (lm * 3) * TLB_SET_WORDS;
    this.storeSet = (lm * 3 + 1) * TLB_SET_WORDS;
  }

  /**
   * Translates `va` for an access of `size` bytes (access: 0 load, 1 store, 2 fetch) and
   * checks PMP. Returns the host byte offset for DRAM, -1 for MMIO (address in mmioPa), or
   * -2 after recording a fault. Fills the TLB for cacheable pages.
   */
  translate(va: number, access: number, size: number): number {
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
    const idx = set + ((loOf(vpage) >>> 10) & TLB_INDEX_MASK);
    const cacheable = (this.tlbFillAllowed || !this.triggers.touchesPage(vpage)) &&
      this.pmp.checkPage(ppage, access, eff) === 1;
    if (cacheable && this.walkLevel !== 0) {
      const span = 4096 * 512 ** this.walkLevel;
      const base = Math.floor(va / span) * span;
      if (base < this.superRange[0]) this.superRange[0] = base;
      if (base + span > this.superRange[1]) this.superRange[1] = base + span;
    }
    const tlb = this.tlb;
    if (pa >= DRAM_BASE && pa + size <= this.ramEnd) {
      const host = hostOffset(pa);
      // A store to a page with translated code: never cached, and the code is dropped first.
      const code = access === 1 && this.mem.codeWrite(pa);
      if (cacheable && !code) {
        tlb[idx] = loOf(vpage);
        tlb[idx + 1] = hiOf(vpage);
        tlb[idx + 2] = host - po;
        tlb[idx + 3] = 0;
      }
      return host;
    }
    if (cacheable && access !== 2) {
      tlb[idx] = loOf(vpage) | TLB_MMIO;
      tlb[idx + 1] = hiOf(vpage);
      tlb[idx + 2] = loOf(ppage);
      tlb[idx + 3] = hiOf(ppage);
    }
    this.mmioPa = pa;
    return -1;
  }

  /**
   * TLB lookup for a data access: the host offset for a cached DRAM page, -1 for a cached
   * MMIO page (address in mmioPa), or -3 on a miss.
   */
  tlbLookup(va: number, set: number): number {
    const vlo = loOf(va), page = vlo & ~0xfff;
    const e = set + ((vlo >>> 10) & TLB_INDEX_MASK);
    const tlb = this.tlb;
    if (tlb[e + 1] === hiOf(va)) {
      if (tlb[e] === page) return tlb[e + 2] + (vlo & 0xfff);
      if (tlb[e] === (page | TLB_MMIO)) {
        this.mmioPa = i64Of(tlb[e + 2], tlb[e + 3]) + (vlo & 0xfff);
        return -1;
      }
    }
    return -3;
  }

  /** A PTE read as one 8-byte bit copy (`sharedAtomics`), and its halves. */
  private readonly pte = new Float64Array(1);
  private readonly pteHalves = new Int32Array(this.pte.buffer);

  /** Sv39/Sv48 page walk; returns the physical address or -1 after recording a fault. */
  walk(va: number, access: number, eff: number): number {
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
      const idx = hostOffset(pteAddr) >> 2;
      let lo: number, hi: number;
      if (this.sharedAtomics) {
        // Another hart may be writing the PTE: one 8-byte read, never half of each.
        this.pte[0] = this.mem.f64[idx >> 1];
        lo = this.pteHalves[0];
        hi = this.pteHalves[1];
      } else {
        lo = r[idx];
        hi = r[idx + 1];
      }
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
      // Hardware A/D update, atomic on the low word and only if the PTE is still the one
      // checked (Svadu; QEMU compare-exchanges too): else walk this level again.
      const need = access === 1 ? 0xc0 : 0x40;
      if ((lo & need) !== need) {
        if (Atomics.compareExchange(r, idx, lo, lo | need) !== lo) {
          i++;
          continue;
        }
        this.mem.codeWrite(pteAddr);
      }
      this.walkLevel = i;
      return (ppn + Math.floor(w / 4096) % span) * 4096 + (w % 4096);
    }
    return this.fault(PAGE_FAULT[access], va) - 3;
  }
}
