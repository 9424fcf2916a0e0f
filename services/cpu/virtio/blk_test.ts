import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { VirtioStatus as S } from "./device.ts";
import {
  type BlockBackendClient,
  type BlockInfo,
  MAX_INFLIGHT_BYTES,
  MAX_REQUEST_BYTES,
  VirtioBlk,
  VirtioBlkFeature,
  VirtioBlkStatus as ST,
  VirtioBlkType as T,
} from "./blk.ts";
import {
  VIRTIO_MMIO_INT_VRING,
  VirtioMmioReg as R,
  VirtioMmioTransport,
} from "./mmio_transport.ts";
import { TestDriver } from "./test_driver.ts";

/** A disk in a Uint8Array; `hold` parks operations until `release()` (unit-test fake). */
class MemDisk implements BlockBackendClient {
  flushes = 0;
  /** Reads started, and the count of them at each kick. */
  reads = 0;
  kicks: number[] = [];
  hold = false;
  failNext = false;
  private parked: (() => void)[] = [];
  constructor(readonly data: Uint8Array, readonly readOnly = false, readonly canDiscard = true) {}
  info(): Promise<BlockInfo> {
    return Promise.resolve({
      sizeBytes: this.data.length,
      readOnly: this.readOnly,
      discard: this.canDiscard,
    });
  }
  private op<T>(f: () => T): Promise<T> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("backend down"));
    }
    if (!this.hold) return Promise.resolve(f());
    return new Promise((res) => this.parked.push(() => res(f())));
  }
  release(): void {
    const p = this.parked;
    this.parked = [];
    for (const f of p) f();
  }
  read(offset: number, length: number) {
    this.reads++;
    return this.op(() => this.data.slice(offset, offset + length));
  }
  kick() {
    this.kicks.push(this.reads);
  }
  write(offset: number, data: Uint8Array) {
    return this.op(() => void this.data.set(data, offset));
  }
  flush() {
    return this.op(() => void this.flushes++);
  }
  discard(offset: number, length: number) {
    return this.op(() => void this.data.fill(0xdd, offset, offset + length));
  }
}

/** Lets every settled backend promise run its completion. */
const drain = () => new Promise((r) => setTimeout(r, 0));

async function setup(
  opts: { readOnly?: boolean; sectors?: number; discard?: boolean; ram?: number } = {},
) {
  const mem = new GuestMemory(opts.ram ?? 1 << 20);
  const disk = new MemDisk(
    new Uint8Array(512 * (opts.sectors ?? 64)),
    opts.readOnly,
    opts.discard ?? true,
  );
  for (let i = 0; i < disk.data.length; i++) disk.data[i] = (i * 7 + (i >> 9)) & 0xff;
  const blk = await VirtioBlk.open(disk, { serial: "disk-0001" });
  const t = new VirtioMmioTransport(mem, blk, () => {});
  const d = new TestDriver(mem, t);
  d.init({ size: 32 });
  return { mem, disk, blk, t, d };
}

/** Writes a virtio_blk_outhdr and returns its address. */
function header(d: TestDriver, type: number, sector: number): number {
  const h = d.alloc(16);
  d.w32(h, type);
  d.w32(h + 4, 0);
  d.w64(h + 8, sector);
  return h;
}

