/**
 * Guest RAM and hart state in one shared `WebAssembly.Memory`, so that harts in Workers and
 * translated WebAssembly blocks see the same bytes without copies.
 *
 * Layout (byte offsets into the memory):
 *   [0, MAX_HARTS * HART_STATE_BYTES)   hart state records (see hart/state.ts, `HartLayout`)
 *   [RAM_OFFSET, RAM_OFFSET + ramSize)   guest DRAM, guest physical `DRAM_BASE` upwards
 */
import { HART_RECORD_BYTES, HartLayout } from "./hart/state.ts";

export { HartLayout };

/** Bytes reserved for one hart's state record (registers, CSRs, TLB), a power of two. */
export const HART_STATE_BYTES = 512 * 1024;
if (HART_RECORD_BYTES > HART_STATE_BYTES) {
  throw new Error(`hart record (${HART_RECORD_BYTES} bytes) exceeds its ${HART_STATE_BYTES}`);
}
/** Harts a machine can have. */
export const MAX_HARTS = 8;
/** Byte offset of guest DRAM inside the memory (64 KiB aligned = whole wasm pages). */
export const RAM_OFFSET = MAX_HARTS * HART_STATE_BYTES;
/**
 * Largest guest RAM: host byte offsets of RAM must stay below 2^31 because the hart's TLB
 * keeps them in int32 slots (a negative slot means "not RAM").
 */
export const MAX_RAM_BYTES = 2 ** 31 - RAM_OFFSET;
/** Guest physical address of DRAM on the QEMU `virt` board. */
export const DRAM_BASE = 0x8000_0000;

/**
 * Host byte offset (into the shared memory) of guest physical address `paddr` in DRAM. No
 * range check: callers check `inRam` first.
 *
 * @example
 * ```ts
 * const off = hostOffset(0x8000_1000); // RAM_OFFSET + 0x1000
 * ```
 */
export function hostOffset(paddr: number): number {
  return paddr - DRAM_BASE + RAM_OFFSET;
}

/**
 * Guest physical address of host byte offset `offset` (the inverse of `hostOffset`).
 *
 * @example
 * ```ts
 * guestPhysical(hostOffset(0x8000_1000)) === 0x8000_1000;
 * ```
 */
export function guestPhysical(offset: number): number {
  return offset - RAM_OFFSET + DRAM_BASE;
}

/** Guest DRAM plus hart state in a shared WebAssembly memory, with typed views over it. */
export class GuestMemory {
  /** The shared memory itself. */
  readonly memory: WebAssembly.Memory;
  /** Bytes of guest DRAM. */
  readonly ramSize: number;
  /** Views over the whole memory. */
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly view: DataView;
  /**
   * One byte per 4 KiB page of DRAM: bit h set while hart h's translator has code made from
   * the page. Writes to a page with any bit set, by a hart's store path or by DMA, report it
   * through `onCodeWrite`, so stale translations are dropped before the next run.
   */
  readonly codePages: Uint8Array;
  /** Called with the DRAM page index when a write reaches a page marked in `codePages`. */
  onCodeWrite: ((page: number) => void) | undefined = undefined;
  /**
   * Called by `evictStores` too: harts on other threads (`--smp-threads`) have their store
   * TLBs there, out of this thread's reach.
   */
  onEvictStores: ((page: number) => void) | undefined = undefined;
  /** Per hart id: drops that hart's cached store translations of a DRAM page. */
  readonly #storeEvictors = new Map<number, (page: number) => void>();
  /**
   * Live migration's dirty log: one byte per 4 KiB page of DRAM, set to 1 by every write that
   * reaches the slow store path (`codeWrite`) or DMA (`noteWrite`) while `dirtyLog` is on.
   * Whoever clears it must also drop every hart's store TLB entries (see
   * `migration/dirty_log.ts`), so the next store to each page takes the slow path again (the
   * trick of QEMU's TLB_NOTDIRTY).
   */
  readonly dirtyPages: Uint8Array;
  /** True while writes are logged in `dirtyPages`. */
  dirtyLog = false;

  /**
   * Makes the shared memory for `ramSize` bytes of DRAM, or wraps `memory` (one made by
   * another GuestMemory, e.g. received by a Worker) when given, with that GuestMemory's
   * `codePages.buffer` as `codePages`.
   */
  /**
   * Guest physical address of the first RAM byte: DRAM_BASE on the RISC-V `virt` board, 0 for
   * an x86 KVM guest (services/cpu/kvm), whose RAM is this memory registered with KVM.
   */
  readonly physBase: number;
  /** Add to a guest physical RAM address to get its byte offset in `memory`. */
  readonly hostDelta: number;

