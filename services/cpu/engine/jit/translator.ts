/**
 * The translator beside the interpreter: counts how often interpretation resumes at each
 * entry point (after a taken branch or jump), translates the region at an entry once it is hot,
 * runs translated regions, and keeps them coherent with guest memory.
 *
 * - Regions are keyed by the host byte offset of their entry (physical), the virtual pc and
 *   the TLB sets of the mode they were translated in (privilege, SUM/MXR/MPRV).
 * - Regions chain through the jump cache in the hart's record (virtual pc -> table slot and
 *   mode key); a region only chains to one of its own mode. A full TLB flush empties it, a
 *   flush by address drops the entries of that virtual page.
 * - A page with translations is marked in `GuestMemory.codePages` (one bit per hart); every
 *   hart's store TLB entries for it are evicted, so every store to it (any hart's interpreter
 *   or translated code, DMA) reaches `GuestMemory.onCodeWrite`, which drops the page's regions
 *   in every translator before anything runs again.
 *
 * @example
 * ```ts
 * const hart = new Hart({ mem, hartId: 0, bus, clock, engine: "jit" });
 * hart.run(1_000_000); // hot code now runs as WebAssembly
 * hart.translator?.stats.regions;
 * ```
 */
import { type GuestMemory, RAM_OFFSET } from "../../guest_memory.ts";
import { compressedTable } from "../../hart/rvc.ts";
import {
  HartLayout,
  hiOf,
  i64Of,
  JIT_EXIT_REASON,
  JIT_JUMP_CACHE,
  JUMP_CACHE_ENTRIES,
  loOf,
  TLB_ENTRY_BYTES,
  TLB_SIZE,
} from "../../hart/state.ts";
import {
  BLOCK_BITS,
  ExitReason,
  type JitLayout,
  jumpCacheOffset,
  type RegionFn,
  RegionModuleBuilder,
  type RegionTlb,
  setJumpCacheEntry,
  type TlbView,
} from "./emit.ts";
import { discoverRegion, type Region } from "./region.ts";

/** What the translator needs of a hart (the interpreter's record views and MMU state). */
export interface TranslatedHart {
  readonly mem: GuestMemory;
  /** The hart's id (its bit in `GuestMemory.codePages`). */
  readonly hartId: number;
  /** Harts on other threads share the memory (FENCE must be a real barrier). */
  readonly sharedAtomics?: boolean;
  /** Byte offset of the hart's record. */
  readonly base: number;
  /** The record's TLB words. */
  readonly tlb: Int32Array;
  /** Word indexes in `tlb` of the current mode's sets. */
  readonly fetchSet: number;
  readonly loadSet: number;
  readonly storeSet: number;
  /** False while debug triggers need every access (and fetch) on the slow path. */
  readonly tlbFillAllowed: boolean;
  /** Working pc and instret of the interpreter. */
  pcv: number;
  instret: number;
  /** Host offset of `va` cached in TLB word set `set`; negative when not a cached DRAM page. */
  tlbLookup(va: number, set: number): number;
  /**
   * Interprets the one instruction at the record's pc for translated code (the record's pc is
   * where it leaves the hart); returns 0 when translated code may go on after it, 1 when it
   * must leave (a trap, a mode change, an MMIO access, WFI, an exit request).
   */
  jitStep(): number;
}

/** Tuning of the translator. */
export interface TranslatorOptions {
  /**
   * Entries into a pc before its region is translated (default: 100 for the hart's first 5M
   * instructions, then 1000; a value given here holds from the start).
   */
  threshold?: number;
  /** Live regions before everything is flushed (bounds memory, as QEMU's code buffer). */
  maxRegions?: number;
  /** Hot regions compiled together into one module (module count and cost stay bounded). */
  batch?: number;
  /**
   * Compile with `WebAssembly.compile` off the hart's critical path, installing the regions
   * when it finishes (the hart interprets meanwhile); false compiles at once, synchronously
   * (deterministic: tests). Default true.
   */
  async?: boolean;
}

