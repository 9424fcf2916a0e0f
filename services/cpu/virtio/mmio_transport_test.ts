import assert from "node:assert/strict";
import { DRAM_BASE, GuestMemory } from "../guest_memory.ts";
import { VirtioFeature, VirtioStatus as S } from "./device.ts";
import {
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_QUEUE_MAX,
  VirtioMmioReg as R,
  VirtioMmioTransport,
  VirtioStateError,
} from "./mmio_transport.ts";
import { VirtioRng } from "./rng.ts";
import { TestDriver } from "./test_driver.ts";
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
} from "./virtqueue.ts";

const RAM = 1 << 20;

/** Entropy that counts 0, 1, 2, ... so the bytes the guest gets are predictable. */
function counter() {
  let n = 0;
  return (dst: Uint8Array) => {
    for (let i = 0; i < dst.length; i++) dst[i] = n++ & 0xff;
  };
}

function setup(mem = new GuestMemory(RAM)) {
  const levels: boolean[] = [];
  const rng = new VirtioRng({ entropy: counter(), queueSize: 16 });
  const t = new VirtioMmioTransport(mem, rng, (l) => levels.push(l), "virtio_mmio@10001000");
  const d = new TestDriver(mem, t);
  return { mem, rng, t, d, levels };
}

Deno.test("virtio-mmio: discovery registers of a version 2 device", () => {
  const { t, d } = setup();
  assert.equal(d.reg(R.MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
  assert.equal(d.reg(R.VERSION), 2);
  assert.equal(d.reg(R.DEVICE_ID), 4);
  assert.equal(d.reg(R.VENDOR_ID), 0x554d4551);
  const [lo, hi] = d.offered();
  assert.equal(hi & 1, 1, "VERSION_1 offered");
  assert.ok(lo & (1 << VirtioFeature.RING_INDIRECT_DESC));
  assert.ok(lo & (1 << VirtioFeature.RING_EVENT_IDX));
  d.setReg(R.QUEUE_SEL, 0);
  assert.equal(d.reg(R.QUEUE_NUM_MAX), VIRTIO_MMIO_QUEUE_MAX, "QEMU's VIRTQUEUE_MAX_SIZE");
  assert.equal(d.reg(R.QUEUE_READY), 0);
  d.setReg(R.QUEUE_SEL, 1);
  assert.equal(d.reg(R.QUEUE_NUM_MAX), 0, "only one queue");
  assert.equal(d.reg(R.STATUS), 0);
  assert.equal(d.reg(R.SHM_LEN_LOW), 0xffffffff, "no shared memory regions");
  assert.equal(d.reg(R.SHM_BASE_LOW), 0, "SHMBase reads 0 as on QEMU");
  assert.equal(t.read(R.MAGIC_VALUE, 1), 0, "registers answer 32-bit reads only");
  assert.equal(t.read(R.CONFIG, 4), 0xffffffff, "no config space: all ones");
  assert.equal(t.read(R.CONFIG + 2, 2), 0xffff);
});

Deno.test("virtio-mmio: a driver of the low 32 feature bits only keeps FEATURES_OK (QEMU)", () => {
  const { d, t, rng } = setup();
  const [lo] = d.offered();
  // As xv6 does: write DriverFeatures word 0 only, never VERSION_1, then FEATURES_OK.
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES, lo & ~(1 << VirtioFeature.RING_EVENT_IDX));
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(d.reg(R.STATUS), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(t.hasFeature(VirtioFeature.VERSION_1), false);
  assert.equal(t.hasFeature(VirtioFeature.RING_INDIRECT_DESC), true);
  assert.equal(t.hasFeature(VirtioFeature.RING_EVENT_IDX), false);
  d.setupQueue(0, 8);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(t.active, true);
  const buf = d.alloc(16);
  const head = d.submit(0, [{ addr: buf, len: 16, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 16 }]);
  assert.deepEqual([...d.get(buf, 4)], [0, 1, 2, 3]);
  assert.equal(rng.bytesServed, 16);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_VRING);
});

Deno.test("virtio-mmio: features not offered are dropped, FEATURES_OK stays (QEMU)", () => {
  const { d, t } = setup();
  const [lo, hi] = d.offered();
  assert.equal(d.negotiate([lo | 0x1, hi | 0x80]), true);
  assert.equal(t.driverFeatures[0], lo, "bit 0 was not offered");
  assert.equal(t.driverFeatures[1], hi, "bit 39 was not offered");
  assert.equal(t.hasFeature(VirtioFeature.VERSION_1), true);
  // Writes after FEATURES_OK change nothing until FEATURES_OK is set again.
  d.setReg(R.DRIVER_FEATURES_SEL, 0);
  d.setReg(R.DRIVER_FEATURES, 0);
  assert.equal(t.hasFeature(VirtioFeature.RING_EVENT_IDX), true);
  assert.equal(d.negotiate([0, hi]), true);
  assert.equal(t.hasFeature(VirtioFeature.RING_EVENT_IDX), false);
});

Deno.test("virtio-mmio: any nonzero feature select picks word 1 (QEMU)", () => {
  const { d, t } = setup();
  const [, hi] = d.offered();
  d.setReg(R.DEVICE_FEATURES_SEL, 7);
  assert.equal(d.reg(R.DEVICE_FEATURES), hi);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES_SEL, 0x100);
  d.setReg(R.DRIVER_FEATURES, hi);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(t.hasFeature(VirtioFeature.VERSION_1), true);
});

