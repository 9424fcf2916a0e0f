/**
 * The dirty-page log of live migration, over `GuestMemory.dirtyPages`: every write that takes
 * the slow store path (the interpreter's and the translator's TLB misses, page-table A/D
 * updates) or comes from DMA marks its page. Clearing the log also drops every hart's cached
 * translations, so the first store to each page after it misses the TLB and is seen (QEMU's
 * TLB_NOTDIRTY); after that store the page is cached again and costs nothing until the next
 * round.
 * @module
 */
import type { GuestMemory } from "../guest_memory.ts";

/** A hart whose cached translations can be dropped (the interpreter's and translator's `Hart`). */
export interface TlbFlushable {
  flushTlb(): void;
}

/** Dirty pages of one machine's DRAM between rounds. */
export class DirtyLog {
  constructor(readonly mem: GuestMemory, readonly harts: readonly TlbFlushable[]) {}

  /** Starts logging with every page clean. */
  start(): void {
    this.mem.dirtyPages.fill(0);
    this.mem.dirtyLog = true;
    this.#flush();
  }

  /** Pages written since `start` or the last `take`, in ascending order; clears them. */
  take(): number[] {
    const d = this.mem.dirtyPages;
    const out: number[] = [];
    for (let p = 0; p < d.length; p++) if (d[p] !== 0) out.push(p);
    d.fill(0);
    this.#flush();
    return out;
  }

  /** How many pages are dirty now. */
  count(): number {
    const d = this.mem.dirtyPages;
    let n = 0;
    for (let p = 0; p < d.length; p++) n += d[p];
    return n;
  }

  /** Stops logging (stores take the fast path again once cached). */
  stop(): void {
    this.mem.dirtyLog = false;
  }

  #flush(): void {
    for (const h of this.harts) h.flushTlb();
  }
}
