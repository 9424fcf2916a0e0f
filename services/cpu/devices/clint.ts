/**
 * SiFive CLINT (as QEMU's ACLINT MSWI + MTIMER on `virt`): per-hart `msip` at 0x0,
 * `mtimecmp` at 0x4000, and the shared `mtime` at 0xbff8, which counts the VM clock.
 * `mtimecmp` resets to 0 as on QEMU, so MTIP is pending from power-on until the guest
 * programs a later compare value.
 */
import { Irq, type MmioDevice, type Stateful } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import type { HartIrqLines } from "../machine/hart_irq.ts";
import { MAX_HARTS } from "../guest_memory.ts";

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

/** Int32 words of the shared state: msip per hart, then mtimecmp [lo, hi] per hart. */
const MSIP_WORD = 0, CMP_WORD = MAX_HARTS;
/** Byte offset of the mtime offset (a float64) in the shared state. */
const OFFSET_BYTE = (CMP_WORD + 2 * MAX_HARTS) * 4;
/** Bytes of the CLINT state shared between threads (`Clint.shared`). */
export const CLINT_SHARED_BYTES = OFFSET_BYTE + 8;

/**
 * The core-local interruptor. Its registers live in a SharedArrayBuffer (`shared`), so hart
 * Workers build their own Clint over the same buffer and operate it with Atomics, without a
 * round trip to the main thread.
 */
export class Clint implements MmioDevice, Stateful<ClintState> {
  readonly name = "clint";
  /** msip, mtimecmp and the mtime offset, shared by every thread's Clint over it. */
  readonly shared: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #f: Float64Array;
  /** Per thread: a 64-bit mtime read is two 32-bit reads by one hart. */
  #latchedHigh = -1;

  /** Makes the CLINT; with `shared` (another Clint's `shared`) it operates that state. */
  constructor(
    private readonly harts: number,
    private readonly clock: VmClock,
    private readonly lines: HartIrqLines,
    shared?: SharedArrayBuffer,
  ) {
    this.shared = shared ?? new SharedArrayBuffer(CLINT_SHARED_BYTES);
    this.#w = new Int32Array(this.shared, 0, OFFSET_BYTE / 4);
    this.#f = new Float64Array(this.shared, OFFSET_BYTE, 1);
    if (!shared) this.tick();
  }

  get #offset(): number {
    return this.#f[0];
  }
  set #offset(v: number) {
    this.#f[0] = v;
  }

  /** Current `mtime` in ticks. */
  mtime(): number {
    return this.clock.now() + this.#offset;
  }

  /** Hart `hart`'s mtimecmp as a double (exact below 2^53, ordered beyond). */
  mtimecmp(hart: number): number {
    const w = this.#w, i = CMP_WORD + 2 * hart;
    return (Atomics.load(w, i + 1) >>> 0) * TWO32 + (Atomics.load(w, i) >>> 0);
  }

  /** Earliest mtimecmp across harts, in clock ticks (the next timer deadline). */
  nextDeadline(): number {
    let min = Infinity;
    for (let h = 0; h < this.harts; h++) min = Math.min(min, this.mtimecmp(h) - this.#offset);
    return min;
  }

  /** Hart `hart`'s next mtimecmp deadline in clock ticks. */
  deadline(hart: number): number {
    return this.mtimecmp(hart) - this.#offset;
  }

  /** Recomputes every hart's MTIP level against the clock (call between instruction batches). */
  tick(): void {
    const now = this.mtime();
    for (let h = 0; h < this.harts; h++) this.lines.set(h, Irq.MTIP, now >= this.mtimecmp(h));
  }

  /** Recomputes hart `hart`'s MTIP level (its Worker does, between batches). */
  tickHart(hart: number): void {
    this.lines.set(hart, Irq.MTIP, this.mtime() >= this.mtimecmp(hart));
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (size !== 4) return 0;
    if (offset < MTIMECMP_BASE) {
      const h = (offset - MSIP_BASE) >> 2;
      return h < this.harts ? Atomics.load(this.#w, MSIP_WORD + h) : 0;
    }
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + this.harts * 8) {
      const rel = offset - MTIMECMP_BASE;
      return Atomics.load(this.#w, CMP_WORD + (rel >> 2)) >>> 0;
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
      Atomics.store(this.#w, MSIP_WORD + h, value & 1);
      this.lines.set(h, Irq.MSIP, (value & 1) === 1);
      return;
    }
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + this.harts * 8) {
      const rel = offset - MTIMECMP_BASE;
      const h = rel >> 3;
      Atomics.store(this.#w, CMP_WORD + (rel >> 2), value | 0);
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
      msip: Array.from({ length: this.harts }, (_, h) => Atomics.load(this.#w, MSIP_WORD + h)),
      mtimecmp: Array.from({ length: this.harts }, (_, h): [number, number] => [
        Atomics.load(this.#w, CMP_WORD + 2 * h) >>> 0,
        Atomics.load(this.#w, CMP_WORD + 2 * h + 1) >>> 0,
      ]),
      mtimeOffset: this.#offset,
      latchedHigh: this.#latchedHigh,
    };
  }

  load(s: ClintState): void {
    for (let h = 0; h < this.harts; h++) {
      Atomics.store(this.#w, MSIP_WORD + h, s.msip[h] & 1);
      Atomics.store(this.#w, CMP_WORD + 2 * h, s.mtimecmp[h][0] | 0);
      Atomics.store(this.#w, CMP_WORD + 2 * h + 1, s.mtimecmp[h][1] | 0);
    }
    this.#offset = s.mtimeOffset;
    this.#latchedHigh = s.latchedHigh ?? -1;
    for (let h = 0; h < this.harts; h++) this.lines.set(h, Irq.MSIP, s.msip[h] === 1);
    this.tick();
  }
}
