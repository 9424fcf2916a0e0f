/**
 * Split virtqueues (virtio 1.2, section 2.7) processed directly on guest RAM: the available
 * ring is read, descriptor chains (including indirect tables) are walked into readable and
 * writable segments, and used elements are pushed back. Anything malformed in guest memory is
 * reported through `onError` (the transport turns it into DEVICE_NEEDS_RESET); nothing here
 * throws on guest input.
 */

import type { GuestMemory } from "../guest_memory.ts";

/** Descriptor flag: the chain continues at `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** Descriptor flag: the buffer is device-writable. */
export const VIRTQ_DESC_F_WRITE = 2;
/** Descriptor flag: the buffer is a table of indirect descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Available ring flag: the driver does not want interrupts (hint, without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Largest split queue size the spec allows. */
export const VIRTQ_MAX_SIZE = 32768;

const TWO_32 = 4294967296;

/**
 * One descriptor chain taken from the available ring: its head index and its buffer
 * segments as guest physical address + length, readable ones first (the spec requires the
 * driver to place device-writable descriptors after the device-readable ones).
 */
export class DescriptorChain {
  /** Head descriptor index, the id to push to the used ring. */
  head = 0;
  /** Segments in the chain (zero-length descriptors are skipped). */
  count = 0;
  /** How many of the first segments are device-readable. */
  readableCount = 0;
  /** Total bytes of the device-readable segments. */
  readableBytes = 0;
  /** Total bytes of the device-writable segments. */
  writableBytes = 0;
  /** Guest physical address of each segment. */
  readonly addr: number[] = [];
  /** Length of each segment. */
  readonly len: number[] = [];

  /** Empties the chain for reuse. */
  clear(head: number): void {
    this.head = head;
    this.count = 0;
    this.readableCount = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
  }

  /** Appends one segment; `writable` segments must come after readable ones. */
  add(addr: number, len: number, writable: boolean): void {
    this.addr[this.count] = addr;
    this.len[this.count] = len;
    this.count++;
    if (writable) this.writableBytes += len;
    else {
      this.readableCount++;
      this.readableBytes += len;
    }
  }

  /** An independent copy, for requests that complete after the next `pop`. */
  clone(): DescriptorChain {
    const c = new DescriptorChain();
    c.clear(this.head);
    for (let i = 0; i < this.count; i++) c.add(this.addr[i], this.len[i], i >= this.readableCount);
    return c;
  }

  /**
   * Copies device-readable bytes starting `offset` bytes into the chain into `dst`.
   * Returns the number of bytes copied (short when the chain has fewer).
   */
  read(mem: GuestMemory, offset: number, dst: Uint8Array): number {
    const u8 = mem.u8;
    let done = 0;
    for (let i = 0; i < this.readableCount && done < dst.length; i++) {
      const len = this.len[i];
      if (offset >= len) {
        offset -= len;
        continue;
      }
      const n = Math.min(len - offset, dst.length - done);
      const src = this.addr[i] + mem.hostDelta + offset;
      dst.set(u8.subarray(src, src + n), done);
      done += n;
      offset = 0;
    }
    return done;
  }

  /**
   * Copies `src` into the device-writable bytes starting `offset` bytes into the writable
   * part. Returns the number of bytes copied (short when the chain has less room).
   */
  write(mem: GuestMemory, offset: number, src: Uint8Array): number {
    const u8 = mem.u8;
    let done = 0;
    for (let i = this.readableCount; i < this.count && done < src.length; i++) {
      const len = this.len[i];
      if (offset >= len) {
        offset -= len;
        continue;
      }
      const n = Math.min(len - offset, src.length - done);
      const dst = this.addr[i] + mem.hostDelta + offset;
      u8.set(src.subarray(done, done + n), dst);
      mem.noteWrite(this.addr[i] + offset, n); // DMA into a code page drops its translations
      done += n;
      offset = 0;
    }
    return done;
  }
}

/** Serializable state of one virtqueue. */
export interface VirtqueueState {
  size: number;
  ready: boolean;
  descAddr: number;
  driverAddr: number;
  deviceAddr: number;
  lastAvail: number;
  usedIdx: number;
  signalledUsed: number;
  signalledValid: boolean;
}

/**
 * One split virtqueue as the device sees it. Any size from 1 up works: ring slots are taken
 * modulo the size, as QEMU does (the spec asks for a power of two; QEMU does not insist).
 */