Deno.test("virtio-mmio: DRIVER_OK without FEATURES_OK runs the device with no features (QEMU)", () => {
  const { d, t, rng } = setup();
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES, 0xffffffff); // never applied: FEATURES_OK is not written
  d.setupQueue(0, 4);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.equal(d.reg(R.STATUS), S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.equal(t.active, true);
  assert.equal(t.hasFeature(VirtioFeature.RING_INDIRECT_DESC), false);
  const head = d.submit(0, [{ addr: d.alloc(8), len: 8, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 8 }]);
  assert.equal(rng.bytesServed, 8);
});

Deno.test("virtio-mmio: queue sizes as QEMU takes them", () => {
  const { d, rng } = setup();
  d.negotiate(d.offered());
  d.setReg(R.QUEUE_SEL, 0);
  // Never sized: the device's default (16 here); 0 and sizes above 1024 are ignored.
  d.setReg(R.QUEUE_NUM, 0);
  d.setReg(R.QUEUE_NUM, 2048);
  const l = d.setupQueue(0, 16);
  assert.equal(d.reg(R.QUEUE_READY), 1);
  assert.equal(l.size, 16);
  d.setReg(R.STATUS, d.reg(R.STATUS) | S.DRIVER_OK);
  d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.equal(rng.bytesServed, 4);
  // A size that is no power of two works; ring slots wrap modulo the size.
  const { d: d2, rng: rng2, t: t2 } = setup();
  d2.negotiate(d2.offered());
  d2.setupQueue(0, 3);
  d2.setReg(R.STATUS, d2.reg(R.STATUS) | S.DRIVER_OK);
  assert.equal(t2.active, true);
  for (let i = 0; i < 7; i++) {
    const head = d2.submit(0, [{ addr: d2.alloc(2), len: 2, write: true }]);
    assert.deepEqual(d2.takeUsed(0), [{ id: head, len: 2 }], `request ${i}`);
  }
  assert.equal(rng2.bytesServed, 14);
  assert.equal(d2.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, 0);
  // QueueSel beyond QEMU's 1024 queues is ignored: the selection stays.
  d2.setReg(R.QUEUE_SEL, 5000);
  assert.equal(d2.reg(R.QUEUE_READY), 1, "still queue 0");
});

