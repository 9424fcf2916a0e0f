/**
 * Guest memory accesses off the interpreter's fast path: instruction fetch across pages or
 * from MMIO, loads and stores that miss the TLB, page-crossing (byte-wise) accesses, and
 * device (MMIO) accesses through the physical bus. Misaligned accesses are performed: in
 * DRAM directly; to MMIO as QEMU's cputlb does them, a load as the two aligned loads of the
 * same size around it combined little-endian, a store as byte stores from the lowest address.
 */
import { Cause } from "./csr_numbers.ts";
import { HartMmu, TLB_INDEX_MASK } from "./mmu.ts";
import { hiOf, loOf } from "./state.ts";
import type { TriggerAccess } from "./sdtrig.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import type { GuestMemory } from "../guest_memory.ts";

/** The memory-access layer: slow paths over the MMU and the physical bus. */
export abstract class HartMemoryAccess extends HartMmu {
  readonly bus: PhysicalBus;
  // Out-of-line results (avoid allocation).
  tmpLo = 0;
  tmpHi = 0;
  /** Set by fetchSlow when the fetched page is in the TLB: its virtual base and host offset. */
  fetchPageBase = NaN;
  fetchPageOff = 0;
  private readonly byteHost = new Float64Array(8);
  /** Bytes of the two aligned device reads of a misaligned MMIO load. */
  private readonly splitBytes = new Uint8Array(16);
  /** An 8-byte bit copy's halves (`sharedAtomics`: one 8-byte access, never torn). */
  private readonly whole = new Float64Array(1);
  private readonly wholeHalves = new Int32Array(this.whole.buffer);

  constructor(mem: GuestMemory, hartId: number, bus: PhysicalBus) {
    super(mem, hartId);
    this.bus = bus;
  }

  /**
   * Checks the Sdtrig address triggers before an access; true when one fired (a breakpoint
   * with tval = `va` is recorded). Called only while `tlbFillAllowed` is false.
   */
  watch(va: number, size: number, access: TriggerAccess): boolean {
    if (!this.triggers.fires(va, size, access, this.privv)) return false;
    this.fault(Cause.BREAKPOINT, va);
    return true;
  }

  /**
   * After a trigger write or a state load: while a trigger is armed, the pages it watches
   * leave the TLB (a full flush: they may be any) and every slow-path access checks triggers.
   */
  triggersChanged(): void {
    const armed = this.triggers.armed;
    if (armed) this.flushTlb();
    this.tlbFillAllowed = !armed;
  }

  /** Host offset of the fetch parcel at `va` (TLB first), -1 for MMIO, -2 on fault. */
  fetchHost(va: number): number {
    const vlo = loOf(va);
    const e = this.fetchSet + ((vlo >>> 10) & TLB_INDEX_MASK);
    if (this.tlb[e] === (vlo & ~0xfff) && this.tlb[e + 1] === hiOf(va)) {
      return this.tlb[e + 2] + (vlo & 0xfff);
    }
    return this.translate(va, 2, 2);
  }

  /** Fetches the instruction at `pc` (any alignment to 2, any page/region). */
  fetchSlow(pc: number): number {
    this.fetchPageBase = NaN;
    if (!this.tlbFillAllowed && this.watch(pc, 2, 2)) return 0;
    const h = this.fetchHost(pc);
    if (h === -2) return 0;
    let p: number;
    if (h >= 0) {
      p = this.u16[h >> 1];
      const vlo = loOf(pc);
      const e = this.fetchSet + ((vlo >>> 10) & TLB_INDEX_MASK);
      if (this.tlb[e] === (vlo & ~0xfff) && this.tlb[e + 1] === hiOf(pc)) {
        this.fetchPageBase = pc - (vlo & 0xfff);
        this.fetchPageOff = this.tlb[e + 2];
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

  /** Host offset for a data access (TLB, then a walk); see `translate`. */
  dataHost(va: number, access: number, size: number): number {
    const h = this.tlbLookup(va, access === 0 ? this.loadSet : this.storeSet);
    if (h !== -3) return h;
    return this.translate(va, access, size);
  }

  /** Loads `size` bytes at `va` into tmpLo/tmpHi: 0 ok, 1 ok from MMIO, 2 fault. */
  loadSlow(va: number, size: number): number {
    if (!this.tlbFillAllowed && this.watch(va, size, 0)) return 2;
    const po = va - Math.floor(va / 4096) * 4096;
    if (po + size > 4096) return this.loadBytes(va, size);
    const h = this.dataHost(va, 0, size);
    if (h === -2) return 2;
    if (h === -1) {
      const pa = this.mmioPa;
      if (pa % size !== 0) return this.loadMmioSplit(va, pa, size);
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
        if (this.sharedAtomics && (h & 7) === 0) {
          // Harts on other threads: one 8-byte read (a Float64Array bit copy keeps NaN bits).
          this.whole[0] = this.mem.f64[h >> 3];
          this.tmpLo = this.wholeHalves[0];
          this.tmpHi = this.wholeHalves[1];
          break;
        }
        this.tmpLo = dv.getInt32(h, true);
        this.tmpHi = dv.getInt32(h + 4, true);
    }
    return 0;
  }

  /**
   * A misaligned MMIO load of `size` bytes at `pa`: the aligned `size`-byte loads at and
   * after it, combined little-endian (QEMU's unaligned device access). Returns 1 or a fault.
   */
  private loadMmioSplit(va: number, pa: number, size: number): number {
    const first = pa - (pa % size);
    const bytes = this.splitBytes;
    for (let part = 0; part < 2; part++) {
      const at = first + part * size;
      for (let w = 0; w < size; w += 4) {
        const n = size < 4 ? size : 4;
        const v = this.bus.load(at + w, n as 1 | 2 | 4);
        if (v < 0) return this.fault(Cause.LOAD_ACCESS, va);
        for (let i = 0; i < n; i++) bytes[part * size + w + i] = (v >>> (8 * i)) & 0xff;
      }
    }
    const o = pa - first;
    let lo = 0, hi = 0;
    for (let i = 0; i < size; i++) {
      if (i < 4) lo |= bytes[o + i] << (8 * i);
      else hi |= bytes[o + i] << (8 * (i - 4));
    }
    this.tmpLo = lo;
    this.tmpHi = hi;
    return 1;
  }

  /** A load that crosses a page boundary, byte by byte (DRAM only). */
  loadBytes(va: number, size: number): number {
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
  storeSlow(va: number, size: number, lo: number, hi: number): number {
    if (!this.tlbFillAllowed && this.watch(va, size, 1)) return 2;
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
      if (pa % size !== 0) {
        for (let i = 0; i < size; i++) {
          const b = (i < 4 ? lo >>> (8 * i) : hi >>> (8 * (i - 4))) & 0xff;
          if (!this.bus.store(pa + i, 1, b)) return this.fault(Cause.STORE_ACCESS, va);
        }
        return 1;
      }
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
        if (this.sharedAtomics && (h & 7) === 0) {
          this.wholeHalves[0] = lo;
          this.wholeHalves[1] = hi;
          this.mem.f64[h >> 3] = this.whole[0];
          break;
        }
        dv.setInt32(h, lo, true);
        dv.setInt32(h + 4, hi, true);
    }
    return 0;
  }

  /**
   * An integer load that missed the interpreter's TLB fast path: performs it, extends the
   * value for funct3 and writes rd. Returns loadSlow's status.
   */
  loadInsn(a: number, f3: number, rd: number): number {
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
}
