/**
 * The physical address space outside DRAM: dispatches loads and stores to the device whose
 * range holds the address. Ranges are checked in the order they were added (put the busiest
 * first: UART, CLINT, PLIC); a miss returns -1 / false, which the hart turns into an access fault.
 */
import type { MmioDevice, PhysicalBus } from "./mmio.ts";

interface Mapping {
  base: number;
  end: number;
  device: MmioDevice;
}

/** A bus of MMIO devices. */
export class MmioBus implements PhysicalBus {
  #maps: Mapping[] = [];

  /** Maps `device` at [base, base + size); overlapping an existing mapping is an error. */
  map(base: number, size: number, device: MmioDevice): void {
    const end = base + size;
    for (const m of this.#maps) {
      if (base < m.end && m.base < end) {
        throw new RangeError(`${device.name} at 0x${base.toString(16)} overlaps ${m.device.name}`);
      }
    }
    this.#maps.push({ base, end, device });
  }

  /** Removes the mapping of `device` (e.g. a hot-unplugged virtio slot). */
  unmap(device: MmioDevice): void {
    this.#maps = this.#maps.filter((m) => m.device !== device);
  }

  /** [base, end) of every mapping, in bus order. */
  ranges(): [number, number][] {
    return this.#maps.map((m) => [m.base, m.end]);
  }

  /** The device at `paddr` and the offset into it, if any. */
  find(paddr: number): { device: MmioDevice; offset: number } | undefined {
    for (const m of this.#maps) {
      if (paddr >= m.base && paddr < m.end) return { device: m.device, offset: paddr - m.base };
    }
    return undefined;
  }

  load(paddr: number, size: 1 | 2 | 4): number {
    const maps = this.#maps;
    for (let i = 0; i < maps.length; i++) {
      const m = maps[i];
      if (paddr >= m.base && paddr + size <= m.end) {
        return m.device.read(paddr - m.base, size) >>> 0;
      }
    }
    return -1;
  }

  store(paddr: number, size: 1 | 2 | 4, value: number): boolean {
    const maps = this.#maps;
    for (let i = 0; i < maps.length; i++) {
      const m = maps[i];
      if (paddr >= m.base && paddr + size <= m.end) {
        m.device.write(paddr - m.base, size, value);
        return true;
      }
    }
    return false;
  }
}