Deno.test("virtio-mmio: a queue never sized keeps the device's default size (QEMU)", () => {
  const { d, t, rng } = setup(); // the rng's default size is 16 here
  d.negotiate(d.offered());
  const desc = d.alloc(16 * 16), avail = d.alloc(6 + 2 * 16, 2), used = d.alloc(6 + 8 * 16, 4);
  d.setReg(R.QUEUE_SEL, 0);
  d.setReg(R.QUEUE_DESC_LOW, desc);
  d.setReg(R.QUEUE_DRIVER_LOW, avail);
  d.setReg(R.QUEUE_DEVICE_LOW, used);
  d.setReg(R.QUEUE_READY, 1);
  d.setReg(R.STATUS, d.reg(R.STATUS) | S.DRIVER_OK);
  assert.equal(t.active, true);
  assert.equal(t.queue(0).size, 16);
  d.queues[0] = { size: 16, desc, avail, used, nextDesc: 0, availIdx: 0, seenUsed: 0 };
  const head = d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 4 }]);
  assert.equal(rng.bytesServed, 4);
});

Deno.test("virtio-mmio: DriverFeatures written after FEATURES_OK apply at the next FEATURES_OK", () => {
  const { d, t } = setup();
  const [lo, hi] = d.offered();
  assert.equal(d.negotiate([lo, hi]), true);
  d.setReg(R.DRIVER_FEATURES_SEL, 0);
  d.setReg(R.DRIVER_FEATURES, 0);
  assert.equal(t.hasFeature(VirtioFeature.RING_EVENT_IDX), true, "not before FEATURES_OK again");
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER); // FEATURES_OK cleared (no reset)
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  assert.equal(t.hasFeature(VirtioFeature.RING_EVENT_IDX), false);
  assert.equal(t.hasFeature(VirtioFeature.VERSION_1), true, "word 1 as written before");
});

Deno.test("virtio-mmio: QueueReady written again keeps the ring indices (QEMU)", () => {
  const { d, rng } = setup();
  d.init({ size: 8 });
  const first = d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: first, len: 4 }]);
  d.setReg(R.QUEUE_SEL, 0);
  d.setReg(R.QUEUE_READY, 2); // any nonzero value
  const second = d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: second, len: 4 }]);
  assert.equal(rng.bytesServed, 8);
});

Deno.test("virtio-mmio: rng request through a direct chain, interrupt and ACK", () => {
  const { d, t, levels } = setup();
  d.init();
  assert.equal(d.reg(R.STATUS), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  d.setReg(R.QUEUE_SEL, 0);
  assert.equal(d.reg(R.QUEUE_READY), 1);
  const a = d.alloc(5), b = d.alloc(7);
  const head = d.submit(0, [{ addr: a, len: 5, write: true }, { addr: b, len: 7, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 12 }]);
  assert.deepEqual([...d.get(a, 5)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...d.get(b, 7)], [5, 6, 7, 8, 9, 10, 11]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
  assert.equal(t.irqLevel, true);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_VRING);
  assert.equal(t.irqLevel, false);
  assert.deepEqual(levels, [true, false]);
});

Deno.test("virtio-mmio: indirect descriptor table", () => {
  const { d } = setup();
  d.init();
  const a = d.alloc(3), b = d.alloc(4);
  const head = d.submit(0, [{ addr: a, len: 3, write: true }, { addr: b, len: 4, write: true }], {
    indirect: true,
  });
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 7 }]);
  assert.deepEqual([...d.get(a, 3), ...d.get(b, 4)], [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, 0);
});

Deno.test("virtio-mmio: indirect descriptor without INDIRECT_DESC negotiated needs reset", () => {
  const { d } = setup();
  d.init({ indirect: false });
  const a = d.alloc(4);
  d.submit(0, [{ addr: a, len: 4, write: true }], { indirect: true });
  assert.ok(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET);
});