export class Virtqueue {
  /** Queue size (QueueNum as the driver wrote it, or the device's default). */
  size: number;
  /** QueueReady. */
  ready = false;
  /** Guest physical addresses of the descriptor table, available ring and used ring. */
  descAddr = 0;
  driverAddr = 0;
  deviceAddr = 0;
  /** Next available-ring index the device will read. */
  lastAvail = 0;
  /** Next used-ring index the device will write. */
  usedIdx = 0;
  /** Used index at the last interrupt decision (EVENT_IDX). */
  signalledUsed = 0;
  signalledValid = false;
  /** Negotiated VIRTIO_F_RING_EVENT_IDX. */
  eventIdx = false;
  /** Negotiated VIRTIO_F_RING_INDIRECT_DESC. */
  indirect = false;

  // Byte offsets into guest memory of the three areas, valid while `usable`.
  private descOff = 0;
  private availOff = 0;
  private usedOff = 0;
  private usable = false;

  /**
   * @param mem guest memory holding the rings
   * @param defaultSize the size until the driver writes one (and after a reset)
   * @param onError called once per failure with a one-line reason (the transport sets
   *   NEEDS_RESET); the queue stops working until it is reset
   */
  constructor(
    readonly mem: GuestMemory,
    readonly defaultSize: number,
    private readonly onError: (reason: string) => void,
  ) {
    this.size = defaultSize;
  }

  /** True when the queue is ready and its rings were found valid. */
  get isUsable(): boolean {
    return this.usable;
  }

  /** Forgets everything (device reset). */
  reset(): void {
    this.size = this.defaultSize;
    this.ready = false;
    this.descAddr = this.driverAddr = this.deviceAddr = 0;
    this.lastAvail = this.usedIdx = this.signalledUsed = 0;
    this.signalledValid = false;
    this.usable = false;
  }

  /** Stops using the rings (QueueReady written with 0); the configuration stays. */
  deactivate(): void {
    this.usable = false;
  }

  /**
   * Checks the configured rings (size 1..VIRTQ_MAX_SIZE, areas aligned and inside RAM) and
   * makes the queue usable. Returns a reason when they are not.
   */
  activate(): string | null {
    this.usable = false;
    const n = this.size;
    if (!Number.isInteger(n) || n < 1 || n > VIRTQ_MAX_SIZE) return `bad queue size ${n}`;
    const mem = this.mem;
    if (this.descAddr % 16 !== 0 || !mem.inRam(this.descAddr, 16 * n)) {
      return `descriptor table 0x${this.descAddr.toString(16)} misaligned or outside RAM`;
    }
    if (this.driverAddr % 2 !== 0 || !mem.inRam(this.driverAddr, 6 + 2 * n)) {
      return `available ring 0x${this.driverAddr.toString(16)} misaligned or outside RAM`;
    }
    if (this.deviceAddr % 4 !== 0 || !mem.inRam(this.deviceAddr, 6 + 8 * n)) {
      return `used ring 0x${this.deviceAddr.toString(16)} misaligned or outside RAM`;
    }
    this.descOff = this.descAddr + mem.hostDelta;
    this.availOff = this.driverAddr + mem.hostDelta;
    this.usedOff = this.deviceAddr + mem.hostDelta;
    this.usable = true;
    return null;
  }

  private fail(reason: string): false {
    this.usable = false;
    this.onError(reason);
    return false;
  }

  /** Number of chains the driver has made available and the device has not taken. */
  pending(): number {
    if (!this.usable) return 0;
    const idx = Atomics.load(this.mem.u16, (this.availOff + 2) >> 1);
    return (idx - this.lastAvail) & 0xffff;
  }

