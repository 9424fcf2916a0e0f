/**
 * Places a virtio device at one of the `virt` board's virtio-mmio slots: its memory-map
 * region (base, size, PLIC source, device tree node) and its transport wired to the PLIC.
 * This is the hook the machine calls for each configured virtio device.
 */

import type { GuestMemory } from "../guest_memory.ts";
import { type MemoryRegion, virtioSlot } from "../machine/memory_map.ts";
import type { VirtioDevice } from "./device.ts";
import { VirtioMmioTransport } from "./mmio_transport.ts";

/** A device and the slot (0..7) it occupies. */
export interface VirtioSlotSpec {
  slot: number;
  device: VirtioDevice;
}

/** What the machine maps and lists in its device tree. */
export interface MountedVirtio {
  /** The slot's region (for `MmioBus.map` and the device tree). */
  region: MemoryRegion;
  /** The MMIO device to map at `region.base`. */
  transport: VirtioMmioTransport;
}

/** Something that takes interrupt lines, such as the PLIC. */
export interface IrqController {
  setIrq(source: number, level: boolean): void;
}

/**
 * Builds the transport for `spec` on slot `spec.slot`, its interrupt wired to `plic` at the
 * slot's source. `onIrq` is called after every line change (e.g. to wake an idle run loop).
 * Throws a RangeError for a slot outside 0..7.
 */
export function mountVirtio(
  memory: GuestMemory,
  spec: VirtioSlotSpec,
  plic: IrqController,
  onIrq?: (level: boolean) => void,
): MountedVirtio {
  const region = virtioSlot(spec.slot);
  const source = region.irq!;
  const transport = new VirtioMmioTransport(memory, spec.device, (level) => {
    plic.setIrq(source, level);
    onIrq?.(level);
  }, `virtio_mmio@${region.base.toString(16)}`);
  return { region, transport };
}
