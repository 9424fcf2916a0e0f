/**
 * Places a virtio device at one of the `virt` board's virtio-mmio slots: its memory-map
 * region (base, size, PLIC source, device tree node) and its transport wired to the PLIC.
 * This is the hook the machine calls for each configured virtio device.
 */

import type { GuestMemory } from "../guest_memory.ts";
import { type MemoryRegion, VIRTIO_SLOTS, virtioSlot } from "../machine/memory_map.ts";
import type { MmioDevice, Stateful } from "../machine/mmio.ts";
import type { VirtioDevice } from "./device.ts";
import {
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VENDOR,
  VirtioMmioReg,
  VirtioMmioTransport,
} from "./mmio_transport.ts";

/** A device and the slot (0..7) it occupies. */
export interface VirtioSlotSpec {
  slot: number;
  device: VirtioDevice;
  /** QEMU's legacy (Version 1) transport, as QEMU `virt` has by default; default false. */
  legacy?: boolean;
}

/** What the machine maps and lists in its device tree. */
export interface MountedVirtio {
  /** The slot number (0..7). */
  slot: number;
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
  const transport = new VirtioMmioTransport(
    memory,
    spec.device,
    (level) => {
      plic.setIrq(source, level);
      onIrq?.(level);
    },
    `virtio_mmio@${region.base.toString(16)}`,
    { legacy: spec.legacy },
  );
  return { slot: spec.slot, region, transport };
}

/**
 * A virtio-mmio slot with nothing plugged in, as QEMU `virt` maps all eight: MagicValue,
 * Version (2, or 1 as QEMU's default legacy transport) and VendorID read as usual, every other register reads 0 (DeviceID 0: "no
 * device", so a driver probing the slot skips it) and writes are ignored. Without it a guest
 * that probes a free slot takes an access fault, which QEMU never raises there.
 *
 * @example
 * ```ts
 * const bus = new MmioBus();
 * for (const region of freeVirtioSlots([0])) bus.map(region.base, region.size, new EmptyVirtioMmio());
 * bus.load(0x10002000, 4); // 0x74726976 ("virt"); DeviceID at 0x10002008 reads 0
 * ```
 */
export class EmptyVirtioMmio implements MmioDevice, Stateful<Record<string, never>> {
  readonly name: string;
  /** The Version register: 2, or 1 for QEMU's legacy transport. */
  readonly version: 1 | 2;

  constructor(name = "virtio_mmio", version: 1 | 2 = 2) {
    this.name = name;
    this.version = version;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (size !== 4) return 0;
    switch (offset) {
      case VirtioMmioReg.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VirtioMmioReg.VERSION:
        return this.version;
      case VirtioMmioReg.VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
      default:
        return 0;
    }
  }

  write(_offset: number, _size: 1 | 2 | 4, _value: number): void {}

  save(): Record<string, never> {
    return {};
  }

  load(_state: Record<string, never>): void {}
}

/**
 * The regions of the slots (0..7) not in `used`, in slot order: where a machine maps an
 * `EmptyVirtioMmio` (and, as QEMU, lists a `virtio_mmio` node in the device tree).
 *
 * @example
 * ```ts
 * freeVirtioSlots([0, 2]).map((r) => r.base); // 0x10002000, 0x10004000, ... 0x10008000
 * ```
 */
export function freeVirtioSlots(used: readonly number[]): MemoryRegion[] {
  const out: MemoryRegion[] = [];
  for (let n = 0; n < VIRTIO_SLOTS; n++) if (!used.includes(n)) out.push(virtioSlot(n));
  return out;
}
