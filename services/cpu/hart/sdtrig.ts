/**
 * Sdtrig (RISC-V debug spec, trigger module) as QEMU 7.2 implements it: two triggers behind
 * tselect, each an address match of type 2 (mcontrol) or type 6 (mcontrol6) on execute,
 * load and store, with action 0 (a breakpoint exception) only; tdata1-tdata3 and tinfo. The
 * trigger registers live in the hart's state record (TSELECT and TRIGGERS).
 *
 * Matching, as QEMU does: an execute trigger fires when pc == tdata2; a load/store trigger
 * when the access overlaps [tdata2, tdata2 + len), len from the size field (any: 8 bytes),
 * in the privilege modes its U/S/M bits name (the current privilege, not MPRV's). What
 * QEMU 7.2 does not implement reads as zero and ignores writes: match, chain, action,
 * timing, select, hit, dmode, maskmax, tdata3, tcontrol (absent: illegal, so M-mode
 * triggers fire whenever their M bit is set). Two differences from QEMU 7.2, both the
 * spec's: xtval holds the matching address (QEMU writes 0), and a 4- or 8-byte size
 * matches 4 or 8 bytes (QEMU 7.2 watches 3 or 5).
 */
import { i64Of, Word } from "./state.ts";

/** Triggers implemented (QEMU 7.2: RV_MAX_TRIGGERS = 2). */
export const TRIGGERS = 2;
/** tinfo: types 2 and 6 supported. */
export const TINFO = (1 << 2) | (1 << 6);
/** CSR numbers. */
export const TSELECT = 0x7a0, TDATA1 = 0x7a1, TDATA2 = 0x7a2, TDATA3 = 0x7a3, TINFO_CSR = 0x7a4;

/** Access kinds a trigger is checked for. */
export const enum TriggerAccess {
  Load = 0,
  Store = 1,
  Execute = 2,
  /** An AMO: both a load and a store. */
  LoadStore = 3,
}

const LOAD = 1, STORE = 2, EXEC = 4, U = 1 << 3, S = 1 << 4, M = 1 << 6;
/** The mode and access bits both types keep. */
const KEEP_LOW = LOAD | STORE | EXEC | U | S | M;
/** Type-6 VU/VS bits (bits 23, 24). */
const KEEP_VUVS = (1 << 23) | (1 << 24);
/** Window length by size encoding; -1: unsupported (reads back as "any"). */
const SIZE_BYTES = [8, 1, 2, 4, -1, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1];
/** Type field (bits 63:60) in the high word. */
const TYPE_SHIFT = 28;

/**
 * The trigger registers over the record's words `st` and the decoded match table.
 *
 * @example
 * ```ts
 * const t = new Triggers(new Int32Array(HartLayout.TLB >> 2));
 * t.reset();
 * t.write(TDATA2, 0x8000_1000, 0);
 * t.write(TDATA1, 0x44, 2 << 28); // type 2, M-mode, execute
 * t.fires(0x8000_1000, 2, TriggerAccess.Execute, 3); // true
 * ```
 */
export class Triggers {
  /** Value of the last `read()`. */
  lo = 0;
  hi = 0;
  /**
   * True while some trigger can fire: the hart then checks triggers on its slow paths and
   * keeps the pages they watch out of its TLB (`touchesPage`).
   */
  armed = false;
  private readonly st: Int32Array;
  // Decoded per trigger: access/mode bits and the address window.
  private readonly bits = new Int32Array(TRIGGERS);
  private readonly start = new Float64Array(TRIGGERS);
  private readonly len = new Float64Array(TRIGGERS);

  constructor(st: Int32Array) {
    this.st = st;
  }

  /** Reset values: tselect 0, every trigger type 2 with nothing enabled, tdata2 0. */
  reset(): void {
    const st = this.st;
    st[Word.TSELECT] = 0;
    for (let i = 0; i < TRIGGERS; i++) {
      const w = Word.TRIGGERS + 6 * i;
      st.fill(0, w, w + 6);
      st[w + 1] = 2 << TYPE_SHIFT;
    }
    this.decode();
  }