  /**
   * Takes the next available chain into `chain`. Returns false when there is none or the
   * chain is malformed (then `onError` has been called and the queue is unusable).
   */
  pop(chain: DescriptorChain): boolean {
    if (!this.usable) return false;
    const u16 = this.mem.u16;
    let avail = Atomics.load(u16, (this.availOff + 2) >> 1);
    if (avail === this.lastAvail) {
      if (!this.eventIdx) return false;
      // Ask to be notified at the next chain, then look again in case the driver raced us.
      this.#setAvailEvent(this.lastAvail);
      avail = Atomics.load(u16, (this.availOff + 2) >> 1);
      if (avail === this.lastAvail) return false;
    }
    if (((avail - this.lastAvail) & 0xffff) > this.size) {
      return this.fail(`available index jumped from ${this.lastAvail} to ${avail}`);
    }
    const head = u16[(this.availOff + 4 + 2 * (this.lastAvail % this.size)) >> 1];
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) this.#setAvailEvent(this.lastAvail);
    return this.walk(head, chain);
  }

  /** Writes the used ring's avail_event (a DMA write: the dirty log must see it). */
  #setAvailEvent(v: number): void {
    const at = this.usedOff + 4 + 8 * this.size;
    Atomics.store(this.mem.u16, at >> 1, v);
    if (this.mem.dirtyLog) this.mem.noteWrite(this.deviceAddr + 4 + 8 * this.size, 2);
  }

  /** Gives the last popped chain back to the available ring (e.g. a too-small rx buffer). */
  unpop(): void {
    this.lastAvail = (this.lastAvail - 1) & 0xffff;
    if (this.eventIdx && this.usable) this.#setAvailEvent(this.lastAvail);
  }

  /**
   * Walks the descriptor chain starting at `head` into `chain` (also used to re-create
   * in-flight requests after a snapshot is loaded). Returns false when it is malformed.
   */
  walk(head: number, chain: DescriptorChain): boolean {
    if (!this.usable) return false;
    if (head >= this.size) return this.fail(`head descriptor ${head} >= queue size ${this.size}`);
    const mem = this.mem;
    const u16 = mem.u16;
    const u32 = mem.u32;
    chain.clear(head);
    let table = this.descOff;
    let tableSize = this.size;
    let i = head;
    let steps = 0;
    let nested = false;
    for (;;) {
      if (++steps > tableSize) return this.fail(`descriptor chain from ${head} loops`);
      const d = table + 16 * i;
      const addr = u32[(d + 4) >> 2] * TWO_32 + u32[d >> 2];
      const len = u32[(d + 8) >> 2];
      const flags = u16[(d + 12) >> 1];
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (nested) return this.fail(`indirect descriptor inside an indirect table`);
        if (!this.indirect) return this.fail(`indirect descriptor without INDIRECT_DESC`);
        if (flags & VIRTQ_DESC_F_NEXT) return this.fail(`indirect descriptor with NEXT set`);
        if (len === 0 || len % 16 !== 0 || addr % 4 !== 0 || !mem.inRam(addr, len)) {
          return this.fail(`bad indirect table 0x${addr.toString(16)}+${len}`);
        }
        nested = true;
        table = addr + mem.hostDelta;
        tableSize = len / 16;
        i = 0;
        steps = 0;
        continue;
      }
      if (len > 0) {
        if (!mem.inRam(addr, len)) {
          return this.fail(`buffer 0x${addr.toString(16)}+${len} outside RAM`);
        }
        const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
        if (!writable && chain.writableBytes > 0) {
          return this.fail(`readable descriptor after a writable one`);
        }
        chain.add(addr, len, writable);
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) return true;
      i = u16[(d + 14) >> 1];
      if (i >= tableSize) return this.fail(`next descriptor ${i} out of range`);
    }
  }

  /** Returns chain `head` to the driver with `len` bytes written into it. */
  push(head: number, len: number): void {
    if (!this.usable) return;
    const e = this.usedOff + 4 + 8 * (this.usedIdx % this.size);
    const u32 = this.mem.u32;
    u32[e >> 2] = head;
    u32[(e + 4) >> 2] = len;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    // Atomic store publishes the element before the index (release order for other threads).
    Atomics.store(this.mem.u16, (this.usedOff + 2) >> 1, this.usedIdx);
    this.mem.noteWrite(this.deviceAddr, 4 + 8 * this.size);
  }

  /**
   * Decides whether the driver wants an interrupt for what was pushed since the last call:
   * avail.flags NO_INTERRUPT without EVENT_IDX, used_event with it (section 2.7.10).
   */
  needsInterrupt(): boolean {
    if (!this.usable) return false;
    const u16 = this.mem.u16;
    if (!this.eventIdx) {
      return (Atomics.load(u16, this.availOff >> 1) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const usedEvent = Atomics.load(u16, (this.availOff + 4 + 2 * this.size) >> 1);
    const now = this.usedIdx;
    const old = this.signalledUsed;
    const valid = this.signalledValid;
    this.signalledUsed = now;
    this.signalledValid = true;
    return !valid || ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
  }

  /** Plain copy of the queue state. */
  save(): VirtqueueState {
    return {
      size: this.size,
      ready: this.ready,
      descAddr: this.descAddr,
      driverAddr: this.driverAddr,
      deviceAddr: this.deviceAddr,
      lastAvail: this.lastAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalledUsed,
      signalledValid: this.signalledValid,
    };
  }

  /** Restores `save()` output; re-validates the rings when the queue was ready. */
  load(s: VirtqueueState): void {
    this.size = s.size || this.defaultSize;
    this.ready = s.ready;
    this.descAddr = s.descAddr;
    this.driverAddr = s.driverAddr;
    this.deviceAddr = s.deviceAddr;
    this.lastAvail = s.lastAvail;
    this.usedIdx = s.usedIdx;
    this.signalledUsed = s.signalledUsed;
    this.signalledValid = s.signalledValid;
    this.usable = false;
    if (this.ready) this.activate();
  }
}
