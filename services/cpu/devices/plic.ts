/**
 * SiFive PLIC as on QEMU `virt`: priorities at 0x0, pending bits at 0x1000, per-context enables
 * at 0x2000 (stride 0x80), per-context threshold and claim/complete at 0x200000 (stride 0x1000).
 * Context 2h is hart h's M-mode (MEIP), context 2h+1 its S-mode (SEIP). Sources are
 * level-triggered: a source stays pending while its line is high and it is not being serviced.
 * As QEMU's sifive_plic.c: enable words cover ndev bits (3 words for 96 sources) and store
 * every bit written (also bit 0, which matters nowhere), and a completion is taken for any
 * source below ndev whether or not the context enables it.
 *
 * The state lives in a SharedArrayBuffer (`shared`) behind a lock word, so hart Workers
 * (`--smp-threads`) build their own Plic over it and claim/complete/threshold/enable from their
 * own thread, while the main thread's devices drive the lines into the same state.
 */
import { Irq, type MmioDevice, type Stateful } from "../machine/mmio.ts";
import type { HartIrqLines } from "../machine/hart_irq.ts";

const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;
/** Priority bits implemented (QEMU virt: 7 levels). */
const PRIORITY_MASK = 7;
/** Lock word states: free, held, held with a thread waiting. */
const FREE = 0, HELD = 1, CONTENDED = 2;
/** Lock attempts before sleeping on the word (the sections are a few hundred operations). */
const SPINS = 64;

/** Serializable PLIC state. */
export interface PlicState {
  priority: number[];
  level: boolean[];
  pending: boolean[];
  claimed: boolean[];
  /** Enable bitmap words per context. */
  enable: number[][];
  threshold: number[];
}

/** Int32 word offsets of the shared state for `harts` harts and `ndev` sources. */
function layout(harts: number, ndev: number) {
  const sources = ndev + 1, bits = (sources + 31) >> 5, words = (ndev + 31) >> 5;
  const contexts = harts * 2;
  const priority = 1, level = priority + sources, pending = level + bits;
  const claimed = pending + bits, enable = claimed + bits, threshold = enable + contexts * words;
  return {
    sources,
    bits,
    words,
    contexts,
    priority,
    level,
    pending,
    claimed,
    enable,
    threshold,
    total: threshold + contexts,
  };
}

/** The platform-level interrupt controller. */
export class Plic implements MmioDevice, Stateful<PlicState> {
  readonly name = "plic";
  /** Source ids 1..ndev; id 0 means "none". */
  readonly sources: number;
  readonly contexts: number;
  /** The lock word and every register, shared by each thread's Plic over it. */
  readonly shared: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #l: ReturnType<typeof layout>;

  /** Makes the PLIC; with `shared` (another Plic's `shared`) it operates that state. */
  constructor(
    harts: number,
    ndev: number,
    private readonly lines: HartIrqLines,
    shared?: SharedArrayBuffer,
  ) {
    this.#l = layout(harts, ndev);
    this.sources = this.#l.sources;
    this.contexts = this.#l.contexts;
    this.shared = shared ?? new SharedArrayBuffer(this.#l.total * 4);
    if (this.shared.byteLength < this.#l.total * 4) {
      throw new RangeError(`PLIC shared state of ${this.shared.byteLength} bytes is too small`);
    }
    this.#w = new Int32Array(this.shared, 0, this.#l.total);
  }

  /** Takes the lock (a futex-style mutex: spin briefly, then sleep on the word). */
  #lock(): void {
    const w = this.#w;
    let c = Atomics.compareExchange(w, 0, FREE, HELD);
    for (let i = 0; c !== FREE && i < SPINS; i++) c = Atomics.compareExchange(w, 0, FREE, HELD);
    if (c === FREE) return;
    if (c !== CONTENDED) c = Atomics.exchange(w, 0, CONTENDED);
    while (c !== FREE) {
      Atomics.wait(w, 0, CONTENDED, 10);
      c = Atomics.exchange(w, 0, CONTENDED);
    }
  }