/** Counters for benchmarks and tests. */
export interface TranslatorStats {
  /** Regions translated (all time). */
  regions: number;
  /** Guest instructions in them. */
  regionInsns: number;
  /** Bytes of WebAssembly generated. */
  wasmBytes: number;
  /** Milliseconds spent discovering, emitting and compiling. */
  compileMs: number;
  /** Guest instructions retired in translated code. */
  translatedInsns: number;
  /** Calls from TypeScript into translated code. */
  entries: number;
  /** Returns to TypeScript at an access that needed the interpreter (TLB miss, MMIO...). */
  slowExits: number;
  /** Returns to TypeScript after a helper (trap, mode change, MMIO, WFI, CSR write). */
  helperExits: number;
  /** Instructions translated code handed to the interpreter (helpers and slow accesses). */
  helperCalls: number;
  /** Pages whose regions were dropped because they were written. */
  invalidations: number;
  /** Full flushes (region cap). */
  flushes: number;
  /** Modules compiled. */
  modules: number;
  /** Regions dropped before install because their page was written meanwhile. */
  staleInstalls: number;
  /** Regions compiled synchronously because the hart kept coming back while they compiled. */
  syncCompiles: number;
}

interface Entry {
  vpc: number;
  mode: number;
  /** null: not translatable, or still compiling (`pending`). */
  fn: RegionFn | null;
  slot: number;
  page: number;
  pending: boolean;
  /** The block of the region this entry starts (0: the region's own entry). */
  block: number;
  /** The entry that owns the region's table slot (this one, or the region's entry). */
  owner: boolean;
  /** While pending: the region's compile job, and how often the hart came back for it. */
  job?: Queued;
  waits?: number;
}

/** A discovered region waiting for its module. */
interface Queued {
  entry: Entry;
  hostPc: number;
  region: Region;
  tlb: RegionTlb;
  /** The page's generation when the region was read (a write since makes it stale). */
  gen: number;
  /** When it was queued (performance.now()). */
  at: number;
}

const PAGE = 4096;
/** The entry block bits of a jump cache entry's slot word. */
const BLOCK_MASK = (1 << BLOCK_BITS) - 1;

/**
 * The mode key of a region: its fetch, load and store TLB sets (word indexes in the TLB),
 * which encode the privilege and MPRV/SUM.
 */
export function modeKey(fetchSet: number, loadSet: number, storeSet: number): number {
  const w = TLB_SIZE * 4;
  return (fetchSet / w) * 256 + (loadSet / w) * 16 + storeSet / w;
}
/**
 * Entries before a pc's region is translated. A Linux boot runs most of its code a few
 * hundred times, so compiling early costs more than it saves; measured (README.md here) 1000
 * is close to the boot's best, and hot loops cross it within microseconds.
 */
export const DEFAULT_THRESHOLD = 1000;

/**
 * The threshold for the hart's first instructions: V8 has not optimized the interpreter yet
 * (it runs several times slower and allocates), so early hot code is worth compiling sooner.
 */
const EARLY_THRESHOLD = 100;
/** Instructions retired before the threshold becomes the usual one. */
const EARLY_INSTRUCTIONS = 5_000_000;

/**
 * Returns to a still-compiling entry (each after another `threshold` hits) before it is
 * compiled synchronously on its own.
 */
const SYNC_AFTER_WAITS = 2;
/**
 * ...within this many ms of being queued (a hot loop gets there in microseconds; code that
 * comes back more slowly waits for its batch, off the hart's thread).
 */
const SYNC_WITHIN_MS = 5;
/** Hot counters (a hash of the virtual pc; collisions only make code hot sooner). */
export const HOT_ENTRIES = 1 << 16;

/** The hot counter of the pc whose low word is `pcLo`. */
export function hotIndex(pcLo: number): number {
  return (pcLo >>> 1) & (HOT_ENTRIES - 1);
}

/** One hart's translator. */
export class Translator {
  readonly stats: TranslatorStats = {
    regions: 0,
    regionInsns: 0,
    wasmBytes: 0,
    compileMs: 0,
    translatedInsns: 0,
    entries: 0,
    slowExits: 0,
    helperExits: 0,
    helperCalls: 0,
    invalidations: 0,
    flushes: 0,
    modules: 0,
    staleInstalls: 0,
    syncCompiles: 0,
  };
  /** True when the last `enter` left at an access that needs the interpreter. */
  slowExit = false;

