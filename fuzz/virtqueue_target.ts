/**
 * Virtqueue descriptor chains and rings (services/cpu/virtio/): a real VirtioMmioTransport over
 * GuestMemory, driven through the whole init sequence, then rings, descriptor tables and buffers
 * overwritten from the input and every queue notified: no exception, no device exception, and
 * (by the harness's watchdog) no hang.
 */
import { DRAM_BASE, GuestMemory, RAM_OFFSET } from "../services/cpu/guest_memory.ts";
import { VirtioMmioReg as R, VirtioMmioTransport } from "../services/cpu/virtio/mmio_transport.ts";
import { VirtioNet } from "../services/cpu/virtio/net.ts";
import { VirtioRng } from "../services/cpu/virtio/rng.ts";
import { TestDriver } from "../services/cpu/virtio/test_driver.ts";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { VIRTIO_KINDS } from "./devices.ts";
import type { Prng } from "./prng.ts";
import { type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

const RAM = 256 << 10;
let shared: GuestMemory | undefined;
/** Where the buffers that descriptors point at lie (after the rings the driver allocates). */
const BUFFERS = DRAM_BASE + 0x8000;

/** Edits an input applies: what to write where. */
const enum Edit {
  RingByte,
  DescAddr,
  DescLen,
  DescFlagsNext,
  AvailIdx,
  AvailRing,
  BufferByte,
  Register,
}
const EDITS = 8;

/**
 * The virtqueue target. Input: device kind, queue size, features (event idx, indirect), then
 * edits (kind, queue, index, value), then notifications.
 *
 * @example
 * ```ts
 * await virtqueueTarget.run(Uint8Array.of(0, 3, 0)); // rng, an untouched queue: "accepted"
 * ```
 */
export const virtqueueTarget: FuzzTarget = {
  name: "virtqueue",
  description: "random rings/descriptors on virtio rng/blk/net: no throw, no device exception",
  generate(r: Prng): Uint8Array {
    const w = new ByteWriter().u8(r.below(VIRTIO_KINDS.length)).u8(r.below(8)).u8(r.below(4));
    const n = r.below(64);
    for (let i = 0; i < n; i++) {
      w.u8(r.below(EDITS)).u8(r.below(4)).u16(r.below(r.oneIn(8) ? 65536 : 32));
      const kind = r.below(4);
      w.u32(
        kind === 0
          ? BUFFERS + r.below(0x2000)
          : kind === 1
          ? r.below(2048)
          : kind === 2
          ? r.interesting32()
          : r.next(),
      );
    }
    return w.finish();
  },
  async run(input: Uint8Array): Promise<Outcome> {
    const rd = new ByteReader(input);
    const [, make] = VIRTIO_KINDS[rd.u8() % VIRTIO_KINDS.length];
    const size = 1 << (rd.u8() % 8); // 1..128
    const opts = rd.u8();
    // One memory per process, its RAM cleared for each input (allocating one is the slow part).
    const mem = shared ??= new GuestMemory(RAM);
    mem.u8.fill(0, RAM_OFFSET, RAM_OFFSET + RAM);
    const dev = make();
    const t = new VirtioMmioTransport(mem, dev, () => {}, "fuzz", { legacy: (opts & 4) !== 0 });
    const d = new TestDriver(mem, t);
    d.init({ size, eventIdx: (opts & 1) !== 0, indirect: (opts & 2) !== 0 });
    const inRam = (p: number, n: number) => mem.inRam(p, n);
    while (rd.more) {
      const kind = rd.u8() % EDITS;
      const q = d.queues[rd.u8() % d.queues.length];
      const index = rd.u16();
      const value = rd.u32();
      const desc = q.desc + 16 * (index % q.size);
      switch (kind) {
        case Edit.RingByte: {
          const p = q.desc + (index % (q.used + 6 + 8 * q.size - q.desc));
          if (inRam(p, 1)) d.put(p, Uint8Array.of(value));
          break;
        }
        case Edit.DescAddr:
          d.w64(desc, value < 0x1000 ? BUFFERS + value : value);
          break;
        case Edit.DescLen:
          d.w32(desc + 8, value);
          break;
        case Edit.DescFlagsNext:
          d.w16(desc + 12, value & 0xffff);
          d.w16(desc + 14, value >>> 16);
          break;
        case Edit.AvailIdx:
          d.w16(q.avail + 2, value & 0xffff);
          break;
        case Edit.AvailRing:
          d.w16(q.avail + 4 + 2 * (index % q.size), value & 0xffff);
          break;
        case Edit.BufferByte: {
          const p = BUFFERS + (value % 0x3000);
          if (inRam(p, 1)) d.put(p, Uint8Array.of(index));
          break;
        }
        default:
          t.write((index % 0x140) & ~3, 4, value);
      }
      if (index % 16 === 0) d.setReg(R.QUEUE_NOTIFY, q === d.queues[0] ? 0 : 1);
    }
    for (let q = 0; q < d.queues.length; q++) d.setReg(R.QUEUE_NOTIFY, q);
    if (dev instanceof VirtioNet) dev.receive(new Uint8Array(60 + (input.length % 1500)));
    // The blk device completes through promises of its backend: let them all settle.
    for (let i = 0; i < 8; i++) await Promise.resolve();
    if (!(dev instanceof VirtioRng)) await new Promise((r) => setTimeout(r, 0));
    if (t.deviceExceptions !== 0) throw new InvariantError(`device threw: ${t.lastError}`);
    return (d.reg(R.STATUS) & 64) ? "rejected" : "accepted"; // NEEDS_RESET: refused the chains
  },
};
