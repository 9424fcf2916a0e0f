/**
 * SiFive PLIC as on QEMU `virt`: priorities at 0x0, pending bits at 0x1000, per-context enables
 * at 0x2000 (stride 0x80), per-context threshold and claim/complete at 0x200000 (stride 0x1000).
 * Context 2h is hart h's M-mode (MEIP), context 2h+1 its S-mode (SEIP). Sources are
 * level-triggered: a source stays pending while its line is high and it is not being serviced.
 * As QEMU's sifive_plic.c: enable words cover ndev bits (3 words for 96 sources) and store
 * every bit written (also bit 0, which matters nowhere), and a completion is taken for any
 * source below ndev whether or not the context enables it.
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

/** The platform-level interrupt controller. */
export class Plic implements MmioDevice, Stateful<PlicState> {
  readonly name = "plic";
  /** Source ids 1..ndev; id 0 means "none". */
  readonly sources: number;
  readonly contexts: number;
  #priority: number[];
  #level: boolean[];
  #pending: boolean[];
  #claimed: boolean[];
  #enable: number[][];
  #threshold: number[];

  constructor(harts: number, ndev: number, private readonly lines: HartIrqLines) {
    this.sources = ndev + 1;
    this.contexts = harts * 2;
    const words = (ndev + 31) >> 5; // QEMU's bitfield_words (num_sources = ndev)
    this.#priority = new Array(this.sources).fill(0);
    this.#level = new Array(this.sources).fill(false);
    this.#pending = new Array(this.sources).fill(false);
    this.#claimed = new Array(this.sources).fill(false);
    this.#enable = Array.from({ length: this.contexts }, () => new Array(words).fill(0));
    this.#threshold = new Array(this.contexts).fill(0);
  }

  /** Drives interrupt line `source` (1..ndev) to `level`. */
  setIrq(source: number, level: boolean): void {
    if (source <= 0 || source >= this.sources) return;
    if (this.#level[source] === level) return;
    this.#level[source] = level;
    // The gateway latches a request: pending stays set until claimed even if the line drops
    // (PLIC spec; QEMU behaves the same).
    if (level && !this.#claimed[source]) this.#pending[source] = true;
    this.#update();
  }

  /** True when some context has an interrupt to take (used to wake an idle hart). */
  anyAsserted(): boolean {
    for (let c = 0; c < this.contexts; c++) if (this.#best(c) !== 0) return true;
    return false;
  }

  /** Highest-priority pending, enabled source above the context's threshold (0: none). */
  #best(ctx: number): number {
    let best = 0, bestPrio = this.#threshold[ctx];
    const en = this.#enable[ctx];
    for (let s = 1; s < this.sources; s++) {
      if (!this.#pending[s] || ((en[s >> 5] >>> (s & 31)) & 1) === 0) continue;
      if (this.#priority[s] > bestPrio) {
        best = s;
        bestPrio = this.#priority[s];
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
    if (offset < PENDING_BASE) {
      const s = offset >> 2;
      return s < this.sources ? this.#priority[s] : 0;
    }
    if (offset < ENABLE_BASE) {
      const w = (offset - PENDING_BASE) >> 2;
      let v = 0;
      for (let b = 0; b < 32; b++) {
        const s = w * 32 + b;
        if (s < this.sources && this.#pending[s]) v |= 1 << b;
      }
      return v >>> 0;
    }
    if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      if (ctx >= this.contexts || w >= this.#enable[ctx].length) return 0;
      return this.#enable[ctx][w] >>> 0;
    }
    const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
    const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (ctx >= this.contexts) return 0;
    if (reg === 0) return this.#threshold[ctx];
    if (reg === 4) return this.#claim(ctx);
    return 0;
  }

  #claim(ctx: number): number {
    const s = this.#best(ctx);
    if (s !== 0) {
      this.#pending[s] = false;
      this.#claimed[s] = true;
      this.#update();
    }
    return s;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || offset & 3) return;
    if (offset < PENDING_BASE) {
      const s = offset >> 2;
      if (s > 0 && s < this.sources) this.#priority[s] = value & PRIORITY_MASK;
    } else if (offset < ENABLE_BASE) {
      return; // pending bits are read-only
    } else if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      if (ctx >= this.contexts || w >= this.#enable[ctx].length) return;
      this.#enable[ctx][w] = value >>> 0;
    } else {
      const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
      const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (ctx >= this.contexts) return;
      if (reg === 0) this.#threshold[ctx] = value & PRIORITY_MASK;
      else if (reg === 4) this.#complete(ctx, value >>> 0);
      else return;
    }
    this.#update();
  }

  #complete(_ctx: number, s: number): void {
    // QEMU takes any id below num_sources (= ndev), enabled for the context or not; the
    // PLIC spec would ignore a completion for a source the context does not enable.
    if (s <= 0 || s >= this.sources - 1) return;
    this.#claimed[s] = false;
    if (this.#level[s]) this.#pending[s] = true;
  }

  save(): PlicState {
    return {
      priority: [...this.#priority],
      level: [...this.#level],
      pending: [...this.#pending],
      claimed: [...this.#claimed],
      enable: this.#enable.map((e) => [...e]),
      threshold: [...this.#threshold],
    };
  }

  load(s: PlicState): void {
    this.#priority = [...s.priority];
    this.#level = [...s.level];
    this.#pending = [...s.pending];
    this.#claimed = [...s.claimed];
    this.#enable = s.enable.map((e) => [...e]);
    this.#threshold = [...s.threshold];
    this.#update();
  }
}
