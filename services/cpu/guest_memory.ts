/**
 * Guest RAM and hart state in one shared `WebAssembly.Memory`, so that harts in Workers and
 * translated WebAssembly blocks see the same bytes without copies.
 *
 * Layout (byte offsets into the memory):
 *   [0, MAX_HARTS * HART_STATE_BYTES)   hart state records (see `HartLayout`)
 *   [RAM_OFFSET, RAM_OFFSET + ramSize)   guest DRAM, guest physical `DRAM_BASE` upwards
 */

/** Bytes reserved for one hart's architectural state. */
export const HART_STATE_BYTES = 4096;
/** Harts a machine can have. */
export const MAX_HARTS = 8;
/** Byte offset of guest DRAM inside the memory (64 KiB aligned = one wasm page). */
export const RAM_OFFSET = 65536;
/**
 * Largest guest RAM: host byte offsets of RAM must stay below 2^31 because the hart's TLB
 * keeps them in int32 slots (a negative slot means "not RAM").
 */
export const MAX_RAM_BYTES = 2047 * 1024 * 1024;
/** Guest physical address of DRAM on the QEMU `virt` board. */
export const DRAM_BASE = 0x8000_0000;

/**
 * Byte offsets inside one hart's state record. Registers are 64-bit values stored as two
 * little-endian 32-bit halves (lo at +0, hi at +4), so the interpreter uses Int32 arithmetic
 * and no BigInt, and a translated block can load them as i64.
 */
export const HartLayout = {
  /** x0..x31, 8 bytes each. x0 stays zero. */
  X: 0,
  /** f0..f31 raw IEEE bits (NaN-boxed singles), 8 bytes each. */
  F: 256,
  /** pc, 8 bytes. */
  PC: 512,
  /** mip: pending-interrupt bits, one i32, updated by devices with Atomics. */
  MIP: 520,
  /** Set to nonzero by another thread to make the hart leave its run loop. */
  EXIT_REQUEST: 524,
  /** First byte free for the hart module's own CSR storage. */
  CSR: 528,
} as const;

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

  constructor(ramSize: number) {
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
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const buf = this.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
    this.view = new DataView(buf);
  }

  /** Byte offset of hart `id`'s state record. */
  hartBase(id: number): number {
    if (id < 0 || id >= MAX_HARTS) throw new RangeError(`hart id ${id} out of range`);
    return id * HART_STATE_BYTES;
  }

  /** True when [paddr, paddr+len) lies inside DRAM. */
  inRam(paddr: number, len: number): boolean {
    return paddr >= DRAM_BASE && paddr + len <= DRAM_BASE + this.ramSize;
  }

  /** Copies `bytes` into guest physical memory; throws RangeError outside DRAM. */
  writePhys(paddr: number, bytes: Uint8Array): void {
    if (!this.inRam(paddr, bytes.length)) {
      throw new RangeError(
        `0x${paddr.toString(16)}+${bytes.length} is outside RAM ` +
          `[0x${DRAM_BASE.toString(16)}, 0x${(DRAM_BASE + this.ramSize).toString(16)})`,
      );
    }
    this.u8.set(bytes, paddr - DRAM_BASE + RAM_OFFSET);
  }

  /** Returns a copy of guest physical memory; throws RangeError outside DRAM. */
  readPhys(paddr: number, len: number): Uint8Array {
    if (!this.inRam(paddr, len)) throw new RangeError(`0x${paddr.toString(16)}+${len} outside RAM`);
    const o = paddr - DRAM_BASE + RAM_OFFSET;
    return this.u8.slice(o, o + len);
  }
}