  #unlock(): void {
    if (Atomics.exchange(this.#w, 0, FREE) === CONTENDED) Atomics.notify(this.#w, 0, 1);
  }

  #bit(base: number, s: number): boolean {
    return ((Atomics.load(this.#w, base + (s >> 5)) >>> (s & 31)) & 1) === 1;
  }

  #setBit(base: number, s: number, on: boolean): void {
    const i = base + (s >> 5), m = 1 << (s & 31);
    if (on) Atomics.or(this.#w, i, m);
    else Atomics.and(this.#w, i, ~m);
  }

  /** Drives interrupt line `source` (1..ndev) to `level`. */
  setIrq(source: number, level: boolean): void {
    if (source <= 0 || source >= this.sources) return;
    const l = this.#l;
    this.#lock();
    try {
      if (this.#bit(l.level, source) === level) return;
      this.#setBit(l.level, source, level);
      // The gateway latches a request: pending stays set until claimed even if the line drops
      // (PLIC spec; QEMU behaves the same).
      if (level && !this.#bit(l.claimed, source)) this.#setBit(l.pending, source, true);
      this.#update();
    } finally {
      this.#unlock();
    }
  }

  /** True when some context has an interrupt to take (used to wake an idle hart). */
  anyAsserted(): boolean {
    this.#lock();
    try {
      for (let c = 0; c < this.contexts; c++) if (this.#best(c) !== 0) return true;
      return false;
    } finally {
      this.#unlock();
    }
  }

  /** Highest-priority pending, enabled source above the context's threshold (0: none). */
  #best(ctx: number): number {
    const w = this.#w, l = this.#l;
    let best = 0, bestPrio = Atomics.load(w, l.threshold + ctx);
    const en = l.enable + ctx * l.words;
    for (let i = 0; i < l.words; i++) {
      let cand = Atomics.load(w, l.pending + i) & Atomics.load(w, en + i);
      while (cand !== 0) {
        const b = 31 - Math.clz32(cand & -cand);
        cand &= cand - 1;
        const s = i * 32 + b;
        if (s === 0 || s >= this.sources) continue;
        const prio = Atomics.load(w, l.priority + s);
        // Lowest id wins a tie: bits are visited in ascending order.
        if (prio > bestPrio) {
          best = s;
          bestPrio = prio;
        }
      }
    }
    return best;
  }

  #update(): void {
    for (let c = 0; c < this.contexts; c++) {
      this.lines.set(c >> 1, c & 1 ? Irq.SEIP : Irq.MEIP, this.#best(c) !== 0);
    }
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (size !== 4 || offset & 3) return 0;
    const w = this.#w, l = this.#l;
    this.#lock();
    try {
      if (offset < PENDING_BASE) {
        const s = offset >> 2;
        return s < this.sources ? Atomics.load(w, l.priority + s) : 0;
      }
      if (offset < ENABLE_BASE) {
        const i = (offset - PENDING_BASE) >> 2;
        return i < l.bits ? Atomics.load(w, l.pending + i) >>> 0 : 0;
      }
      if (offset < CONTEXT_BASE) {
        const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
        const i = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
        if (ctx >= this.contexts || i >= l.words) return 0;
        return Atomics.load(w, l.enable + ctx * l.words + i) >>> 0;
      }
      const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
      const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (ctx >= this.contexts) return 0;
      if (reg === 0) return Atomics.load(w, l.threshold + ctx);
      if (reg === 4) return this.#claim(ctx);
      return 0;
    } finally {
      this.#unlock();
    }
  }

  #claim(ctx: number): number {
    const s = this.#best(ctx);
    if (s !== 0) {
      this.#setBit(this.#l.pending, s, false);
      this.#setBit(this.#l.claimed, s, true);
      this.#update();
    }
    return s;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || offset & 3) return;
    const w = this.#w, l = this.#l;
    this.#lock();
    try {
      if (offset < PENDING_BASE) {
        const s = offset >> 2;
        if (s > 0 && s < this.sources) Atomics.store(w, l.priority + s, value & PRIORITY_MASK);
      } else if (offset < ENABLE_BASE) {
        return; // pending bits are read-only
      } else if (offset < CONTEXT_BASE) {
        const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
        const i = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
        if (ctx >= this.contexts || i >= l.words) return;
        Atomics.store(w, l.enable + ctx * l.words + i, value | 0);
      } else {
        const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
        const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
        if (ctx >= this.contexts) return;
        if (reg === 0) Atomics.store(w, l.threshold + ctx, value & PRIORITY_MASK);
        else if (reg === 4) this.#complete(ctx, value >>> 0);
        else return;
      }
      this.#update();
    } finally {
      this.#unlock();
    }
  }

  #complete(_ctx: number, s: number): void {
    // QEMU takes any id below num_sources (= ndev), enabled for the context or not; the
    // PLIC spec would ignore a completion for a source the context does not enable.
    if (s <= 0 || s >= this.sources - 1) return;
    this.#setBit(this.#l.claimed, s, false);
    if (this.#bit(this.#l.level, s)) this.#setBit(this.#l.pending, s, true);
  }

  save(): PlicState {
    const l = this.#l, w = this.#w;
    this.#lock();
    try {
      const flags = (base: number) =>
        Array.from({ length: this.sources }, (_, s) => this.#bit(base, s));
      return {
        priority: Array.from({ length: this.sources }, (_, s) => Atomics.load(w, l.priority + s)),
        level: flags(l.level),
        pending: flags(l.pending),
        claimed: flags(l.claimed),
        enable: Array.from(
          { length: this.contexts },
          (_, c) =>
            Array.from(
              { length: l.words },
              (_, i) => Atomics.load(w, l.enable + c * l.words + i) >>> 0,
            ),
        ),
        threshold: Array.from(
          { length: this.contexts },
          (_, c) => Atomics.load(w, l.threshold + c),
        ),
      };
    } finally {
      this.#unlock();
    }
  }

  load(s: PlicState): void {
    const l = this.#l, w = this.#w;
    this.#lock();
    try {
      for (let i = 0; i < this.sources; i++) {
        Atomics.store(w, l.priority + i, s.priority[i] ?? 0);
        this.#setBit(l.level, i, s.level[i] ?? false);
        this.#setBit(l.pending, i, s.pending[i] ?? false);
        this.#setBit(l.claimed, i, s.claimed[i] ?? false);
      }
      for (let c = 0; c < this.contexts; c++) {
        for (let i = 0; i < l.words; i++) {
          Atomics.store(w, l.enable + c * l.words + i, s.enable[c]?.[i] ?? 0);
        }
        Atomics.store(w, l.threshold + c, s.threshold[c] ?? 0);
      }
      this.#update();
    } finally {
      this.#unlock();
    }
  }
}
