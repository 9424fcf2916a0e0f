/**
 * A minimal virtio-mmio guest driver for tests: it programs the transport's registers and
 * builds descriptor tables and rings in guest memory the way Linux does, so device models
 * are exercised exactly as a guest would exercise them.
 */

import { DRAM_BASE, type GuestMemory, RAM_OFFSET } from "../guest_memory.ts";
import { VirtioFeature, VirtioStatus } from "./device.ts";
import { VirtioMmioReg as R, type VirtioMmioTransport } from "./mmio_transport.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from "./virtqueue.ts";

/** One buffer of a request. */
export interface Buf {
  addr: number;
  len: number;
  /** Device-writable. */
  write?: boolean;
}

/** Where a queue's rings live. */
export interface QueueLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
  nextDesc: number;
  availIdx: number;
  seenUsed: number;
}

/** Guest-side view of one virtio-mmio device. */
export class TestDriver {
  readonly queues: QueueLayout[] = [];
  private heap: number;

  /** `heapBase` is where ring and buffer allocations start (guest physical). */
  constructor(
    readonly mem: GuestMemory,
    readonly t: VirtioMmioTransport,
    heapBase = DRAM_BASE + 0x1000,
  ) {
    this.heap = heapBase;
  }

  /** Reads a 32-bit register. */
  reg(offset: number): number {
    return this.t.read(offset, 4);
  }

  /** Writes a 32-bit register. */
  setReg(offset: number, value: number): void {
    this.t.write(offset, 4, value);
  }

  /** Allocates `n` bytes of guest RAM aligned to `align`. */
  alloc(n: number, align = 16): number {
    this.heap = Math.ceil(this.heap / align) * align;
    const p = this.heap;
    this.heap += n;
    return p;
  }

  private off(p: number): number {
    return p - DRAM_BASE + RAM_OFFSET;
  }

  w16(p: number, v: number): void {
    this.mem.view.setUint16(this.off(p), v, true);
  }
  w32(p: number, v: number): void {
    this.mem.view.setUint32(this.off(p), v, true);
  }
  w64(p: number, v: number): void {
    this.w32(p, v % 4294967296);
    this.w32(p + 4, Math.floor(v / 4294967296));
  }
  r16(p: number): number {
    return this.mem.view.getUint16(this.off(p), true);
  }
  r32(p: number): number {
    return this.mem.view.getUint32(this.off(p), true);
  }
  /** Copies bytes into guest memory. */
  put(p: number, bytes: Uint8Array): void {
    this.mem.writePhys(p, bytes);
  }
  /** Copies bytes out of guest memory. */
  get(p: number, n: number): Uint8Array {
    return this.mem.readPhys(p, n);
  }

  /** Offered feature words. */
  offered(): [number, number] {
    this.setReg(R.DEVICE_FEATURES_SEL, 0);
    const lo = this.reg(R.DEVICE_FEATURES);
    this.setReg(R.DEVICE_FEATURES_SEL, 1);
    return [lo, this.reg(R.DEVICE_FEATURES)];
  }

