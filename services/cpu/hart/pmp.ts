/**
 * Physical memory protection (privileged spec 1.12, section 3.7): 16 entries, TOR/NA4/NAPOT,
 * lock bits, 4-byte granularity.
 */

/** Access kinds, also the permission bit index (R=bit0, W=bit1, X=bit2). */
export const enum Access {
  Load = 0,
  Store = 1,
  Fetch = 2,
}

/** Number of PMP entries implemented. */
export const PMP_ENTRIES = 16;

const PERM_BIT = [1, 2, 4]; // indexed by Access
const L = 0x80;
const A_OFF = 0, A_TOR = 1;

/** Result of a whole-page check (to decide whether a TLB entry may cache it). */
export const enum PageCheck {
  Denied = 0,
  Allowed = 1,
  /** Permissions differ inside the page: check each access. */
  Mixed = 2,
}

/**
 * PMP configuration and address registers (views into the hart's state record) with decoded
 * ranges (derived: recomputed by `decode()` after every write and after a state load).
 *
 * @example
 * ```ts
 * const pmp = new Pmp(new Uint8Array(16), new Int32Array(32));
 * pmp.writeAddr(0, -1, -1);
 * pmp.writeCfg(0, 0x1f, 0); // NAPOT, RWX over everything
 * pmp.check(0x8000_0000, 4, Access.Load, 0); // true
 * ```
 */
export class Pmp {
  /** pmpNcfg bytes. */
  readonly cfg: Uint8Array;
  /** pmpaddrN as i64 words: low at [2N], high at [2N+1] (54 significant bits). */
  readonly addr: Int32Array;
  /** Decoded byte ranges [start, end) per entry; empty when OFF. */
  readonly start = new Float64Array(PMP_ENTRIES);
  readonly end = new Float64Array(PMP_ENTRIES);
  /** Number of entries with A != OFF (fast path when zero). */
  active = 0;

  constructor(cfg: Uint8Array, addr: Int32Array) {
    if (cfg.length < PMP_ENTRIES || addr.length < 2 * PMP_ENTRIES) {
      throw new RangeError("PMP views too small");
    }
    this.cfg = cfg;
    this.addr = addr;
    this.decode();
  }

  /** Reads pmpcfg register `n` (even n in 0..14 on RV64) as lo/hi words. */
  readCfg(n: number, hi: boolean): number {
    const first = n * 4 + (hi ? 4 : 0);
    if (first >= PMP_ENTRIES) return 0;
    const c = this.cfg;
    return c[first] | (c[first + 1] << 8) | (c[first + 2] << 16) | (c[first + 3] << 24);
  }

  /** Writes pmpcfg register `n` (64-bit value as lo/hi). */
  writeCfg(n: number, lo: number, hi: number): void {
    for (let i = 0; i < 8; i++) {
      const e = n * 4 + i;
      if (e >= PMP_ENTRIES) break;
      if (this.cfg[e] & L) continue;
      let v = ((i < 4 ? lo >>> (i * 8) : hi >>> ((i - 4) * 8)) & 0xff) & 0x9f;
      if ((v & 3) === 2) v = (v & ~3) | (this.cfg[e] & 3); // R=0,W=1 is reserved: keep R/W
      this.cfg[e] = v;
    }
    this.decode();
  }

  /** Writes pmpaddr `i` unless locked (directly or via the next entry's TOR lock). */
  writeAddr(i: number, lo: number, hi: number): void {
    if (i >= PMP_ENTRIES) return;
    if (this.cfg[i] & L) return;
    if (i + 1 < PMP_ENTRIES && (this.cfg[i + 1] & L) && ((this.cfg[i + 1] >> 3) & 3) === A_TOR) {
      return;
    }
    this.addr[2 * i] = lo;
    this.addr[2 * i + 1] = hi & 0x3fffff;
    this.decode();
  }

  /** Recomputes the byte ranges after a write. */
  decode(): void {
    let active = 0;
    for (let i = 0; i < PMP_ENTRIES; i++) {
      const a = (this.cfg[i] >> 3) & 3;
      const lo = this.addr[2 * i], hi = this.addr[2 * i + 1];
      const value = hi * 4294967296 + (lo >>> 0);
      let s = 0, e = 0;
      if (a === A_TOR) {
        s = i === 0 ? 0 : (this.addr[2 * i - 1] * 4294967296 + (this.addr[2 * i - 2] >>> 0)) * 4;
        e = value * 4;
        if (e < s) e = s;
      } else if (a !== A_OFF) {
        if (a === 2) {
          s = value * 4;
          e = s + 4;
        } else {
          // NAPOT: trailing ones t of pmpaddr give a 2^(t+3)-byte region.
          let t = 0;
          while (t < 54 && (t < 32 ? (lo >>> t) & 1 : (hi >>> (t - 32)) & 1)) t++;
          const size = 2 ** (t + 3);
          s = Math.floor(value * 4 / size) * size;
          e = s + size;
        }
      }
      this.start[i] = s;
      this.end[i] = e;
      if (a !== A_OFF) active++;
    }
    this.active = active;
  }

  /**
   * Checks an access of `size` bytes at `pa` by privilege `priv` (0 U, 1 S, 3 M).
   * Returns true when allowed.
   */
  check(pa: number, size: number, access: Access, priv: number): boolean {
    const r = this.match(pa, size, access, priv);
    return r === PageCheck.Allowed;
  }

  /** Like `check` for a whole 4 KiB page; `Mixed` when entries split the page. */
  checkPage(pa: number, access: Access, priv: number): PageCheck {
    return this.match(pa, 4096, access, priv);
  }

  private match(pa: number, size: number, access: Access, priv: number): PageCheck {
    if (this.active !== 0) {
      const last = pa + size;
      for (let i = 0; i < PMP_ENTRIES; i++) {
        const c = this.cfg[i];
        if ((c & 0x18) === 0) continue;
        const s = this.start[i], e = this.end[i];
        if (last <= s || pa >= e) continue;
        if (pa < s || last > e) return size === 4096 ? PageCheck.Mixed : PageCheck.Denied;
        if (priv === 3 && (c & L) === 0) return PageCheck.Allowed;
        return (c & PERM_BIT[access]) !== 0 ? PageCheck.Allowed : PageCheck.Denied;
      }
    }
    return priv === 3 ? PageCheck.Allowed : PageCheck.Denied;
  }
}
