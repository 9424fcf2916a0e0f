/**
 * SiFive CLINT (as QEMU's ACLINT MSWI + MTIMER on `virt`): per-hart `msip` at 0x0,
 * `mtimecmp` at 0x4000, and the shared `mtime` at 0xbff8, which counts the VM clock.
 * `mtimecmp` resets to 0 as on QEMU, so MTIP is pending from power-on until the guest
 * programs a later compare value.
 */
import { Irq, type MmioDevice, type Stateful } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import type { HartIrqLines } from "../machine/hart_irq.ts";

const MSIP_BASE = 0x0;
const MTIMECMP_BASE = 0x4000;
const MTIME = 0xbff8;
const TWO32 = 0x1_0000_0000;

/** Serializable CLINT state. */
export interface ClintState {
  msip: number[];
  /** mtimecmp halves per hart: [lo, hi]. */
  mtimecmp: [number, number][];
  /** Ticks added to the clock (guest writes to mtime). */
  mtimeOffset: number;
  /** mtime's high half latched by a low-half read (-1: none); absent in older states. */
  latchedHigh?: number;
}

/** The core-local interruptor. */
export class Clint implements MmioDevice, Stateful<ClintState> {
  readonly name = "clint";
  #msip: number[];
  #cmp: [number, number][];
  #offset = 0;
  #latchedHigh = -1;

  constructor(
    private readonly harts: number,
    private readonly clock: VmClock,
    private readonly lines: HartIrqLines,
  ) {
    this.#msip = new Array(harts).fill(0);
    this.#cmp = Array.from({ length: harts }, () => [0, 0] as [number, number]);
    this.tick();
  }

  /** Current `mtime` in ticks. */
  mtime(): number {
    return this.clock.now() + this.#offset;
  }

  /** Hart `hart`'s mtimecmp as a double (exact below 2^53, ordered beyond). */
  mtimecmp(hart: number): number {
    const [lo, hi] = this.#cmp[hart];
    return hi * TWO32 + lo;
  }

  /** Earliest mtimecmp across harts, in clock ticks (the next timer deadline). */
  nextDeadline(): number {
    let min = Infinity;
    for (let h = 0; h < this.harts; h++) min = Math.min(min, this.mtimecmp(h) - this.#offset);
    return min;
  }

  /** Recomputes every hart's MTIP level against the clock (call between instruction batches). */
  tick(): void {
    const now = this.mtime();
    for (let h = 0; h < this.harts; h++) this.lines.set(h, Irq.MTIP, now >= this.mtimecmp(h));
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (size !== 4) return 0;
    if (offset < MTIMECMP_BASE) {
      const h = (offset - MSIP_BASE) >> 2;
      return h < this.harts ? this.#msip[h] : 0;
    }
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + this.harts * 8) {
      const rel = offset - MTIMECMP_BASE;
      return this.#cmp[rel >> 3][(rel >> 2) & 1] >>> 0;
    }
    if (offset === MTIME) {
      // Latch the high half so a 64-bit read (low then high) is consistent across a carry.
      const now = this.mtime();
      this.#latchedHigh = Math.floor(now / TWO32) >>> 0;
      return now >>> 0;
    }
    if (offset === MTIME + 4) {
      const hi = this.#latchedHigh >= 0
        ? this.#latchedHigh
        : Math.floor(this.mtime() / TWO32) >>> 0;
      this.#latchedHigh = -1;
      return hi;
    }
    return 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4) return;
    if (offset < MTIMECMP_BASE) {
      const h = (offset - MSIP_BASE) >> 2;
      if (h >= this.harts) return;
      this.#msip[h] = value & 1;
      this.lines.set(h, Irq.MSIP, (value & 1) === 1);
      return;
    }
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + this.harts * 8) {
      const rel = offset - MTIMECMP_BASE;
      const h = rel >> 3;
      this.#cmp[h][(rel >> 2) & 1] = value >>> 0;
      this.lines.set(h, Irq.MTIP, this.mtime() >= this.mtimecmp(h));
      return;
    }
    if (offset === MTIME || offset === MTIME + 4) {
      const now = this.mtime();
      let lo = now >>> 0, hi = Math.floor(now / TWO32) >>> 0;
      if (offset === MTIME) lo = value >>> 0;
      else hi = value >>> 0;
      this.#offset += hi * TWO32 + lo - now;
      this.tick();
    }
  }

  save(): ClintState {
    return {
      msip: [...this.#msip],
      mtimecmp: this.#cmp.map(([lo, hi]) => [lo, hi]),
      mtimeOffset: this.#offset,
      latchedHigh: this.#latchedHigh,
    };
  }

  load(s: ClintState): void {
    this.#msip = [...s.msip];
    this.#cmp = s.mtimecmp.map(([lo, hi]) => [lo, hi]);
    this.#offset = s.mtimeOffset;
    this.#latchedHigh = s.latchedHigh ?? -1;
    for (let h = 0; h < this.harts; h++) this.lines.set(h, Irq.MSIP, this.#msip[h] === 1);
    this.tick();
  }
}