Deno.test("virtio-mmio: EVENT_IDX used_event suppresses and allows interrupts", () => {
  const { d, t } = setup();
  d.init();
  const buf = d.alloc(4);
  // Driver says: interrupt me only when used index passes 2 (after the 3rd completion).
  d.setUsedEvent(0, 2);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING, "first completion always signals");
  d.ack();
  assert.equal(d.availEvent(0), 1, "device asks for a notification at the next chain");
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0, "used idx 2 does not cross used_event 2");
  assert.equal(t.irqLevel, false);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING, "used idx 3 crosses it");
  d.ack();
  assert.equal(d.takeUsed(0).length, 3);
  assert.equal(d.availEvent(0), 3);
});

Deno.test("virtio-mmio: NO_INTERRUPT flag suppresses interrupts without EVENT_IDX", () => {
  const { d } = setup();
  d.init({ eventIdx: false });
  const l = d.queues[0];
  d.w16(l.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
  const buf = d.alloc(4);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.takeUsed(0).length, 1);
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0);
  d.w16(l.avail, 0);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
});

/** Sets up an active rng, lets `corrupt` damage the queue, notifies, checks NEEDS_RESET. */
function expectNeedsReset(corrupt: (d: TestDriver) => void, why: RegExp) {
  const { d, t, rng } = setup();
  d.init();
  corrupt(d);
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.ok(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, "DEVICE_NEEDS_RESET set");
  assert.equal(d.reg(R.INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_CONFIG);
  assert.equal(t.irqLevel, true);
  assert.match(t.lastError, why);
  assert.equal(t.active, false);
  assert.equal(rng.bytesServed, 0);
  // Further notifications are ignored; a reset brings the device back.
  d.setReg(R.QUEUE_NOTIFY, 0);
  d.setReg(R.STATUS, 0);
  assert.equal(d.reg(R.STATUS), 0);
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0);
  assert.equal(t.irqLevel, false);
  assert.equal(t.lastError, "");
  d.init();
  const buf = d.alloc(4);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.equal(d.takeUsed(0).length, 1);
}

Deno.test("virtio-mmio: buffer outside RAM -> NEEDS_RESET, no exception", () => {
  expectNeedsReset((d) => {
    const l = d.queues[0];
    d.writeDesc(l.desc, 0, DRAM_BASE + RAM - 8, 16, 2, 0);
    d.publish(0, 0);
  }, /outside RAM/);
});

Deno.test("virtio-mmio: descriptor address above 4 GiB -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    const l = d.queues[0];
    d.writeDesc(l.desc, 0, 0x1_8000_0000, 16, 2, 0);
    d.publish(0, 0);
  }, /outside RAM/);
});

Deno.test("virtio-mmio: descriptor loop -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    const l = d.queues[0];
    const b = d.alloc(8);
    d.writeDesc(l.desc, 0, b, 8, VIRTQ_DESC_F_NEXT | 2, 1);
    d.writeDesc(l.desc, 1, b, 8, VIRTQ_DESC_F_NEXT | 2, 0);
    d.publish(0, 0);
  }, /loops/);
});

Deno.test("virtio-mmio: loop inside an indirect table -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    const l = d.queues[0];
    const b = d.alloc(8);
    const table = d.alloc(32);
    d.writeDesc(table, 0, b, 8, VIRTQ_DESC_F_NEXT | 2, 1);
    d.writeDesc(table, 1, b, 8, VIRTQ_DESC_F_NEXT | 2, 0);
    d.writeDesc(l.desc, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0, 0);
  }, /loops/);
});

Deno.test("virtio-mmio: indirect inside indirect -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    const l = d.queues[0];
    const inner = d.alloc(16);
    d.writeDesc(inner, 0, d.alloc(8), 8, 2, 0);
    const outer = d.alloc(16);
    d.writeDesc(outer, 0, inner, 16, VIRTQ_DESC_F_INDIRECT, 0);
    d.writeDesc(l.desc, 0, outer, 16, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0, 0);
  }, /indirect descriptor inside an indirect table/);
});

Deno.test("virtio-mmio: indirect table outside RAM or of odd length -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    d.writeDesc(d.queues[0].desc, 0, DRAM_BASE + RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0, 0);
  }, /bad indirect table/);
  expectNeedsReset((d) => {
    d.writeDesc(d.queues[0].desc, 0, d.alloc(32), 24, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0, 0);
  }, /bad indirect table/);
});