Deno.test("virtio-blk: config space and features", async () => {
  const { d, blk } = await setup({ sectors: 64 });
  assert.equal(d.reg(R.DEVICE_ID), 2);
  const [lo] = d.offered();
  assert.ok(lo & (1 << VirtioBlkFeature.FLUSH));
  assert.ok(lo & (1 << VirtioBlkFeature.DISCARD));
  assert.ok(lo & (1 << VirtioBlkFeature.SEG_MAX));
  assert.equal(lo & (1 << VirtioBlkFeature.RO), 0);
  assert.equal(blk.capacity, 64);
  assert.equal(d.reg(R.CONFIG + 0), 64, "capacity low");
  assert.equal(d.reg(R.CONFIG + 4), 0, "capacity high");
  assert.equal(d.reg(R.CONFIG + 12), 254, "seg_max");
  assert.ok(d.reg(R.CONFIG + 8) * 254 <= MAX_REQUEST_BYTES, "size_max x seg_max fits a request");
  assert.ok(lo & (1 << VirtioBlkFeature.SIZE_MAX));
  assert.equal(d.reg(R.CONFIG + 20), 512, "blk_size");
  assert.equal(d.t.read(R.CONFIG + 20, 2), 512, "16-bit config read");
  assert.equal(d.t.read(R.CONFIG + 21, 1), 2, "8-bit config read");
  assert.equal(d.reg(R.CONFIG + 0x400), 0xffffffff, "beyond config space: all ones, as QEMU");
  assert.equal(d.t.read(R.CONFIG + 0x400, 1), 0xff, "8-bit read beyond config space");
});

Deno.test("virtio-blk: read with a multi-descriptor chain, completed asynchronously", async () => {
  const { d, disk } = await setup();
  const h = header(d, T.IN, 3);
  const a = d.alloc(512), b = d.alloc(1024), st = d.alloc(1);
  d.put(st, Uint8Array.of(0xff));
  const head = d.submit(0, [
    { addr: h, len: 16 },
    { addr: a, len: 512, write: true },
    { addr: b, len: 1024, write: true },
    { addr: st, len: 1, write: true },
  ]);
  // The request is in flight: nothing was returned yet.
  assert.deepEqual(d.takeUsed(0), []);
  await drain();
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 1537 }]);
  assert.equal(d.get(st, 1)[0], ST.OK);
  assert.deepEqual(d.get(a, 512), disk.data.slice(3 * 512, 4 * 512));
  assert.deepEqual(d.get(b, 1024), disk.data.slice(4 * 512, 6 * 512));
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
});

