/**
 * Virtio devices of the CPU service: the virtio-mmio (version 2) transport, split
 * virtqueues, and the block, network and entropy front-ends.
 */

export * from "./device.ts";
export * from "./virtqueue.ts";
export * from "./mmio_transport.ts";
export * from "./slot.ts";
export * from "./blk.ts";
export * from "./net.ts";
export * from "./rng.ts";
