/**
 * The seam between a virtio transport (MMIO today, PCI possibly later) and a device model
 * (block, net, entropy): feature words, config space, queues and notifications.
 */

import type { GuestMemory } from "../guest_memory.ts";
import type { Virtqueue } from "./virtqueue.ts";

/** Device status bits (virtio 1.2, section 2.1). */
export const VirtioStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** Transport-level feature bit numbers (section 6). */
export const VirtioFeature = {
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

/** Device IDs (section 5). */
export const VirtioDeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
} as const;

/** What a device model may ask of its transport. */
export interface VirtioHost {
  /** Guest memory the queues live in. */
  readonly memory: GuestMemory;
  /** True when the driver set DRIVER_OK and the device does not need a reset. */
  readonly active: boolean;
  /**
   * True when queue notifications are served now: `active`, or, for a device that
   * `servesBeforeDriverOk`, any time it has not failed or asked for a reset.
   */
  readonly serving: boolean;
  /** Queue `index` (0 <= index < numQueues). */
  queue(index: number): Virtqueue;
  /** True when feature bit `bit` (0..63) was negotiated. */
  hasFeature(bit: number): boolean;
  /** Call after pushing used elements to queue `index`: interrupts the driver if it wants. */
  signalUsed(index: number): void;
  /** The device changed its config space: bumps ConfigGeneration and interrupts. */
  configChanged(): void;
  /**
   * Something the driver did is broken: the device stops until reset; with VERSION_1 the
   * transport also sets DEVICE_NEEDS_RESET and interrupts (QEMU's virtio_error).
   */
  needsReset(reason: string): void;
}

/** A virtio device model behind a transport. */
export interface VirtioDevice {
  /** Virtio device ID (`VirtioDeviceId`). */
  readonly deviceId: number;
  /** Device-specific feature bits 0..31 and 32..63; the transport adds its own. */
  readonly features: readonly [number, number];
  /** Number of virtqueues. */
  readonly numQueues: number;
  /**
   * Size of every queue until the driver writes QueueNum (QEMU's per-device default); the
   * transport reports QueueNumMax 1024 and accepts any QueueNum from 1 to 1024, as QEMU does.
   */
  readonly queueSize: number;
  /**
   * Kicks are served before DRIVER_OK, as QEMU's virtio-blk does (legacy drivers read the
   * partition table before their probe sets DRIVER_OK); the spec would have the device wait.
   */
  readonly servesBeforeDriverOk?: boolean;
  /** Requests handed to a backend and not completed yet (absent: never any). */
  readonly inflightCount?: number;
  /** Called once by the transport before any other call. */
  attach(host: VirtioHost): void;
  /**
   * Reads `size` bytes of config space at `offset` (little-endian); all ones when the access
   * does not fit in it (QEMU's virtio_config_modern_read*).
   */
  readConfig(offset: number, size: 1 | 2 | 4): number;
  /** Writes config space (most devices ignore it). */
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void;
  /** The driver notified queue `index` (only while the transport is active). */
  queueNotify(index: number): void;
  /** Device reset: forget requests in flight (their completions must be dropped). */
  reset(): void;
  /** Plain, structured-clone-able device state. */
  save(): unknown;
  /** Restores `save()` output; called after the transport and its queues are restored. */
  load(state: unknown): void;
}

/** All-ones value of a `size`-byte access: what a read outside config space returns. */
export function configMiss(size: number): number {
  return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}

/**
 * Reads a little-endian value of `size` bytes from a config-space byte array; all ones when
 * the access does not fit (as QEMU).
 */
export function readConfigBytes(config: Uint8Array, offset: number, size: number): number {
  if (offset < 0 || offset + size > config.length) return configMiss(size);
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + config[offset + i];
  return v >>> 0;
}
