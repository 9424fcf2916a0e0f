/**
 * Test support for the translator before it is wired into the engine: runs a program with
 * translated regions where they exist and the interpreter (one instruction) elsewhere, over an
 * identity-mapped TLB of its own kept in the top 32 KiB of guest RAM, so the emitter can be
 * checked against the interpreter instruction for instruction.
 */
import { DRAM_BASE, type GuestMemory, HartLayout, RAM_OFFSET } from "../../guest_memory.ts";
import { compressedTable } from "../../hart/rvc.ts";
import { TLB_EMPTY } from "../../hart/state.ts";
import type { TestMachine } from "../../hart/test_support.ts";
import {
  ExitReason,
  type JitLayout,
  type RegionFn,
  RegionModuleBuilder,
  setJumpCacheEntry,
  type TlbView,
} from "./emit.ts";
import { discoverRegion, type Region } from "./region.ts";

const TLB_ENTRIES = 1024;
const ENTRY = 16;
const JUMP_CACHE_ENTRIES = 512;
/** Bytes at the top of RAM the test TLB and its scratch words take (not for programs). */
export const RESERVED_TOP = 32 * 1024;

/** Counts of what ran where. */
export interface RunStats {
  regions: number;
  /** Calls from TypeScript into translated code. */
  entries: number;
  translatedInsns: number;
  interpretedInsns: number;
  slowExits: number;
}

/** Translator-plus-interpreter runner over a hart of `hart/test_support.ts`. */
export class RegionRunner {
  readonly stats: RunStats = {
    regions: 0,
    entries: 0,
    translatedInsns: 0,
    interpretedInsns: 0,
    slowExits: 0,
  };
  readonly #m: TestMachine;
  readonly #layout: JitLayout;
  readonly #tlb: TlbView;
  readonly #cache = new Map<number, RegionFn | null>();
  readonly #table = new WebAssembly.Table({ element: "anyfunc", initial: 64 });
  #slots = 0;
  readonly #jcBase: number;
  readonly #ctab = compressedTable();
  readonly #reasonIdx: number;
  readonly #pcIdx: number;
  readonly #exitIdx: number;

  /** `chain`: regions tail-call each other through a jump cache (else every exit returns). */
  constructor(m: TestMachine, chain = true) {
    this.#m = m;
    const mem = m.mem;
    const base = mem.hartBase(0);
    const top = RAM_OFFSET + mem.ramSize - RESERVED_TOP;
    this.#jcBase = top + 64 + TLB_ENTRIES * ENTRY;
    this.#layout = {
      x: base + HartLayout.X,
      pc: base + HartLayout.PC,
      exitRequest: base + HartLayout.EXIT_REQUEST,
      exitReason: top,
      jumpCache: chain ? { base: this.#jcBase, mask: JUMP_CACHE_ENTRIES - 1 } : undefined,
    };
    this.#reasonIdx = top >> 2;
    this.#pcIdx = (base + HartLayout.PC) >> 2;
    this.#exitIdx = (base + HartLayout.EXIT_REQUEST) >> 2;
    const tlbBase = top + 64;
    this.#tlb = {
      tagLo: tlbBase,
      tagHi: tlbBase + 4,
      host: tlbBase + 8,
      stride: ENTRY,
      mask: TLB_ENTRIES - 1,
    };
    // Identity map the RAM below the reserved top (as far as the TLB reaches).
    const pages = Math.min(TLB_ENTRIES, (mem.ramSize - RESERVED_TOP) / 4096);
    const i32 = mem.i32;
    // Empty jump cache entries hold an odd pc, which no instruction has.
    i32.fill(1, this.#jcBase >> 2, (this.#jcBase + JUMP_CACHE_ENTRIES * 16) >> 2);
    i32.fill(TLB_EMPTY, tlbBase >> 2, (tlbBase + TLB_ENTRIES * ENTRY) >> 2);
    for (let p = 0; p < pages; p++) {
      const va = DRAM_BASE + p * 4096;
      const e = (tlbBase + ((va / 4096) & (TLB_ENTRIES - 1)) * ENTRY) >> 2;
      i32[e] = va | 0;
      i32[e + 1] = 0;
      i32[e + 2] = RAM_OFFSET + p * 4096;
    }
  }

  #pc(): number {
    const i32 = this.#m.mem.i32;
    return i32[this.#pcIdx + 1] * 4294967296 + (i32[this.#pcIdx] >>> 0);
  }

  #compile(pc: number): RegionFn | null {
    const mem: GuestMemory = this.#m.mem;
    const fetch = (a: number) => {
      const off = a - DRAM_BASE;
      if (off < 0 || off + 4 > mem.ramSize - RESERVED_TOP) return -1;
      return mem.view.getUint32(RAM_OFFSET + off, true);
    };
    const region: Region | null = discoverRegion(pc, fetch, this.#ctab);
    if (!region) return null;
    const b = new RegionModuleBuilder(this.#layout, mem.memory.buffer.byteLength / 65536);
    const i = b.add(region, { load: this.#tlb, store: this.#tlb });
    this.stats.regions++;
    const fn = b.instantiate(mem.memory, this.#table)[i];
    if (this.#layout.jumpCache) {
      if (this.#slots === this.#table.length) this.#table.grow(this.#table.length);
      const slot = this.#slots++;
      this.#table.set(slot, fn);
      // Mode key 0: what RegionModuleBuilder.add defaults to.
      setJumpCacheEntry(mem.i32, this.#jcBase >> 2, JUMP_CACHE_ENTRIES - 1, pc, slot, 0, 0);
    }
    return fn;
  }

  /** Runs until the hart's exit request is set or `maxInsns` instructions retired. */
  run(maxInsns: number, budget = 1000): void {
    const hart = this.#m.hart, i32 = this.#m.mem.i32;
    // The interpreter's pc lives in the record once it has returned from run().
    hart.run(0);
    // Bounded also in steps, so a trap loop that retires nothing cannot spin forever.
    for (let steps = 0; steps < maxInsns; steps++) {
      if (hart.instret >= maxInsns || Atomics.load(i32, this.#exitIdx) !== 0) break;
      const pc = this.#pc();
      let fn = this.#cache.get(pc);
      if (fn === undefined) {
        fn = this.#compile(pc);
        this.#cache.set(pc, fn);
      }
      if (fn) {
        const n = fn(budget, 0, 0);
        this.stats.entries++;
        hart.instret += n;
        this.stats.translatedInsns += n;
        const slow = i32[this.#reasonIdx] === ExitReason.Slow;
        i32[this.#reasonIdx] = 0;
        if (!slow) continue;
        this.stats.slowExits++;
      }
      hart.setPc(BigInt(this.#pc()));
      const before = hart.instret;
      hart.run(1);
      this.stats.interpretedInsns += hart.instret - before;
    }
  }
}
