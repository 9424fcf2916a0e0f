/**
 * Virtio over MMIO, version 2 (virtio 1.2, section 4.2): the register file a guest driver
 * talks to, feature negotiation, the device status machine, the interrupt status with its
 * level output, and the virtqueue configuration. Device behaviour lives in a `VirtioDevice`.
 *
 * Where QEMU 7.2 (`-global virtio-mmio.force-legacy=false`) is more lenient than the spec, this
 * transport is too (see ../devices/README.md): FEATURES_OK is kept for any feature set (bits
 * the device did not offer are dropped, VERSION_1 is not required), DRIVER_OK works without
 * FEATURES_OK, any nonzero feature-select value selects word 1, QueueNum takes any size from 1
 * to 1024 and a queue the driver never sized keeps the device's default.
 *
 * With `legacy: true` the window is QEMU's default legacy transport instead (Version 1, virtio
 * 1.2 section 4.2.4): GuestPageSize, QueueAlign and QueuePFN place the three rings in one area
 * as QEMU's virtio_queue_update_rings does, DriverFeatures word 0 takes effect when written,
 * QueuePFN 0 resets the device, and the version 2 queue registers are ignored.
 */

import type { GuestMemory } from "../guest_memory.ts";
import type { MmioDevice, Stateful } from "../machine/mmio.ts";
import { type VirtioDevice, VirtioFeature, type VirtioHost, VirtioStatus } from "./device.ts";
import { Virtqueue, type VirtqueueState } from "./virtqueue.ts";