  /**
   * Runs the initialisation sequence of section 3.1.1 up to FEATURES_OK with the given
   * features; returns whether the device kept FEATURES_OK.
   */
  negotiate(features: [number, number]): boolean {
    this.setReg(R.STATUS, 0);
    this.setReg(R.STATUS, VirtioStatus.ACKNOWLEDGE);
    this.setReg(R.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
    this.setReg(R.DRIVER_FEATURES_SEL, 0);
    this.setReg(R.DRIVER_FEATURES, features[0]);
    this.setReg(R.DRIVER_FEATURES_SEL, 1);
    this.setReg(R.DRIVER_FEATURES, features[1]);
    this.setReg(
      R.STATUS,
      VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK,
    );
    return (this.reg(R.STATUS) & VirtioStatus.FEATURES_OK) !== 0;
  }

  /**
   * Full bring-up: negotiates (all offered features by default, optionally without
   * EVENT_IDX / INDIRECT), sets up `queues` queues of `size` entries and sets DRIVER_OK.
   */
  init(opts: { size?: number; eventIdx?: boolean; indirect?: boolean; extra?: number } = {}) {
    const [lo, hi] = this.offered();
    let want = lo;
    if (opts.eventIdx === false) want &= ~(1 << VirtioFeature.RING_EVENT_IDX);
    if (opts.indirect === false) want &= ~(1 << VirtioFeature.RING_INDIRECT_DESC);
    if (!this.negotiate([want >>> 0, hi])) throw new Error("FEATURES_OK refused");
    for (let q = 0;; q++) {
      this.setReg(R.QUEUE_SEL, q);
      const max = this.reg(R.QUEUE_NUM_MAX);
      if (max === 0) break;
      this.setupQueue(q, Math.min(max, opts.size ?? 16));
    }
    this.setReg(
      R.STATUS,
      VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK |
        VirtioStatus.DRIVER_OK,
    );
  }

  /** Allocates rings for queue `q` and makes it ready. */
  setupQueue(q: number, size: number): QueueLayout {
    const desc = this.alloc(16 * size, 16);
    const avail = this.alloc(6 + 2 * size, 2);
    const used = this.alloc(6 + 8 * size, 4);
    this.setReg(R.QUEUE_SEL, q);
    this.setReg(R.QUEUE_NUM, size);
    this.setReg(R.QUEUE_DESC_LOW, desc);
    this.setReg(R.QUEUE_DESC_HIGH, 0);
    this.setReg(R.QUEUE_DRIVER_LOW, avail);
    this.setReg(R.QUEUE_DRIVER_HIGH, 0);
    this.setReg(R.QUEUE_DEVICE_LOW, used);
    this.setReg(R.QUEUE_DEVICE_HIGH, 0);
    this.setReg(R.QUEUE_READY, 1);
    const l = { size, desc, avail, used, nextDesc: 0, availIdx: 0, seenUsed: 0 };
    this.queues[q] = l;
    return l;
  }

  /** Writes descriptor `i` of the table at `table`. */
  writeDesc(table: number, i: number, addr: number, len: number, flags: number, next: number) {
    const d = table + 16 * i;
    this.w64(d, addr);
    this.w32(d + 8, len);
    this.w16(d + 12, flags);
    this.w16(d + 14, next);
  }

  /** Builds a chain of `bufs` in the queue's descriptor table (or an indirect table). */
  addChain(q: number, bufs: Buf[], opts: { indirect?: boolean } = {}): number {
    const l = this.queues[q];
    const head = l.nextDesc;
    if (opts.indirect) {
      const table = this.alloc(16 * bufs.length, 16);
      bufs.forEach((b, i) => {
        const last = i === bufs.length - 1;
        const flags = (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
        this.writeDesc(table, i, b.addr, b.len, flags, last ? 0 : i + 1);
      });
      this.writeDesc(l.desc, head, table, 16 * bufs.length, VIRTQ_DESC_F_INDIRECT, 0);
      l.nextDesc = (head + 1) % l.size;
    } else {
      bufs.forEach((b, i) => {
        const idx = (head + i) % l.size;
        const last = i === bufs.length - 1;
        const flags = (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
        this.writeDesc(l.desc, idx, b.addr, b.len, flags, (idx + 1) % l.size);
      });
      l.nextDesc = (head + bufs.length) % l.size;
    }
    return head;
  }

  /** Puts `head` on the available ring (without notifying). */
  publish(q: number, head: number): void {
    const l = this.queues[q];
    this.w16(l.avail + 4 + 2 * (l.availIdx % l.size), head);
    l.availIdx = (l.availIdx + 1) & 0xffff;
    this.w16(l.avail + 2, l.availIdx);
  }

  /** Builds, publishes and notifies one request; returns its head. */
  submit(q: number, bufs: Buf[], opts: { indirect?: boolean } = {}): number {
    const head = this.addChain(q, bufs, opts);
    this.publish(q, head);
    this.setReg(R.QUEUE_NOTIFY, q);
    return head;
  }

  /** Used elements returned since the last call. */
  takeUsed(q: number): { id: number; len: number }[] {
    const l = this.queues[q];
    const out: { id: number; len: number }[] = [];
    const idx = this.r16(l.used + 2);
    while (l.seenUsed !== idx) {
      const e = l.used + 4 + 8 * (l.seenUsed % l.size);
      out.push({ id: this.r32(e), len: this.r32(e + 4) });
      l.seenUsed = (l.seenUsed + 1) & 0xffff;
    }
    return out;
  }

  /** Sets used_event (the driver's "interrupt me at" index, EVENT_IDX). */
  setUsedEvent(q: number, v: number): void {
    const l = this.queues[q];
    this.w16(l.avail + 4 + 2 * l.size, v);
  }

  /** Reads avail_event (the device's "notify me at" index, EVENT_IDX). */
  availEvent(q: number): number {
    const l = this.queues[q];
    return this.r16(l.used + 4 + 8 * l.size);
  }

  /** Reads and acknowledges InterruptStatus. */
  ack(): number {
    const s = this.reg(R.INTERRUPT_STATUS);
    this.setReg(R.INTERRUPT_ACK, s);
    return s;
  }
}