  constructor(
    ramSize: number,
    memory?: WebAssembly.Memory,
    codePages?: SharedArrayBuffer,
    physBase: number = DRAM_BASE,
  ) {
    this.physBase = physBase;
    this.hostDelta = RAM_OFFSET - physBase;
    if (!Number.isInteger(ramSize) || ramSize <= 0 || ramSize % 4096 !== 0) {
      throw new RangeError(`RAM size must be a positive multiple of 4 KiB, got ${ramSize}`);
    }
    if (ramSize > MAX_RAM_BYTES) {
      throw new RangeError(
        `RAM size ${ramSize / 1048576} MiB exceeds the supported ${MAX_RAM_BYTES / 1048576} MiB`,
      );
    }
    this.ramSize = ramSize;
    const pages = Math.ceil((RAM_OFFSET + ramSize) / 65536);
    if (memory) {
      if (memory.buffer.byteLength !== pages * 65536) {
        throw new RangeError(
          `the memory has ${memory.buffer.byteLength} bytes, not ${pages * 65536} for this RAM`,
        );
      }
      this.memory = memory;
    } else {
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    }
    const buf = this.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
    this.view = new DataView(buf);
    // Shared, so harts in Workers see each other's marks.
    this.codePages = new Uint8Array(codePages ?? new SharedArrayBuffer(ramSize / 4096));
    this.dirtyPages = new Uint8Array(ramSize / 4096);
  }

  /** Byte offset of hart `id`'s state record. */
  hartBase(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_HARTS) {
      throw new RangeError(`hart id ${id} out of range`);
    }
    return id * HART_STATE_BYTES;
  }

  /**
   * Asks hart `id` to leave its run loop soon (an Atomics store on its EXIT_REQUEST word):
   * works from any thread that shares this memory.
   */
  kick(id: number): void {
    Atomics.store(this.i32, (this.hartBase(id) + HartLayout.EXIT_REQUEST) >> 2, 1);
  }

  /** Registers how hart `id` drops its cached store translations of a DRAM page. */
  addStoreEvictor(id: number, evict: (page: number) => void): void {
    this.#storeEvictors.set(id, evict);
  }

  /**
   * Makes every hart's later stores to DRAM page `page` take the slow path (the page now holds
   * translated code, and a store from any hart must drop it).
   */
  evictStores(page: number): void {
    for (const evict of this.#storeEvictors.values()) evict(page);
    this.onEvictStores?.(page);
  }

  /** True when [paddr, paddr+len) lies inside DRAM. */
  inRam(paddr: number, len: number): boolean {
    return paddr >= this.physBase && paddr + len <= this.physBase + this.ramSize;
  }

  /**
   * Reports a write to the DRAM page holding `paddr` (inside DRAM) when it has translated
   * code; returns whether it had. Logs the page as dirty while `dirtyLog` is on.
   */
  codeWrite(paddr: number): boolean {
    const page = (paddr - this.physBase) / 4096 | 0;
    if (this.dirtyLog) this.dirtyPages[page] = 1;
    if (this.codePages[page] === 0) return false;
    this.onCodeWrite?.(page);
    return true;
  }

  /**
   * Reports a device (DMA) or loader write of [paddr, paddr+len) to the code-page tracker
   * (and the dirty log).
   */
  noteWrite(paddr: number, len: number): void {
    if ((!this.onCodeWrite && !this.dirtyLog) || len <= 0) return;
    const first = Math.floor((paddr - this.physBase) / 4096);
    const last = Math.floor((paddr - this.physBase + len - 1) / 4096);
    for (let p = Math.max(first, 0); p <= last && p < this.codePages.length; p++) {
      this.codeWrite(this.physBase + p * 4096);
    }
  }

  /** Copies `bytes` into guest physical memory; throws RangeError outside DRAM. */
  writePhys(paddr: number, bytes: Uint8Array): void {
    if (!this.inRam(paddr, bytes.length)) {
      throw new RangeError(
        `0x${paddr.toString(16)}+${bytes.length} is outside RAM ` +
          `[0x${this.physBase.toString(16)}, 0x${(this.physBase + this.ramSize).toString(16)})`,
      );
    }
    this.u8.set(bytes, paddr + this.hostDelta);
    this.noteWrite(paddr, bytes.length);
  }

  /** Returns a copy of guest physical memory; throws RangeError outside DRAM. */
  readPhys(paddr: number, len: number): Uint8Array {
    if (!this.inRam(paddr, len)) throw new RangeError(`0x${paddr.toString(16)}+${len} outside RAM`);
    const o = paddr + this.hostDelta;
    return this.u8.slice(o, o + len);
  }

  /** The guest DRAM bytes (a view, not a copy). */
  ram(): Uint8Array {
    return this.u8.subarray(RAM_OFFSET, RAM_OFFSET + this.ramSize);
  }
}