Deno.test("virtio-blk: write then read back, header and data split across descriptors", async () => {
  const { d, disk } = await setup();
  const data = new Uint8Array(1024).map((_, i) => (i * 13) & 0xff);
  const p1 = d.alloc(300), p2 = d.alloc(724);
  d.put(p1, data.subarray(0, 300));
  d.put(p2, data.subarray(300));
  const st = d.alloc(1);
  d.submit(0, [
    { addr: header(d, T.OUT, 10), len: 16 },
    { addr: p1, len: 300 },
    { addr: p2, len: 724 },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.deepEqual(d.takeUsed(0).map((u) => u.len), [1]);
  assert.equal(d.get(st, 1)[0], ST.OK);
  assert.deepEqual(disk.data.slice(10 * 512, 12 * 512), data);
  const back = d.alloc(1024);
  d.submit(0, [
    { addr: header(d, T.IN, 10), len: 16 },
    { addr: back, len: 1024, write: true },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.deepEqual(d.get(back, 1024), data);
});

Deno.test("virtio-blk: request through an indirect descriptor table", async () => {
  const { d, disk } = await setup();
  const a = d.alloc(512), st = d.alloc(1);
  const head = d.submit(0, [
    { addr: header(d, T.IN, 0), len: 16 },
    { addr: a, len: 512, write: true },
    { addr: st, len: 1, write: true },
  ], { indirect: true });
  await drain();
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 513 }]);
  assert.equal(d.get(st, 1)[0], ST.OK);
  assert.deepEqual(d.get(a, 512), disk.data.slice(0, 512));
});

/** Submits header + optional data + status and returns the status byte. */
async function status(
  d: TestDriver,
  type: number,
  sector: number,
  data: { len: number; write?: boolean }[],
): Promise<number> {
  const st = d.alloc(1);
  d.put(st, Uint8Array.of(0xee));
  d.submit(0, [
    { addr: header(d, type, sector), len: 16 },
    ...data.map((x) => ({ addr: d.alloc(x.len), len: x.len, write: x.write })),
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.equal(d.takeUsed(0).length, 1, "request completed");
  return d.get(st, 1)[0];
}

Deno.test("virtio-blk: bad requests get IOERR or UNSUPP, the device keeps working", async () => {
  const { d, blk } = await setup({ sectors: 64 });
  assert.equal(await status(d, T.IN, 63, [{ len: 1024, write: true }]), ST.IOERR, "past the end");
  assert.equal(
    await status(d, T.IN, 2 ** 40, [{ len: 512, write: true }]),
    ST.IOERR,
    "huge sector",
  );
  assert.equal(await status(d, T.IN, 0, [{ len: 100, write: true }]), ST.IOERR, "not 512-multiple");
  assert.equal(await status(d, T.OUT, 64, [{ len: 512 }]), ST.IOERR, "write past the end");
  assert.equal(await status(d, 99, 0, []), ST.UNSUPP, "unknown type");
  assert.equal(await status(d, T.IN, 63, [{ len: 512, write: true }]), ST.OK, "last sector");
  assert.equal(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, 0);
  assert.deepEqual(blk.completed, { ok: 1, ioerr: 4, unsupp: 1 });
});

Deno.test("virtio-blk: header shorter than 16 bytes -> IOERR", async () => {
  const { d } = await setup();
  const st = d.alloc(1);
  d.submit(0, [{ addr: d.alloc(8), len: 8 }, { addr: st, len: 1, write: true }]);
  await drain();
  assert.equal(d.takeUsed(0).length, 1);
  assert.equal(d.get(st, 1)[0], ST.IOERR);
});

Deno.test("virtio-blk: backend failure -> IOERR", async () => {
  const { d, disk } = await setup();
  disk.failNext = true;
  assert.equal(await status(d, T.IN, 0, [{ len: 512, write: true }]), ST.IOERR);
  assert.equal(await status(d, T.IN, 0, [{ len: 512, write: true }]), ST.OK);
});

Deno.test("virtio-blk: read-only disk offers RO and refuses writes", async () => {
  const { d, disk } = await setup({ readOnly: true });
  const [lo] = d.offered();
  assert.ok(lo & (1 << VirtioBlkFeature.RO));
  assert.equal(lo & (1 << VirtioBlkFeature.WRITE_ZEROES), 0);
  const before = disk.data.slice();
  assert.equal(await status(d, T.OUT, 0, [{ len: 512 }]), ST.IOERR);
  assert.deepEqual(disk.data, before);
});

Deno.test("virtio-blk: FLUSH and GET_ID", async () => {
  const { d, disk } = await setup();
  assert.equal(await status(d, T.FLUSH, 0, []), ST.OK);
  assert.equal(disk.flushes, 1);
  const id = d.alloc(20), st = d.alloc(1);
  d.submit(0, [
    { addr: header(d, T.GET_ID, 0), len: 16 },
    { addr: id, len: 20, write: true },
    { addr: st, len: 1, write: true },
  ]);
  assert.deepEqual(d.takeUsed(0).map((u) => u.len), [21], "GET_ID answers synchronously");
  assert.equal(new TextDecoder().decode(d.get(id, 9)), "disk-0001");
  assert.equal(d.get(id + 9, 1)[0], 0);
});

Deno.test("virtio-blk: DISCARD and WRITE_ZEROES ranges", async () => {
  const { d, disk } = await setup();
  const seg = (sector: number, n: number, flags: number) => {
    const p = d.alloc(16);
    d.w64(p, sector);
    d.w32(p + 8, n);
    d.w32(p + 12, flags);
    return p;
  };
  const st = d.alloc(1);
  d.submit(0, [
    { addr: header(d, T.DISCARD, 0), len: 16 },
    { addr: seg(2, 1, 0), len: 16 },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.equal(d.get(st, 1)[0], ST.OK);
  assert.ok(disk.data.slice(1024, 1536).every((b) => b === 0xdd));
  d.submit(0, [
    { addr: header(d, T.WRITE_ZEROES, 0), len: 16 },
    { addr: seg(4, 2, 1), len: 16 },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.equal(d.get(st, 1)[0], ST.OK);
  assert.ok(disk.data.slice(2048, 3072).every((b) => b === 0));
  assert.notEqual(disk.data[3072], 0);
  d.submit(0, [
    { addr: header(d, T.DISCARD, 0), len: 16 },
    { addr: seg(0, 1, 1), len: 16 },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.equal(d.get(st, 1)[0], ST.UNSUPP, "UNMAP flag on a discard");
  d.submit(0, [
    { addr: header(d, T.WRITE_ZEROES, 0), len: 16 },
    { addr: seg(63, 2, 0), len: 16 },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.equal(d.get(st, 1)[0], ST.IOERR, "range past the end");
  assert.equal(d.takeUsed(0).length, 4);
});

Deno.test("virtio-blk: reset while a request is in flight drops its completion", async () => {
  const { d, disk, blk } = await setup();
  disk.hold = true;
  const a = d.alloc(512), st = d.alloc(1);
  d.put(a, new Uint8Array(512).fill(0x55));
  d.submit(0, [
    { addr: header(d, T.IN, 0), len: 16 },
    { addr: a, len: 512, write: true },
    { addr: st, len: 1, write: true },
  ]);
  assert.equal(blk.inflightCount, 1);
  assert.equal(d.t.ioPending, true);
  d.setReg(R.STATUS, 0);
  assert.equal(blk.inflightCount, 0);
  assert.equal(d.t.ioPending, false);
  disk.release();
  await drain();
  assert.ok(d.get(a, 512).every((b) => b === 0x55), "guest memory untouched after reset");
  assert.equal(d.r16(d.queues[0].used + 2), 0, "used ring untouched");
});

Deno.test("virtio-blk: save with a request in flight, load re-submits it", async () => {
  const { mem, d, disk, t } = await setup();
  disk.hold = true;
  const a = d.alloc(512), st = d.alloc(1);
  const head = d.submit(0, [
    { addr: header(d, T.IN, 5), len: 16 },
    { addr: a, len: 512, write: true },
    { addr: st, len: 1, write: true },
  ]);
  const saved = structuredClone(t.save());
  assert.deepEqual(saved.device, { inflight: [head] });

  const disk2 = new MemDisk(disk.data.slice());
  const blk2 = await VirtioBlk.open(disk2);
  const t2 = new VirtioMmioTransport(mem, blk2, () => {});
  t2.load(saved);
  assert.equal(blk2.inflightCount, 1);
  await drain();
  const d2 = new TestDriver(mem, t2);
  d2.queues[0] = { ...d.queues[0] };
  assert.deepEqual(d2.takeUsed(0), [{ id: head, len: 513 }]);
  assert.equal(d2.get(st, 1)[0], ST.OK);
  assert.deepEqual(d2.get(a, 512), disk.data.slice(5 * 512, 6 * 512));
  assert.equal(t2.irqLevel, true);
});

Deno.test("virtio-blk: backpressure holds requests on the ring beyond 64 MiB in flight", async () => {
  const { d, disk, blk } = await setup({ sectors: 3 * 65536, ram: 4 << 20 });
  disk.hold = true;
  const buf = d.alloc(2 << 20, 4096);
  const st = [d.alloc(1), d.alloc(1), d.alloc(1)];
  const MiB32 = 32 << 20;
  assert.equal(2 * MiB32, MAX_INFLIGHT_BYTES);
  const heads = st.map((s, i) => {
    // 16 segments of 2 MiB, all on the same guest buffer: a 32 MiB read.
    const segs = Array.from({ length: 16 }, () => ({ addr: buf, len: 2 << 20, write: true }));
    return d.submit(0, [{ addr: header(d, T.IN, i * 65536), len: 16 }, ...segs, {
      addr: s,
      len: 1,
      write: true,
    }], { indirect: true });
  });
  assert.equal(blk.inflightCount, 2, "third request waits on the ring");
  disk.release();
  await drain();
  assert.deepEqual(d.takeUsed(0).map((u) => u.id), heads.slice(0, 2));
  assert.equal(blk.inflightCount, 1, "third request started as the first two completed");
  disk.release();
  await drain();
  assert.deepEqual(d.takeUsed(0).map((u) => [u.id, u.len]), [[heads[2], MiB32 + 1]]);
  assert.deepEqual(st.map((s) => d.get(s, 1)[0]), [ST.OK, ST.OK, ST.OK]);
  // The last 2 MiB of the third read landed in the buffer.
  assert.deepEqual(d.get(buf, 16), disk.data.slice(2 * MiB32 + MiB32 - (2 << 20)).slice(0, 16));
});

Deno.test("virtio-blk: a request larger than 32 MiB gets IOERR", async () => {
  const { d } = await setup({ sectors: 2 * 65536 + 8, ram: 4 << 20 });
  const buf = d.alloc(2 << 20, 4096);
  const segs = Array.from({ length: 17 }, () => ({ addr: buf, len: 2 << 20, write: true }));
  const st = d.alloc(1);
  d.submit(0, [{ addr: header(d, T.IN, 0), len: 16 }, ...segs, { addr: st, len: 1, write: true }], {
    indirect: true,
  });
  await drain();
  assert.equal(d.takeUsed(0).length, 1);
  assert.equal(d.get(st, 1)[0], ST.IOERR);
});

Deno.test("virtio-blk: a request kicked before DRIVER_OK is served, as QEMU does", async () => {
  const mem = new GuestMemory(1 << 20);
  const disk = new MemDisk(new Uint8Array(512 * 8), false, true);
  disk.data.fill(0x5a, 512 * 3, 512 * 4);
  const blk = await VirtioBlk.open(disk);
  const t = new VirtioMmioTransport(mem, blk, () => {});
  const d = new TestDriver(mem, t);
  assert.equal(d.negotiate([d.offered()[0], 0]), true, "low word only, no VERSION_1");
  d.setupQueue(0, 8);
  assert.equal(t.active, false);
  const h = header(d, T.IN, 3);
  const buf = d.alloc(512), st = d.alloc(1);
  const head = d.submit(0, [
    { addr: h, len: 16 },
    { addr: buf, len: 512, write: true },
    { addr: st, len: 1, write: true },
  ]);
  await drain();
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 513 }]);
  assert.equal(d.get(st, 1)[0], 0);
  assert.deepEqual(d.get(buf, 4), Uint8Array.of(0x5a, 0x5a, 0x5a, 0x5a));
  assert.equal(d.reg(R.INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
});

Deno.test("virtio-blk: a notify to an idle device kicks the backend once, after its requests started", async () => {
  const { d, disk } = await setup();
  const heads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const h = header(d, T.IN, i);
    heads.push(d.addChain(0, [
      { addr: h, len: 16 },
      { addr: d.alloc(512), len: 512, write: true },
      { addr: d.alloc(1), len: 1, write: true },
    ]));
  }
  disk.hold = true;
  for (const h of heads.slice(0, 3)) d.publish(0, h);
  d.setReg(R.QUEUE_NOTIFY, 0);
  // One kick for the batch, when all three reads had been handed to the backend.
  assert.deepEqual(disk.kicks, [3]);
  // A notify with nothing new on the ring sends nothing.
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(disk.kicks, [3]);
  // With requests in flight, new ones are not kicked (they go out when the CPU loop yields).
  d.publish(0, heads[3]);
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.equal(disk.reads, 4);
  assert.deepEqual(disk.kicks, [3]);
  disk.hold = false;
  disk.release();
  await drain();
  assert.equal(d.takeUsed(0).length, 4);
  // Idle again: the next notify kicks.
  d.publish(0, heads[4]);
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(disk.kicks, [3, 5]);
  await drain();
  assert.equal(d.takeUsed(0).length, 1);
});
