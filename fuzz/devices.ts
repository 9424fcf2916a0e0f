/** Real virtio device models with in-memory backends, shared by the MMIO and virtqueue targets. */
import { type BlockBackendClient, VirtioBlk } from "../services/cpu/virtio/blk.ts";
import type { VirtioDevice } from "../services/cpu/virtio/device.ts";
import { VirtioNet } from "../services/cpu/virtio/net.ts";
import { VirtioRng } from "../services/cpu/virtio/rng.ts";

/** Bytes of the in-memory disk behind virtio-blk. */
export const DISK_BYTES = 64 * 512;

/**
 * An in-memory block backend (the device model is real; only its storage is a buffer).
 *
 * @example
 * ```ts
 * const blk = new VirtioBlk(memoryDisk(), { sizeBytes: DISK_BYTES, readOnly: false, discard: true });
 * ```
 */
export function memoryDisk(): BlockBackendClient {
  const disk = new Uint8Array(DISK_BYTES);
  const inRange = (o: number, n: number) => {
    if (o < 0 || n < 0 || o + n > disk.length) throw new RangeError(`${o}+${n} outside the disk`);
  };
  return {
    info: () => Promise.resolve({ sizeBytes: disk.length, readOnly: false, discard: true }),
    read: (o, n) => (inRange(o, n), Promise.resolve(disk.slice(o, o + n))),
    write: (o, d) => (inRange(o, d.length), Promise.resolve(void disk.set(d, o))),
    flush: () => Promise.resolve(),
    discard: (o, n) => (inRange(o, n), Promise.resolve()),
  };
}

/** The virtio device kinds fuzzed, by name. */
export const VIRTIO_KINDS: readonly [string, () => VirtioDevice][] = [
  ["rng", () => new VirtioRng({ entropy: (d) => d.fill(0xa5) })],
  [
    "blk",
    () => new VirtioBlk(memoryDisk(), { sizeBytes: DISK_BYTES, readOnly: false, discard: true }),
  ],
  ["net", () => new VirtioNet({ send: () => {} }, { mac: "52:54:00:12:34:56" })],
];

/** Firmware for the fuzzed machines: `loop: addi a0, a0, 1; j loop` (raw, at DRAM base). */
export const LOOP_FIRMWARE: Uint8Array = new Uint8Array(
  Uint32Array.of(0x00150513, 0xffdff06f).buffer,
);
