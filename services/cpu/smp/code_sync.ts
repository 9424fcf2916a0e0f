/**
 * Translated code kept right across hart threads. A store (or DMA) to a DRAM page that other
 * harts translated code from posts the page to each of them (a per-hart bitmap of stale pages
 * in a SharedArrayBuffer) and kicks them; a page that just became code posts a store-TLB
 * eviction to every other hart the same way (their next store to it takes the slow path and
 * reports it). Each hart drains its bitmaps at the top of its run loop, before it runs on, and
 * counts its drains (an epoch), so a hart that posted evictions can tell when every other hart
 * has taken them (`epochs`, `evicted`).
 */

/** Bitmaps per hart: stale code pages, then pages whose store TLB entries must go. */
const STALE = 0, EVICT = 1;
/** Words per hart before its bitmaps: the posted flag, the drain epoch, the sleeping flag. */
const FLAG = 0, EPOCH = 1, SLEEPING = 2, HEAD = 3;

/** The posted pages of every hart. */
export class CodeSync {
  readonly shared: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #words: number;

  /** For `harts` harts over `pages` DRAM pages; `shared` from another thread's CodeSync. */
  constructor(readonly harts: number, pages: number, shared?: SharedArrayBuffer) {
    this.#words = Math.ceil(pages / 32);
    this.shared = shared ?? new SharedArrayBuffer(harts * (HEAD + 2 * this.#words) * 4);
    this.#w = new Int32Array(this.shared);
  }

  #base(h: number): number {
    return h * (HEAD + 2 * this.#words);
  }

  #post(h: number, kind: number, page: number): void {
    const b = this.#base(h);
    Atomics.or(this.#w, b + HEAD + kind * this.#words + (page >> 5), 1 << (page & 31));
    Atomics.store(this.#w, b + FLAG, 1);
  }

  /**
   * DRAM page `page` was written by hart `from` (-1: the main thread, DMA): every other hart
   * whose bit is set in `codePages` drops its code from the page before it runs on.
   */
  codeWritten(codePages: Uint8Array, page: number, from: number, kick: (h: number) => void) {
    const bits = Atomics.load(codePages, page) & ~(from >= 0 ? 1 << from : 0);
    for (let h = 0; h < this.harts; h++) {
      if ((bits >> h) & 1) {
        this.#post(h, STALE, page);
        kick(h);
      }
    }
  }

  /** Page `page` became code for hart `from`: every other hart evicts its stores to it. */
  storesToEvict(page: number, from: number, kick: (h: number) => void): void {
    for (let h = 0; h < this.harts; h++) {
      if (h === from) continue;
      this.#post(h, EVICT, page);
      kick(h);
    }
  }

  /**
   * After `storesToEvict` from hart `from`: each other hart's drain epoch, or -1 for a hart
   * asleep in WFI (it drains before it stores again). See `evicted`.
   */
  epochs(from: number): number[] {
    return Array.from({ length: this.harts }, (_, h) => {
      if (h === from) return -1;
      const b = this.#base(h);
      return Atomics.load(this.#w, b + SLEEPING) ? -1 : Atomics.load(this.#w, b + EPOCH);
    });
  }

  /**
   * True once every hart of `epochs` (taken after a post) has drained it: a drain that began
   * after the post ends at epoch + 2 (the one running at the post may have missed it).
   */
  evicted(epochs: number[]): boolean {
    return epochs.every((e, h) => e < 0 || Atomics.load(this.#w, this.#base(h) + EPOCH) >= e + 2);
  }

  /** Hart `h` sleeps in WFI (true) or runs again (false: it drains before running). */
  sleeping(h: number, asleep: boolean): void {
    Atomics.store(this.#w, this.#base(h) + SLEEPING, asleep ? 1 : 0);
  }

  /** Hart `h` takes its posted pages: evictions first, then stale code. */
  drain(h: number, evict: (page: number) => void, stale: (page: number) => void): void {
    const w = this.#w, b = this.#base(h);
    if (Atomics.load(w, b + FLAG) !== 0) this.#take(b, evict, stale);
    Atomics.add(w, b + EPOCH, 1);
  }

  #take(b: number, evict: (page: number) => void, stale: (page: number) => void): void {
    const w = this.#w;
    Atomics.store(w, b + FLAG, 0);
    for (const kind of [EVICT, STALE]) {
      const at = b + HEAD + kind * this.#words, take = kind === EVICT ? evict : stale;
      for (let i = 0; i < this.#words; i++) {
        if (Atomics.load(w, at + i) === 0) continue;
        let v = Atomics.exchange(w, at + i, 0);
        while (v !== 0) {
          const bit = 31 - Math.clz32(v & -v);
          v &= v - 1;
          take(i * 32 + bit);
        }
      }
    }
  }
}