Deno.test("virtio-mmio: next index, head index and avail index out of range -> NEEDS_RESET", () => {
  expectNeedsReset((d) => {
    d.writeDesc(d.queues[0].desc, 0, d.alloc(8), 8, VIRTQ_DESC_F_NEXT | 2, 99);
    d.publish(0, 0);
  }, /next descriptor 99/);
  expectNeedsReset((d) => d.publish(0, 1000), /head descriptor 1000/);
  expectNeedsReset((d) => d.w16(d.queues[0].avail + 2, 500), /available index jumped/);
});

Deno.test("virtio-mmio: rings outside RAM at QueueReady -> NEEDS_RESET", () => {
  const { d, t } = setup();
  d.negotiate(d.offered());
  d.setReg(R.QUEUE_SEL, 0);
  d.setReg(R.QUEUE_NUM, 16);
  d.setReg(R.QUEUE_DESC_LOW, 0x1000);
  d.setReg(R.QUEUE_READY, 1);
  assert.ok(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET);
  assert.match(t.lastError, /descriptor table/);
  // Before DRIVER_OK the driver is not interrupted.
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0);
});

Deno.test("virtio-mmio: QueueReady 0 stops the queue", () => {
  const { d, rng } = setup();
  d.init();
  d.setReg(R.QUEUE_SEL, 0);
  d.setReg(R.QUEUE_READY, 0);
  assert.equal(d.reg(R.QUEUE_READY), 0);
  d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.equal(rng.bytesServed, 0);
  assert.deepEqual(d.takeUsed(0), []);
  assert.equal(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, 0);
});

Deno.test("virtio-mmio: reset clears queues, features and interrupts", () => {
  const { d, t } = setup();
  d.init();
  d.submit(0, [{ addr: d.alloc(4), len: 4, write: true }]);
  assert.equal(t.irqLevel, true);
  d.setReg(R.STATUS, 0);
  assert.equal(d.reg(R.STATUS), 0);
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0);
  assert.equal(t.irqLevel, false);
  d.setReg(R.QUEUE_SEL, 0);
  assert.equal(d.reg(R.QUEUE_READY), 0);
  assert.equal(t.queue(0).lastAvail, 0);
  assert.equal(t.queue(0).usedIdx, 0);
  assert.equal(t.hasFeature(VirtioFeature.VERSION_1), false);
  assert.deepEqual(t.driverFeatures, [0, 0]);
});

Deno.test("virtio-mmio: save/load round trip continues where it stopped", () => {
  const { mem, d, t } = setup();
  d.init();
  const buf = d.alloc(4);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  d.submit(0, [{ addr: buf, len: 4, write: true }]);
  const saved = structuredClone(t.save());

  // A fresh transport over the same RAM takes over.
  const levels: boolean[] = [];
  const rng2 = new VirtioRng({ entropy: () => {}, queueSize: 16 });
  const t2 = new VirtioMmioTransport(mem, rng2, (l) => levels.push(l));
  t2.load(saved);
  assert.deepEqual(t2.save(), saved);
  assert.deepEqual(levels, [true], "interrupt level restored");
  assert.equal(rng2.bytesServed, 8);
  const d2 = new TestDriver(mem, t2);
  d2.queues[0] = { ...d.queues[0] };
  d2.ack();
  d2.setUsedEvent(0, 2); // as Linux does after consuming used entries
  d2.submit(0, [{ addr: buf, len: 4, write: true }]);
  assert.deepEqual(d2.takeUsed(0).map((u) => u.len), [4, 4, 4]);
  assert.equal(t2.queue(0).usedIdx, 3);
  assert.equal(t2.irqLevel, true);
});