  /** Reads trigger CSR `n` into lo/hi; false when `n` is not one. */
  read(n: number): boolean {
    const st = this.st;
    const w = Word.TRIGGERS + 6 * st[Word.TSELECT];
    let lo = 0, hi = 0;
    switch (n) {
      case TSELECT:
        lo = st[Word.TSELECT];
        break;
      case TDATA1:
        lo = st[w];
        hi = st[w + 1];
        break;
      case TDATA2:
        lo = st[w + 2];
        hi = st[w + 3];
        break;
      case TDATA3:
        break;
      case TINFO_CSR:
        lo = TINFO;
        break;
      default:
        return false;
    }
    this.lo = lo;
    this.hi = hi;
    return true;
  }

  /** Writes trigger CSR `n` (WARL as QEMU 7.2); false when `n` is not one. */
  write(n: number, lo: number, hi: number): boolean {
    const st = this.st;
    const w = Word.TRIGGERS + 6 * st[Word.TSELECT];
    switch (n) {
      case TSELECT:
        if (hi === 0 && lo >= 0 && lo < TRIGGERS) st[Word.TSELECT] = lo;
        return true;
      case TDATA1: {
        const type = hi >>> TYPE_SHIFT;
        if (type !== 2 && type !== 6) return true; // other types: the write is ignored
        let v = lo & KEEP_LOW;
        if (type === 2) {
          const size = (((lo >>> 21) & 3) << 2) | ((lo >>> 16) & 3);
          if (SIZE_BYTES[size] > 0) v |= lo & ((3 << 21) | (3 << 16));
        } else {
          if (SIZE_BYTES[(lo >>> 16) & 15] > 0) v |= lo & (15 << 16);
          v |= lo & KEEP_VUVS;
        }
        st[w] = v;
        st[w + 1] = type << TYPE_SHIFT;
        this.decode();
        return true;
      }
      case TDATA2:
        st[w + 2] = lo;
        st[w + 3] = hi;
        this.decode();
        return true;
      case TDATA3:
      case TINFO_CSR:
        return true; // hard-wired: writes ignored
      default:
        return false;
    }
  }

  /** Recomputes the match table (after a write or a state load). */
  decode(): void {
    const st = this.st;
    let armed = false;
    for (let i = 0; i < TRIGGERS; i++) {
      const w = Word.TRIGGERS + 6 * i;
      const lo = st[w], type = st[w + 1] >>> TYPE_SHIFT;
      const enabled = (type === 2 || type === 6) && (lo & (LOAD | STORE | EXEC)) !== 0 &&
        (lo & (U | S | M)) !== 0;
      this.bits[i] = enabled ? lo & KEEP_LOW : 0;
      const size = type === 2 ? (((lo >>> 21) & 3) << 2) | ((lo >>> 16) & 3) : (lo >>> 16) & 15;
      this.len[i] = SIZE_BYTES[size] > 0 ? SIZE_BYTES[size] : 8;
      // Signed, like the hart's addresses: exact for every canonical virtual address.
      this.start[i] = i64Of(st[w + 2], st[w + 3]);
      if (enabled) armed = true;
    }
    this.armed = armed;
  }

  /** True when an enabled trigger watches some byte of the 4 KiB virtual page at `vpage`. */
  touchesPage(vpage: number): boolean {
    for (let i = 0; i < TRIGGERS; i++) {
      if (this.bits[i] === 0) continue;
      const s = this.start[i];
      if (s < vpage + 4096 && s + this.len[i] > vpage) return true;
    }
    return false;
  }

  /**
   * True when a trigger fires for an access of `size` bytes at `va` (an execute: the pc) in
   * privilege `priv`.
   */
  fires(va: number, size: number, access: TriggerAccess, priv: number): boolean {
    const want = access === TriggerAccess.Execute
      ? EXEC
      : access === TriggerAccess.Load
      ? LOAD
      : access === TriggerAccess.Store
      ? STORE
      : LOAD | STORE;
    for (let i = 0; i < TRIGGERS; i++) {
      const b = this.bits[i];
      if ((b & want) === 0 || ((b >> 3) & (1 << priv)) === 0) continue;
      const s = this.start[i];
      if (access === TriggerAccess.Execute ? va === s : va < s + this.len[i] && va + size > s) {
        return true;
      }
    }
    return false;
  }
}
