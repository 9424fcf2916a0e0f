/**
 * A Worker for plic_test.ts: hart `hart` claims, acks (drops the line) and completes on a PLIC
 * over shared state until told to stop, counting each source it claimed (a source claimed twice
 * for one raise would show in the totals).
 */
import { GuestMemory } from "../guest_memory.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { Plic } from "./plic.ts";

/** What the Worker is started with. */
export interface ClaimWorkerStart {
  hart: number;
  harts: number;
  plic: SharedArrayBuffer;
  memory: WebAssembly.Memory;
  /** Int32 words: [0] stop flag, then per-source claim counts of this hart at 1 + hart * 97
   * (its source 0 word: started). */
  counts: SharedArrayBuffer;
}

const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ClaimWorkerStart>) => void) | null;
  postMessage(m: unknown): void;
};
self_.onmessage = (e) => {
  const s = e.data;
  const plic = new Plic(s.harts, 96, new HartIrqLines(new GuestMemory(4096, s.memory)), s.plic);
  const counts = new Int32Array(s.counts);
  const claim = 0x20_0004 + 2 * s.hart * 0x1000;
  Atomics.add(counts, 1 + s.hart * 97, 1); // started (source 0 is never claimed)
  while (Atomics.load(counts, 0) === 0) {
    const src = plic.read(claim, 4);
    if (src === 0) continue;
    plic.setIrq(src, false); // the device's ack (the line drops before the completion)
    plic.write(claim, 4, src);
    // Counted once completed: the main thread raises the line again only after that.
    Atomics.add(counts, 1 + s.hart * 97 + src, 1);
  }
  self_.postMessage("done");
};