Deno.test("virtio-mmio: loading a broken state throws VirtioStateError", () => {
  const { t } = setup();
  const good = t.save();
  const broken = [
    null,
    { ...good, status: -1 },
    { ...good, queues: [] },
    { ...good, driverFeatures: [1] },
    { ...good, queues: [{ ...good.queues[0], descAddr: "x" }] },
  ];
  for (const b of broken) {
    assert.throws(() => t.load(b as never), VirtioStateError);
  }
  t.load(good);
  assert.deepEqual(t.save(), good);
});

Deno.test("virtio-mmio legacy (Version 1): QueuePFN places the rings as QEMU, PFN 0 resets", () => {
  const mem = new GuestMemory(RAM);
  const rng = new VirtioRng({ entropy: counter(), queueSize: 16 });
  const t = new VirtioMmioTransport(mem, rng, () => {}, "virtio_mmio@10001000", { legacy: true });
  const d = new TestDriver(mem, t);
  assert.equal(d.reg(R.VERSION), 1);
  d.setReg(R.DEVICE_FEATURES_SEL, 1);
  assert.equal(d.reg(R.DEVICE_FEATURES), 0, "no feature word 1");
  d.setReg(R.DEVICE_FEATURES_SEL, 0);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES, 1 << VirtioFeature.RING_INDIRECT_DESC);
  assert.equal(t.hasFeature(VirtioFeature.RING_INDIRECT_DESC), true, "applied when written");
  d.setReg(R.GUEST_PAGE_SIZE, 4096);
  d.setReg(R.QUEUE_SEL, 0);
  d.setReg(R.QUEUE_NUM, 5);
  d.setReg(R.QUEUE_ALIGN, 64);
  const area = DRAM_BASE + 0x8000;
  d.setReg(R.QUEUE_PFN, area / 4096);
  assert.equal(d.reg(R.QUEUE_PFN), area / 4096);
  assert.equal(d.reg(R.QUEUE_READY), 0, "a version 2 register");
  const q = t.queue(0);
  assert.deepEqual([q.descAddr, q.driverAddr, q.deviceAddr], [area, area + 80, area + 128]);
  d.setReg(R.QUEUE_READY, 1); // ignored in legacy mode
  d.setReg(R.QUEUE_DESC_LOW, 0x1234);
  assert.equal(q.descAddr, area);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.equal(t.active, true);
  d.queues[0] = {
    size: 5,
    desc: area,
    avail: area + 80,
    used: area + 128,
    nextDesc: 0,
    availIdx: 0,
    seenUsed: 0,
  };
  const head = d.submit(0, [{ addr: d.alloc(8), len: 8, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 8 }]);
  assert.equal(rng.bytesServed, 8);
  // State survives a round trip, legacy fields included.
  const state = structuredClone(t.save());
  assert.equal(state.guestPageShift, 12);
  assert.deepEqual(state.queueAlign, [64]);
  d.setReg(R.QUEUE_PFN, 0);
  assert.equal(d.reg(R.STATUS), 0, "QueuePFN 0 reset the device");
  assert.equal(t.queue(0).ready, false);
  t.load(state);
  assert.equal(d.reg(R.QUEUE_PFN), area / 4096);
  assert.equal(t.active, true);
});

Deno.test("virtio-mmio: a broken device without VERSION_1 just stops, as QEMU's virtio_error", () => {
  const { d, t, rng } = setup();
  const [lo] = d.offered();
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES, lo);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  d.setupQueue(0, 4);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  d.publish(0, 99); // head out of range
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.match(t.lastError, /head descriptor 99/);
  assert.equal(d.reg(R.STATUS) & S.DEVICE_NEEDS_RESET, 0, "no NEEDS_RESET bit in legacy status");
  assert.equal(d.reg(R.INTERRUPT_STATUS), 0, "no config interrupt");
  assert.equal(t.active, false, "but the device serves nothing more");
  const s = structuredClone(t.save());
  assert.equal(s.broken, true);
  d.setReg(R.STATUS, 0);
  assert.equal(t.lastError, "");
  t.load(s);
  assert.equal(t.active, false, "still broken after load");
  assert.equal(rng.bytesServed, 0);
});
