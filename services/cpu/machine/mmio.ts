/**
 * The narrow interface between the hart's physical address space and device models
 * (the Firecracker-style "bus device" trait). Accesses wider than 4 bytes are split by the
 * bus into 4-byte halves, low half first at `offset`, high half at `offset + 4`.
 */
export interface MmioDevice {
  /** Device name for the device tree and diagnostics. */
  readonly name: string;
  /** Reads `size` bytes at `offset` from the device base; returns the unsigned value. */
  read(offset: number, size: 1 | 2 | 4): number;
  /** Writes the low `size` bytes of `value` at `offset` from the device base. */
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

/** A device model whose state can be frozen and thawed (snapshots, migration). */
export interface Stateful<S> {
  /** Plain, structured-clone-able copy of all state. */
  save(): S;
  /** Restores what `save()` produced. */
  load(state: S): void;
}

/**
 * What a hart sees of the machine outside DRAM. DRAM itself is accessed directly through
 * `GuestMemory` views (the fast path); everything else comes here.
 */
export interface PhysicalBus {
  /**
   * Loads `size` (1, 2 or 4) bytes at physical address `paddr` outside DRAM.
   * Returns the unsigned value, or -1 when nothing is mapped there (an access fault).
   */
  load(paddr: number, size: 1 | 2 | 4): number;
  /** Stores to a physical address outside DRAM. Returns false when nothing is mapped there. */
  store(paddr: number, size: 1 | 2 | 4, value: number): boolean;
}

/** Interrupt bits of `mip`/`mie` (privileged spec 1.12, section 3.1.9). */
export const Irq = {
  SSIP: 1 << 1,
  MSIP: 1 << 3,
  STIP: 1 << 5,
  MTIP: 1 << 7,
  SEIP: 1 << 9,
  MEIP: 1 << 11,
} as const;