  readonly #h: TranslatedHart;
  readonly #mem: GuestMemory;
  readonly #i32: Int32Array;
  readonly #u16: Uint16Array;
  readonly #layout: JitLayout;
  readonly #maxRegions: number;
  readonly #batch: number;
  readonly #async: boolean;
  #queue: Queued[] = [];
  /** Bumped per page on every invalidation, and for all pages on a full flush. */
  readonly #pageGen: Uint32Array;
  #flushGen = 0;
  /** Instructions of the current `enter` already added to instret (at helper calls). */
  #counted = 0;
  readonly #step: (retired: number) => number;
  readonly #ctab = compressedTable();
  readonly #entries = new Map<number, Entry[]>();
  /**
   * Entry counts by virtual pc hash, shared with the interpreter: at a taken jump it leaves
   * its loop when the target is in the jump cache or its count reached `threshold`.
   */
  readonly hotCounts: Uint16Array = new Uint16Array(HOT_ENTRIES);
  /** Entries before a region is translated (lower at first: see {@link EARLY_THRESHOLD}). */
  threshold: number;
  /** The threshold once the hart has retired `#earlyUntil` instructions. */
  readonly #lateThreshold: number;
  readonly #earlyUntil: number;
  /** Int32 index of the jump cache in the shared memory (the interpreter probes it). */
  readonly jumpCacheIndex: number;
  readonly #pageEntries = new Map<number, number[]>();
  readonly #table = new WebAssembly.Table({ element: "anyfunc", initial: 1024 });
  readonly #freeSlots: number[] = [];
  /** The table's functions by slot, for entries from TypeScript (`Table.get` is slower). */
  readonly #fns: (RegionFn | null)[] = [];
  #nextSlot = 0;
  #live = 0;
  readonly #reasonIdx: number;
  readonly #pcIdx: number;
  /** This hart's bit in `GuestMemory.codePages`. */
  readonly #codeBit: number;