/** Register offsets of the version 2 layout. */
export const VirtioMmioReg = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  GUEST_PAGE_SIZE: 0x028,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_ALIGN: 0x03c,
  QUEUE_PFN: 0x040,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** Vendor ID reported to the guest (QEMU's, which Linux does not care about). */
export const VIRTIO_MMIO_VENDOR = 0x554d4551;
/** Bytes of one virtio-mmio window on the `virt` board. */
export const VIRTIO_MMIO_SIZE = 0x1000;

/** InterruptStatus bit: a used buffer was returned. */
export const VIRTIO_MMIO_INT_VRING = 1;
/** InterruptStatus bit: the configuration changed (or the device needs a reset). */
export const VIRTIO_MMIO_INT_CONFIG = 2;

/** QueueNumMax of every queue and the largest QueueNum accepted (QEMU's VIRTQUEUE_MAX_SIZE). */
export const VIRTIO_MMIO_QUEUE_MAX = 1024;
/** QueueSel values from here on are ignored (QEMU's VIRTIO_QUEUE_MAX). */
const QUEUE_SEL_LIMIT = 1024;

/** Transport features always offered: indirect descriptors, event index, VERSION_1. */
const TRANSPORT_FEATURES_LO = (1 << VirtioFeature.RING_INDIRECT_DESC) |
  (1 << VirtioFeature.RING_EVENT_IDX);
const TRANSPORT_FEATURES_HI = 1 << (VirtioFeature.VERSION_1 - 32);

/** Ring alignment of a legacy queue until the driver writes QueueAlign (QEMU's default). */
export const VIRTIO_LEGACY_VRING_ALIGN = 4096;

/** Options of a transport. */
export interface VirtioMmioOptions {
  /** QEMU's legacy (Version 1) register layout instead of version 2; default false. */
  legacy?: boolean;
}

/** Serializable transport state (the device's own state is in `device`). */
export interface VirtioMmioState {
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: [number, number];
  /** The DriverFeatures register words as last written (applied at FEATURES_OK). */
  driverFeaturesReg?: [number, number];
  queueSel: number;
  interruptStatus: number;
  configGeneration: number;
  lastError: string;
  queues: VirtqueueState[];
  device: unknown;
  /** Legacy transport: log2 of GuestPageSize, and each queue's QueueAlign. */
  guestPageShift?: number;
  queueAlign?: number[];
  /** The device broke and waits for a reset (absent in older states: NEEDS_RESET says it). */
  broken?: boolean;
}

/** A virtio-mmio version 2 window with one device behind it. */
export class VirtioMmioTransport implements MmioDevice, Stateful<VirtioMmioState>, VirtioHost {
  /** Device name for the device tree and diagnostics. */
  readonly name: string;
  /** Device status register. */
  status = 0;
  /** InterruptStatus register. */
  interruptStatus = 0;
  /** ConfigGeneration register. */
  configGeneration = 0;
  /** Why the device last broke (DEVICE_NEEDS_RESET or, without VERSION_1, stopped); "" if not. */
  lastError = "";
  /** Exceptions a device model threw (bugs, not guest errors); each set NEEDS_RESET. */
  deviceExceptions = 0;
  /** Features in effect: what the driver wrote and the device offered, fixed at FEATURES_OK. */
  readonly driverFeatures: [number, number] = [0, 0];
  /** The DriverFeatures register as the driver wrote it (words 0 and 1). */
  private readonly driverFeaturesReg: [number, number] = [0, 0];

  /** QEMU's legacy (Version 1) layout. */
  readonly legacy: boolean;
  /** The device broke (needsReset) and serves nothing until a reset. */
  private broken = false;
  private guestPageShift = 0;
  private readonly queueAlign: number[] = [];
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private level = false;
  private readonly queues: Virtqueue[] = [];
  private readonly offered: [number, number];

  /**
   * @param memory guest memory holding the virtqueues
   * @param device the device model
   * @param irq drives the interrupt line (the machine wires it to a PLIC source)
   * @param name device name, e.g. "virtio_mmio@10001000"
   * @param options `legacy` for QEMU's Version 1 layout
   */
  constructor(
    readonly memory: GuestMemory,
    readonly device: VirtioDevice,
    private readonly irq: (level: boolean) => void,
    name = "virtio_mmio",
    options: VirtioMmioOptions = {},
  ) {
    this.name = name;
    this.legacy = options.legacy ?? false;
    this.offered = [
      (device.features[0] | TRANSPORT_FEATURES_LO) >>> 0,
      (device.features[1] | TRANSPORT_FEATURES_HI) >>> 0,
    ];
    const onError = (reason: string) => this.needsReset(reason);
    for (let i = 0; i < device.numQueues; i++) {
      this.queues.push(new Virtqueue(memory, device.queueSize, onError));
      this.queueAlign.push(VIRTIO_LEGACY_VRING_ALIGN);
    }
    device.attach(this);
  }

  /** True when the driver set DRIVER_OK and the device does not need a reset. */
  get active(): boolean {
    return !this.broken &&
      (this.status & (VirtioStatus.DRIVER_OK | VirtioStatus.DEVICE_NEEDS_RESET |
          VirtioStatus.FAILED)) === VirtioStatus.DRIVER_OK;
  }

  /** True when queue notifications are served now (see `VirtioHost.serving`). */
  get serving(): boolean {
    if (this.device.servesBeforeDriverOk) {
      return !this.broken &&
        (this.status & (VirtioStatus.DEVICE_NEEDS_RESET | VirtioStatus.FAILED)) === 0;
    }
    return this.active;
  }

  /**
   * True while the device waits on a backend: a completion (and interrupt) will follow, so
   * a run loop on virtual time should let the event loop turn before skipping time ahead.
   */
  get ioPending(): boolean {
    return (this.device.inflightCount ?? 0) > 0;
  }

  /** Current level of the interrupt line. */
  get irqLevel(): boolean {
    return this.level;
  }

  /** Queue `index`. */
  queue(index: number): Virtqueue {
    return this.queues[index];
  }

  /**
   * True when feature bit `bit` is in effect. Without FEATURES_OK (a driver may set DRIVER_OK
   * alone, as QEMU allows) no feature is.
   */
  hasFeature(bit: number): boolean {
    return bit < 32
      ? (this.driverFeatures[0] & (1 << bit)) !== 0
      : (this.driverFeatures[1] & (1 << (bit - 32))) !== 0;
  }

  /** Raises the used-buffer interrupt when the queue's suppression rules allow it. */
  signalUsed(index: number): void {
    const q = this.queues[index];
    if (q === undefined || !q.needsInterrupt()) return;
    this.interruptStatus |= VIRTIO_MMIO_INT_VRING;
    this.updateIrq();
  }

  /** Bumps ConfigGeneration and raises the config-change interrupt once DRIVER_OK is set. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & VirtioStatus.DRIVER_OK) {
      this.interruptStatus |= VIRTIO_MMIO_INT_CONFIG;
      this.updateIrq();
    }
  }

  /**
   * The device stops until reset. With VERSION_1 negotiated it also sets DEVICE_NEEDS_RESET
   * (section 2.1.2) and tells a running driver; a driver without VERSION_1 only finds it
   * stopped, as with QEMU's virtio_error (legacy status has no such bit).
   */
  needsReset(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    this.lastError = reason;
    if (!this.hasFeature(VirtioFeature.VERSION_1)) return;
    this.status |= VirtioStatus.DEVICE_NEEDS_RESET;
    if (this.status & VirtioStatus.DRIVER_OK) {
      this.interruptStatus |= VIRTIO_MMIO_INT_CONFIG;
      this.updateIrq();
    }
  }

  /** Reads a register or config space. Registers answer 32-bit reads only (others read 0). */
  read(offset: number, size: 1 | 2 | 4): number {
    if (offset >= VirtioMmioReg.CONFIG) {
      return this.device.readConfig(offset - VirtioMmioReg.CONFIG, size);
    }
    if (size !== 4) return 0;
    const q = this.queues[this.queueSel];
    if (this.legacy) {
      const v = this.readLegacy(offset, q);
      if (v !== undefined) return v;
    }
    switch (offset) {
      case VirtioMmioReg.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VirtioMmioReg.VERSION:
        return 2;
      case VirtioMmioReg.DEVICE_ID:
        return this.device.deviceId;
      case VirtioMmioReg.VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
      case VirtioMmioReg.DEVICE_FEATURES:
        return this.offered[this.deviceFeaturesSel];
      case VirtioMmioReg.QUEUE_NUM_MAX:
        return q === undefined ? 0 : VIRTIO_MMIO_QUEUE_MAX;
      case VirtioMmioReg.QUEUE_READY:
        return q !== undefined && q.ready ? 1 : 0;
      case VirtioMmioReg.INTERRUPT_STATUS:
        return this.interruptStatus;
      case VirtioMmioReg.STATUS:
        return this.status;
      case VirtioMmioReg.SHM_LEN_LOW:
      case VirtioMmioReg.SHM_LEN_HIGH:
        return 0xffffffff; // no shared memory regions (the base reads 0, as on QEMU)
      case VirtioMmioReg.CONFIG_GENERATION:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  /** Writes a register or config space. Registers accept 32-bit writes only (others are dropped). */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset >= VirtioMmioReg.CONFIG) {
      this.device.writeConfig(offset - VirtioMmioReg.CONFIG, size, value);
      return;
    }
    if (size !== 4) return;
    value >>>= 0;
    const q = this.queues[this.queueSel];
    if (this.legacy && this.writeLegacy(offset, q, value)) return;
    switch (offset) {
      case VirtioMmioReg.DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = value === 0 ? 0 : 1; // as QEMU: any nonzero value is word 1
        return;
      case VirtioMmioReg.DRIVER_FEATURES:
        // Stored at any time; only the FEATURES_OK transition applies it (section 3.1.1).
        this.driverFeaturesReg[this.driverFeaturesSel] = value;
        return;
      case VirtioMmioReg.DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = value === 0 ? 0 : 1;
        return;
      case VirtioMmioReg.QUEUE_SEL:
        if (value < QUEUE_SEL_LIMIT) this.queueSel = value;
        return;
      case VirtioMmioReg.QUEUE_NUM:
        // QEMU ignores 0 and sizes above 1024; a live queue keeps its size until re-enabled.
        if (q !== undefined && !q.ready && value >= 1 && value <= VIRTIO_MMIO_QUEUE_MAX) {
          q.size = value;
        }
        return;
      case VirtioMmioReg.QUEUE_READY:
        if (q !== undefined) this.setQueueReady(q, value !== 0);
        return;
      case VirtioMmioReg.QUEUE_NOTIFY:
        this.notify(value & 0xffff);
        return;
      case VirtioMmioReg.INTERRUPT_ACK:
        this.interruptStatus &= ~value;
        this.updateIrq();
        return;
      case VirtioMmioReg.STATUS:
        this.writeStatus(value & 0xff);
        return;
      case VirtioMmioReg.QUEUE_DESC_LOW:
      case VirtioMmioReg.QUEUE_DESC_HIGH:
      case VirtioMmioReg.QUEUE_DRIVER_LOW:
      case VirtioMmioReg.QUEUE_DRIVER_HIGH:
      case VirtioMmioReg.QUEUE_DEVICE_LOW:
      case VirtioMmioReg.QUEUE_DEVICE_HIGH:
        if (q !== undefined && !q.ready) setQueueAddress(q, offset, value);
        return;
      default:
        return;
    }
  }

  /** Legacy registers that read differently from version 2 (undefined: read as version 2). */
  private readLegacy(offset: number, q: Virtqueue | undefined): number | undefined {
    switch (offset) {
      case VirtioMmioReg.VERSION:
        return 1;
      case VirtioMmioReg.DEVICE_FEATURES:
        return this.deviceFeaturesSel === 0 ? this.offered[0] : 0;
      case VirtioMmioReg.QUEUE_PFN:
        return q === undefined ? 0 : Math.floor(q.descAddr / 2 ** this.guestPageShift) >>> 0;
      case VirtioMmioReg.QUEUE_READY:
      case VirtioMmioReg.CONFIG_GENERATION:
        return 0; // version 2 registers (QEMU logs the access and reads 0)
    }
    return undefined;
  }

  /** Legacy register writes; false when the register behaves as in version 2. */
  private writeLegacy(offset: number, q: Virtqueue | undefined, value: number): boolean {
    switch (offset) {
      case VirtioMmioReg.DRIVER_FEATURES:
        // Word 0 takes effect at once (QEMU: virtio_set_features), word 1 does not exist.
        if (this.driverFeaturesSel === 0 && !(this.status & VirtioStatus.FEATURES_OK)) {
          this.driverFeaturesReg[0] = value;
          this.driverFeatures[0] = (value & this.offered[0]) >>> 0;
          this.driverFeatures[1] = 0;
          this.applyRingFeatures();
        }
        return true;
      case VirtioMmioReg.GUEST_PAGE_SIZE: {
        const shift = value === 0 ? 32 : 31 - Math.clz32(value & -value);
        this.guestPageShift = shift > 31 ? 0 : shift;
        return true;
      }
      case VirtioMmioReg.QUEUE_NUM:
        if (q !== undefined && value >= 1 && value <= VIRTIO_MMIO_QUEUE_MAX) {
          q.size = value;
          this.placeLegacyRings(this.queueSel);
        }
        return true;
      case VirtioMmioReg.QUEUE_ALIGN:
        if (q !== undefined) {
          this.queueAlign[this.queueSel] = value;
          this.placeLegacyRings(this.queueSel);
        }
        return true;
      case VirtioMmioReg.QUEUE_PFN:
        if (value === 0) {
          this.reset(); // as QEMU's virtio_mmio_soft_reset
          return true;
        }
        if (q !== undefined) {
          q.descAddr = value * 2 ** this.guestPageShift;
          this.placeLegacyRings(this.queueSel);
        }
        return true;
      case VirtioMmioReg.QUEUE_READY:
      case VirtioMmioReg.QUEUE_DESC_LOW:
      case VirtioMmioReg.QUEUE_DESC_HIGH:
      case VirtioMmioReg.QUEUE_DRIVER_LOW:
      case VirtioMmioReg.QUEUE_DRIVER_HIGH:
      case VirtioMmioReg.QUEUE_DEVICE_LOW:
      case VirtioMmioReg.QUEUE_DEVICE_HIGH:
        return true; // version 2 registers: ignored
    }
    return false;
  }

  /**
   * The legacy ring layout (QEMU's virtio_queue_update_rings): the available ring right after
   * the descriptor table, the used ring at the next QueueAlign boundary after the available
   * ring's entries. The queue is live once it has a size, an address and an alignment.
   */
  private placeLegacyRings(index: number): void {
    const q = this.queues[index];
    const align = this.queueAlign[index];
    if (q.size === 0 || q.descAddr === 0 || align === 0) {
      q.ready = false;
      q.deactivate();
      return;
    }
    q.driverAddr = q.descAddr + 16 * q.size;
    const availEnd = q.driverAddr + 4 + 2 * q.size;
    q.deviceAddr = Math.ceil(availEnd / align) * align;
    q.ready = true;
    const why = q.activate();
    if (why !== null) this.needsReset(why);
  }

  /**
   * QueueReady: 1 (any nonzero value) maps the rings as configured now, also when the queue
   * was ready already; the ring indices carry on (only a device reset clears them), as on QEMU.
   */
  private setQueueReady(q: Virtqueue, ready: boolean): void {
    if (!ready) {
      q.ready = false;
      q.deactivate();
      return;
    }
    q.ready = true;
    const why = q.activate();
    if (why !== null) this.needsReset(why);
  }

  private notify(index: number): void {
    const q = this.queues[index];
    if (!this.serving || q === undefined || !q.isUsable) return;
    try {
      this.device.queueNotify(index);
    } catch (e) {
      // A device bug must not take the hart down; the guest sees a device needing reset.
      this.deviceExceptions++;
      this.needsReset(`queue ${index}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    const next = value | (old & VirtioStatus.DEVICE_NEEDS_RESET);
    if (!this.legacy && (next & VirtioStatus.FEATURES_OK) && !(old & VirtioStatus.FEATURES_OK)) {
      // As QEMU's virtio_set_features: keep what was offered, drop the rest, never refuse.
      this.driverFeatures[0] = (this.driverFeaturesReg[0] & this.offered[0]) >>> 0;
      this.driverFeatures[1] = (this.driverFeaturesReg[1] & this.offered[1]) >>> 0;
      this.applyRingFeatures();
    }
    this.status = next;
    if ((next & VirtioStatus.DRIVER_OK) && !(old & VirtioStatus.DRIVER_OK)) {
      // Pick up buffers the driver queued (and perhaps notified) before DRIVER_OK.
      for (let i = 0; i < this.queues.length; i++) this.notify(i);
    }
  }

  /** Tells the queues which ring features are in effect. */
  private applyRingFeatures(): void {
    const eventIdx = (this.driverFeatures[0] & (1 << VirtioFeature.RING_EVENT_IDX)) !== 0;
    const indirect = (this.driverFeatures[0] & (1 << VirtioFeature.RING_INDIRECT_DESC)) !== 0;
    for (const q of this.queues) {
      q.eventIdx = eventIdx;
      q.indirect = indirect;
    }
  }

  /** Device reset (status written with 0): back to the power-on state. */
  reset(): void {
    this.status = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.driverFeatures[0] = this.driverFeatures[1] = 0;
    this.driverFeaturesReg[0] = this.driverFeaturesReg[1] = 0;
    this.lastError = "";
    this.broken = false;
    for (const q of this.queues) {
      q.reset();
      q.eventIdx = q.indirect = false;
    }
    this.interruptStatus = 0;
    this.updateIrq();
    this.device.reset();
  }

  private updateIrq(): void {
    const level = this.interruptStatus !== 0;
    if (level === this.level) return;
    this.level = level;
    this.irq(level);
  }

  /** Plain copy of transport and device state. */
  save(): VirtioMmioState {
    return {
      status: this.status,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      driverFeatures: [this.driverFeatures[0], this.driverFeatures[1]],
      driverFeaturesReg: [this.driverFeaturesReg[0], this.driverFeaturesReg[1]],
      queueSel: this.queueSel,
      interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration,
      lastError: this.lastError,
      queues: this.queues.map((q) => q.save()),
      device: this.device.save(),
      guestPageShift: this.guestPageShift,
      queueAlign: [...this.queueAlign],
      broken: this.broken,
    };
  }

  /**
   * Restores `save()` output (guest RAM must already hold the snapshot's contents) and
   * drives the interrupt line to the restored level.
   */
  load(s: VirtioMmioState): void {
    checkState(s, this.queues.length);
    this.status = s.status;
    this.deviceFeaturesSel = s.deviceFeaturesSel;
    this.driverFeaturesSel = s.driverFeaturesSel;
    this.driverFeatures[0] = s.driverFeatures[0];
    this.driverFeatures[1] = s.driverFeatures[1];
    // Older snapshots have no register copy: the negotiated words are what was written.
    const reg = s.driverFeaturesReg ?? s.driverFeatures;
    this.driverFeaturesReg[0] = reg[0];
    this.driverFeaturesReg[1] = reg[1];
    this.queueSel = s.queueSel;
    this.interruptStatus = s.interruptStatus;
    this.configGeneration = s.configGeneration;
    this.lastError = s.lastError;
    this.broken = s.broken ?? (s.status & VirtioStatus.DEVICE_NEEDS_RESET) !== 0;
    this.guestPageShift = s.guestPageShift ?? 0;
    for (let i = 0; i < this.queueAlign.length; i++) {
      this.queueAlign[i] = s.queueAlign?.[i] ?? VIRTIO_LEGACY_VRING_ALIGN;
    }
    this.applyRingFeatures();
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i];
      const qs = s.queues[i];
      if (qs !== undefined) q.load(qs);
      else q.reset();
    }
    this.device.load(s.device);
    this.level = this.interruptStatus !== 0;
    this.irq(this.level);
  }
}

/** A snapshot's virtio-mmio state is not something `save()` produced. */
export class VirtioStateError extends Error {
  override name = "VirtioStateError";
}

const isU32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
/** A 64-bit guest address as the registers compose it (a guest may write any high half). */
const isAddr = (v: unknown) =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 64;

/** Throws a VirtioStateError unless `s` has the shape `save()` produces. */
function checkState(s: VirtioMmioState, queues: number): void {
  const bad = (what: string) => {
    throw new VirtioStateError(`virtio-mmio state: bad ${what}`);
  };
  if (typeof s !== "object" || s === null) bad("record");
  for (const k of ["status", "deviceFeaturesSel", "driverFeaturesSel", "queueSel"] as const) {
    if (!isU32(s[k])) bad(k);
  }
  if (s.deviceFeaturesSel > 1 || s.driverFeaturesSel > 1) bad("feature select");
  if (s.queueSel >= QUEUE_SEL_LIMIT) bad("queueSel");
  if (!isU32(s.interruptStatus) || !isU32(s.configGeneration)) bad("interrupt/config fields");
  if (
    !Array.isArray(s.driverFeatures) || s.driverFeatures.length !== 2 ||
    !s.driverFeatures.every(isU32)
  ) bad("driverFeatures");
  if (
    s.driverFeaturesReg !== undefined &&
    (!Array.isArray(s.driverFeaturesReg) || s.driverFeaturesReg.length !== 2 ||
      !s.driverFeaturesReg.every(isU32))
  ) bad("driverFeaturesReg");
  if (typeof s.lastError !== "string") bad("lastError");
  if (s.broken !== undefined && typeof s.broken !== "boolean") bad("broken");
  if (s.guestPageShift !== undefined && !(isU32(s.guestPageShift) && s.guestPageShift < 32)) {
    bad("guestPageShift");
  }
  if (
    s.queueAlign !== undefined &&
    (!Array.isArray(s.queueAlign) || s.queueAlign.length !== queues || !s.queueAlign.every(isU32))
  ) bad("queueAlign");
  if (!Array.isArray(s.queues) || s.queues.length !== queues) bad("queue count");
  for (const q of s.queues) {
    if (typeof q !== "object" || q === null) bad("queue");
    if (
      !isU32(q.size) || q.size > VIRTIO_MMIO_QUEUE_MAX || !isAddr(q.descAddr) ||
      !isAddr(q.driverAddr) || !isAddr(q.deviceAddr)
    ) {
      bad("queue configuration");
    }
    if (!isU32(q.lastAvail) || !isU32(q.usedIdx) || !isU32(q.signalledUsed)) bad("queue indices");
    if (typeof q.ready !== "boolean" || typeof q.signalledValid !== "boolean") bad("queue flags");
  }
}

const HI = 4294967296;
/** `addr` with its low 32 bits replaced by `value`. */
const withLow = (addr: number, value: number) => Math.floor(addr / HI) * HI + value;
/** `addr` with its high 32 bits replaced by `value`. */
const withHigh = (addr: number, value: number) => value * HI + (addr % HI);

function setQueueAddress(q: Virtqueue, offset: number, value: number): void {
  switch (offset) {
    case VirtioMmioReg.QUEUE_DESC_LOW:
      q.descAddr = withLow(q.descAddr, value);
      return;
    case VirtioMmioReg.QUEUE_DESC_HIGH:
      q.descAddr = withHigh(q.descAddr, value);
      return;
    case VirtioMmioReg.QUEUE_DRIVER_LOW:
      q.driverAddr = withLow(q.driverAddr, value);
      return;
    case VirtioMmioReg.QUEUE_DRIVER_HIGH:
      q.driverAddr = withHigh(q.driverAddr, value);
      return;
    case VirtioMmioReg.QUEUE_DEVICE_LOW:
      q.deviceAddr = withLow(q.deviceAddr, value);
      return;
    case VirtioMmioReg.QUEUE_DEVICE_HIGH:
      q.deviceAddr = withHigh(q.deviceAddr, value);
      return;
  }
}