  constructor(hart: TranslatedHart, opts: TranslatorOptions = {}) {
    this.#h = hart;
    this.#codeBit = 1 << hart.hartId;
    this.#mem = hart.mem;
    this.#i32 = hart.mem.i32;
    this.#u16 = hart.mem.u16;
    this.#lateThreshold = opts.threshold ?? DEFAULT_THRESHOLD;
    this.#earlyUntil = opts.threshold === undefined ? EARLY_INSTRUCTIONS : 0;
    this.threshold = this.#earlyUntil > 0
      ? Math.min(EARLY_THRESHOLD, this.#lateThreshold)
      : this.#lateThreshold;
    this.#maxRegions = opts.maxRegions ?? 16384;
    this.#batch = opts.batch ?? 32;
    this.#async = opts.async ?? true;
    this.#pageGen = new Uint32Array(hart.mem.codePages.length);
    const base = hart.base;
    this.#layout = {
      x: base + HartLayout.X,
      pc: base + HartLayout.PC,
      exitRequest: base + HartLayout.EXIT_REQUEST,
      exitReason: base + JIT_EXIT_REASON,
      jumpCache: { base: base + JIT_JUMP_CACHE, mask: JUMP_CACHE_ENTRIES - 1 },
      fences: hart.sharedAtomics,
    };
    this.jumpCacheIndex = (base + JIT_JUMP_CACHE) >> 2;
    this.#reasonIdx = (base + JIT_EXIT_REASON) >> 2;
    this.#pcIdx = (base + HartLayout.PC) >> 2;
    this.#step = (retired) => {
      this.stats.helperCalls++;
      hart.instret += retired - this.#counted;
      this.#counted = retired;
      return hart.jitStep();
    };
    this.flushJumpCache();
    const prev = this.#mem.onCodeWrite;
    this.#mem.onCodeWrite = (page) => {
      prev?.(page);
      this.invalidatePage(page);
    };
  }

  /** Regions currently translated. */
  get liveRegions(): number {
    return this.#live;
  }

  /**
   * Runs translated code at the hart's pc for up to `budget` instructions when a region
   * exists there (translating it if it just became hot). Returns the instructions retired;
   * 0 means the interpreter must run (no region, or the first access needs the slow path).
   * After it, `slowExit` tells whether the hart stopped at an access for the interpreter.
   */
  enter(budget: number): number {
    const h = this.#h;
    this.slowExit = false;
    if (!h.tlbFillAllowed) return 0;
    const pc = h.pcv, plo = pc | 0;
    const mode = modeKey(h.fetchSet, h.loadSet, h.storeSet);
    const i32 = this.#i32;
    // A jump cache hit names the region as chaining would (the cache is flushed whenever a
    // mapping or the code changes): no TLB walk, no map lookup.
    const jc = this.jumpCacheIndex + (jumpCacheOffset(plo, JUMP_CACHE_ENTRIES - 1) >> 2);
    if (i32[jc] === plo && i32[jc + 3] === mode && i32[jc + 1] === hiOf(pc)) {
      const word = i32[jc + 2];
      const hit = this.#fns[word >>> BLOCK_BITS];
      if (hit !== null && hit !== undefined) return this.#run(hit, budget, word & BLOCK_MASK);
    }
    // The fetch sets never cache MMIO: a hit is a DRAM page.
    const hostPc = h.tlbLookup(pc, h.fetchSet);
    if (hostPc < 0) return 0;
    let e = this.#find(hostPc, pc, mode);
    if (e === undefined) {
      const hi = hotIndex(plo);
      const count = this.hotCounts[hi];
      if (count < this.threshold) {
        this.hotCounts[hi] = count + 1;
        return 0;
      }
      e = this.#discover(pc, hostPc, mode);
    }
    if (e.fn === null && e.pending && e.job !== undefined) {
      // Still compiling: an entry the hart keeps coming back to is compiled right now (a hot
      // loop should not wait for the event loop); the others wait for their batch.
      e.waits = (e.waits ?? 0) + 1;
      if (e.waits >= SYNC_AFTER_WAITS && performance.now() - e.job.at < SYNC_WITHIN_MS) {
        this.#compileNow(e.job);
      }
    }
    const fn = e.fn;
    if (fn === null) {
      // Not translatable (or still compiling): count again before the next try. An install
      // puts the entry in the jump cache, which stops the interpreter there at once.
      this.hotCounts[hotIndex(plo)] = 0;
      return 0;
    }
    this.#remember(e);
    return this.#run(fn, budget, e.block);
  }

  /** Calls region `fn` at `block` and takes its exit (see `enter`). */
  #run(fn: RegionFn, budget: number, block: number): number {
    const h = this.#h, i32 = this.#i32;
    this.#counted = 0;
    const n = fn(budget, 0, block);
    this.stats.entries++;
    this.stats.translatedInsns += n;
    h.instret += n - this.#counted;
    this.#counted = 0;
    h.pcv = i64Of(i32[this.#pcIdx], i32[this.#pcIdx + 1]);
    const reason = i32[this.#reasonIdx];
    if (reason !== ExitReason.Continue) {
      i32[this.#reasonIdx] = ExitReason.Continue;
      if (reason === ExitReason.Slow) {
        this.slowExit = true;
        this.stats.slowExits++;
      } else this.stats.helperExits++;
    }
    // Helper instructions retire in the interpreter: count them as progress too.
    return n > 0 || reason === ExitReason.Helper ? Math.max(n, 1) : 0;
  }

  /** Virtual pages with entries in the jump cache (most flushes by page miss them all). */
  readonly #jcPages = new Set<number>();

  /** Empties the jump cache (virtual pcs may now mean other code). */
  flushJumpCache(): void {
    this.#jcPages.clear();
    const i = this.jumpCacheIndex;
    this.#i32.fill(1, i, i + JUMP_CACHE_ENTRIES * 4);
  }

  /** Drops the jump cache entries of the virtual page holding `va` (its mapping changed). */
  flushJumpCachePage(va: number): void {
    const vpage = va - (loOf(va) & 0xfff);
    if (!this.#jcPages.delete(vpage)) return;
    const page = loOf(va) & ~0xfff, hi = hiOf(va), i32 = this.#i32;
    const jc = this.jumpCacheIndex;
    for (let j = jc; j < jc + JUMP_CACHE_ENTRIES * 4; j += 4) {
      if ((i32[j] & ~0xfff) === page && i32[j + 1] === hi) i32[j] = 1;
    }
  }

  /** Puts a translated entry in the jump cache (regions chain to it, the interpreter stops). */
  #remember(e: Entry): void {
    this.#jcPages.add(e.vpc - (loOf(e.vpc) & 0xfff));
    const mask = JUMP_CACHE_ENTRIES - 1;
    setJumpCacheEntry(this.#i32, this.jumpCacheIndex, mask, e.vpc, e.slot, e.block, e.mode);
  }

  /** Adds `e` to the entries at `hostPc` (and, when it has code, to its page's list). */
  #addEntry(hostPc: number, e: Entry): void {
    const list = this.#entries.get(hostPc);
    if (list) list.push(e);
    else this.#entries.set(hostPc, [e]);
    if (e.fn === null && !e.pending) return;
    const pcs = this.#pageEntries.get(e.page);
    if (pcs) pcs.push(hostPc);
    else this.#pageEntries.set(e.page, [hostPc]);
  }

  /** Drops the regions made from DRAM page `page` (it was written). */
  invalidatePage(page: number): void {
    const pcs = this.#pageEntries.get(page);
    Atomics.and(this.#mem.codePages, page, ~this.#codeBit); // other threads mark this byte too
    this.#pageGen[page]++;
    if (!pcs) return;
    this.#pageEntries.delete(page);
    for (const hostPc of pcs) {
      for (const e of this.#entries.get(hostPc) ?? []) this.#release(e);
      this.#entries.delete(hostPc);
    }
    this.stats.invalidations++;
    this.flushJumpCache();
  }

  /** Drops every translation (the region cap reached). */
  flushAll(): void {
    for (const page of this.#pageEntries.keys()) {
      Atomics.and(this.#mem.codePages, page, ~this.#codeBit);
    }
    for (const list of this.#entries.values()) for (const e of list) this.#release(e);
    this.#entries.clear();
    this.#pageEntries.clear();
    this.hotCounts.fill(0);
    this.#queue = [];
    this.#flushGen++;
    this.stats.flushes++;
    this.flushJumpCache();
  }

  #release(e: Entry): void {
    e.pending = false;
    if (e.fn === null || !e.owner) return;
    this.#table.set(e.slot, null);
    this.#fns[e.slot] = null;
    this.#freeSlots.push(e.slot);
    this.#live--;
  }

  #find(hostPc: number, vpc: number, mode: number): Entry | undefined {
    const list = this.#entries.get(hostPc);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e.vpc === vpc && e.mode === mode) return e;
    }
    return undefined;
  }

  #tlbView(set: number): TlbView {
    const at = this.#h.base + HartLayout.TLB + set * 4;
    return { tagLo: at, tagHi: at + 4, host: at + 8, stride: TLB_ENTRY_BYTES, mask: TLB_SIZE - 1 };
  }

  /** Reads the region at `vpc` and queues it for compilation (or compiles it, when sync). */
  #discover(vpc: number, hostPc: number, mode: number): Entry {
    const t0 = performance.now();
    const h = this.#h, u16 = this.#u16;
    if (this.#live + this.#queue.length >= this.#maxRegions) this.flushAll();
    const off0 = loOf(vpc) & 0xfff;
    const vpage = vpc - off0, hostPage = hostPc - off0;
    const page = (hostPage - RAM_OFFSET) / PAGE;
    const fetch = (a: number): number => {
      const off = a - vpage;
      if (off < 0 || off > PAGE - 2) return -1;
      const lo = u16[(hostPage + off) >> 1];
      if ((lo & 3) !== 3 || off + 4 > PAGE) return lo;
      return (lo | (u16[(hostPage + off + 2) >> 1] << 16)) >>> 0;
    };
    const region = discoverRegion(vpc, fetch, this.#ctab, undefined, true);
    const entry: Entry = {
      vpc,
      mode,
      fn: null,
      slot: -1,
      page,
      pending: region !== null,
      block: 0,
      owner: true,
    };
    // Untranslatable entries are not tied to the page: they only send the hart to the
    // interpreter, which is always right (a full flush forgets them).
    this.#addEntry(hostPc, entry);
    if (region !== null) {
      // From now on every hart's store to the page takes the slow path (and invalidates).
      const marks = this.#mem.codePages;
      if (Atomics.or(marks, page, this.#codeBit) === 0) this.#mem.evictStores(page);
      const tlb = { load: this.#tlbView(h.loadSet), store: this.#tlbView(h.storeSet) };
      entry.job = { entry, hostPc, region, tlb, gen: this.#pageGen[page], at: performance.now() };
      this.#queue.push(entry.job);
    }
    this.stats.compileMs += performance.now() - t0;
    if (!this.#async || this.#queue.length >= this.#batch) this.compileQueued();
    return entry;
  }

  /**
   * Compiles the queued regions into one module (the hart calls this at the end of each
   * `run()`, so a batch never waits long). Async mode installs them when V8 is done.
   */
  compileQueued(): void {
    if (this.threshold !== this.#lateThreshold && this.#h.instret >= this.#earlyUntil) {
      this.threshold = this.#lateThreshold;
    }
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    this.#compile(queue, this.#async);
  }

  /** Compiles `job` alone, synchronously (its batch, if already compiling, is then stale). */
  #compileNow(job: Queued): void {
    const i = this.#queue.indexOf(job);
    if (i >= 0) this.#queue.splice(i, 1);
    this.stats.syncCompiles++;
    this.#compile([job], false);
  }

  #compile(queue: Queued[], async: boolean): void {
    const t0 = performance.now();
    const b = new RegionModuleBuilder(this.#layout, this.#mem.memory.buffer.byteLength / 65536, {
      step: true,
    });
    for (const q of queue) b.add(q.region, q.tlb, q.entry.mode);
    const bytes = b.build();
    this.stats.wasmBytes += bytes.length;
    this.stats.modules++;
    this.stats.compileMs += performance.now() - t0; // install adds its own time
    const flushGen = this.#flushGen;
    const install = (module: WebAssembly.Module) => {
      const t1 = performance.now();
      const inst = new WebAssembly.Instance(module, {
        env: { memory: this.#mem.memory, table: this.#table, step: this.#step },
      });
      queue.forEach((q, i) => {
        const e = q.entry;
        if (!e.pending || flushGen !== this.#flushGen || this.#pageGen[e.page] !== q.gen) {
          this.stats.staleInstalls++;
          return;
        }
        e.pending = false;
        e.job = undefined;
        e.fn = inst.exports[`r${i}`] as RegionFn;
        e.slot = this.#freeSlots.pop() ?? this.#nextSlot++;
        if (e.slot >= this.#table.length) this.#table.grow(this.#table.length);
        this.#table.set(e.slot, e.fn);
        this.#fns[e.slot] = e.fn;
        this.#remember(e);
        this.#live++;
        this.stats.regions++;
        this.stats.regionInsns += q.region.insnCount;
        // Every block start the function can be entered at is an entry too (no second
        // region for them).
        const delta = q.hostPc - e.vpc, enterable = b.enterable[i];
        q.region.blocks.forEach((blk, block) => {
          if (block === 0 || !enterable[block]) return;
          const hostPc = blk.start + delta;
          const old = this.#find(hostPc, blk.start, e.mode);
          if (old !== undefined && (old.fn !== null || old.pending)) return;
          this.#addEntry(hostPc, { ...e, vpc: blk.start, block, owner: false });
        });
      });
      this.stats.compileMs += performance.now() - t1;
    };
    if (async) {
      WebAssembly.compile(bytes).then(install, (err) => {
        // A module the emitter made that V8 refuses is a translator bug: say so, keep running.
        console.error(`vmesh: translator: a module failed to compile: ${err}`);
      });
    } else {
      install(new WebAssembly.Module(bytes));
    }
  }
}
