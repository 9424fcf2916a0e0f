import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import {
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VirtioMmioReg as R,
  VirtioMmioTransport,
} from "./mmio_transport.ts";
import {
  parseMac,
  RX_BACKLOG_FRAMES,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_LEGACY_HDR_SIZE,
  VirtioNet,
  VirtioNetFeature,
} from "./net.ts";
import { VirtioStatus as S } from "./device.ts";
import { TestDriver } from "./test_driver.ts";

function setup() {
  const mem = new GuestMemory(1 << 20);
  const sent: Uint8Array[] = [];
  const net = new VirtioNet({ send: (f) => void sent.push(f) }, { mac: "52:54:00:12:34:56" });
  const t = new VirtioMmioTransport(mem, net, () => {});
  const d = new TestDriver(mem, t);
  return { mem, sent, net, t, d };
}

function frame(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);
}

Deno.test("virtio-net: MAC, link status and features in config space", () => {
  const { d } = setup();
  assert.equal(d.reg(R.DEVICE_ID), 1);
  const [lo] = d.offered();
  assert.ok(lo & (1 << VirtioNetFeature.MAC));
  assert.ok(lo & (1 << VirtioNetFeature.STATUS));
  const mac = [0, 1, 2, 3, 4, 5].map((i) => d.t.read(R.CONFIG + i, 1));
  assert.deepEqual(mac, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  assert.equal(d.t.read(R.CONFIG + 6, 2), 1, "VIRTIO_NET_S_LINK_UP");
  assert.throws(() => parseMac("52:54:00:12:34"), RangeError);
});

Deno.test("virtio-net: tx strips the virtio_net_hdr and sends the frame", () => {
  const { d, sent, net } = setup();
  d.init();
  const f = frame(60, 1);
  const hdr = d.alloc(VIRTIO_NET_HDR_SIZE);
  const p1 = d.alloc(20), p2 = d.alloc(40);
  d.put(p1, f.subarray(0, 20));
  d.put(p2, f.subarray(20));
  const head = d.submit(1, [
    { addr: hdr, len: VIRTIO_NET_HDR_SIZE },
    { addr: p1, len: 20 },
    { addr: p2, len: 40 },
  ]);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0], f);
  assert.deepEqual(d.takeUsed(1), [{ id: head, len: 0 }]);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
  // A runt (shorter than an Ethernet header) is dropped but its buffer still returned.
  d.submit(1, [{ addr: hdr, len: VIRTIO_NET_HDR_SIZE }, { addr: p1, len: 4 }]);
  assert.equal(sent.length, 1);
  assert.equal(d.takeUsed(1).length, 1);
  assert.deepEqual(net.stats, { rxFrames: 0, rxDropped: 0, txFrames: 1, txDropped: 1 });
});

Deno.test("virtio-net: rx fills posted buffers, drops when none or too small", () => {
  const { d, net } = setup();
  assert.equal(net.receive(frame(60, 0)), false, "before DRIVER_OK");
  d.init();
  // A small buffer (header + 100 bytes), then a big one split over two descriptors.
  const small = d.alloc(VIRTIO_NET_HDR_SIZE + 100);
  const big1 = d.alloc(VIRTIO_NET_HDR_SIZE + 500), big2 = d.alloc(1100);
  const h1 = d.addChain(0, [{ addr: small, len: VIRTIO_NET_HDR_SIZE + 100, write: true }]);
  d.publish(0, h1);
  const h2 = d.addChain(0, [
    { addr: big1, len: VIRTIO_NET_HDR_SIZE + 500, write: true },
    { addr: big2, len: 1100, write: true },
  ]);
  d.publish(0, h2);
  d.setReg(R.QUEUE_NOTIFY, 0);
  const f1 = frame(1000, 7);
  assert.equal(net.receive(f1), false, "1000 bytes do not fit the first buffer");
  const f2 = frame(64, 3);
  assert.equal(net.receive(f2), true);
  assert.deepEqual(d.takeUsed(0), [{ id: h1, len: VIRTIO_NET_HDR_SIZE + 64 }]);
  const hdr = d.get(small, VIRTIO_NET_HDR_SIZE);
  assert.deepEqual([...hdr], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "num_buffers = 1");
  assert.deepEqual(d.get(small + VIRTIO_NET_HDR_SIZE, 64), f2);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_VRING);
  assert.equal(net.receive(f1), true);
  assert.deepEqual(d.takeUsed(0), [{ id: h2, len: VIRTIO_NET_HDR_SIZE + 1000 }]);
  const got = new Uint8Array([...d.get(big1 + VIRTIO_NET_HDR_SIZE, 500), ...d.get(big2, 500)]);
  assert.deepEqual(got, f1);
  assert.equal(net.receive(f1), true, "ring empty again: the frame waits in the backlog");
  assert.equal(net.backlogged, 1);
  assert.deepEqual(net.stats, { rxFrames: 2, rxDropped: 2, txFrames: 0, txDropped: 0 });
});

Deno.test("virtio-net: frames beyond the posted buffers wait, in order, until the driver posts more", () => {
  const { d, net } = setup();
  d.init();
  const bufs = [0, 1, 2].map(() => d.alloc(VIRTIO_NET_HDR_SIZE + 200));
  const first = d.submit(0, [{ addr: bufs[0], len: VIRTIO_NET_HDR_SIZE + 200, write: true }]);
  const frames = [0, 1, 2, 3].map((i) => frame(60 + i, i));
  for (const f of frames) assert.equal(net.receive(f), true);
  assert.deepEqual(d.takeUsed(0), [{ id: first, len: VIRTIO_NET_HDR_SIZE + 60 }]);
  assert.equal(net.backlogged, 3);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_VRING);
  // Two more buffers and one kick: two frames go in with one interrupt, the oldest first.
  d.setUsedEvent(0, 1);
  const h1 = d.addChain(0, [{ addr: bufs[1], len: VIRTIO_NET_HDR_SIZE + 200, write: true }]);
  d.publish(0, h1);
  const h2 = d.addChain(0, [{ addr: bufs[2], len: VIRTIO_NET_HDR_SIZE + 200, write: true }]);
  d.publish(0, h2);
  d.setReg(R.QUEUE_NOTIFY, 0);
  assert.deepEqual(d.takeUsed(0), [
    { id: h1, len: VIRTIO_NET_HDR_SIZE + 61 },
    { id: h2, len: VIRTIO_NET_HDR_SIZE + 62 },
  ]);
  assert.deepEqual(d.get(bufs[1] + VIRTIO_NET_HDR_SIZE, 61), frames[1]);
  assert.deepEqual(d.get(bufs[2] + VIRTIO_NET_HDR_SIZE, 62), frames[2]);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_VRING);
  assert.equal(net.backlogged, 1);
  // The backlog survives save/load (a snapshot between two frames loses none).
  const saved = structuredClone(net.save());
  const again = setup();
  again.d.init();
  again.net.load(saved);
  assert.equal(again.net.backlogged, 1);
  // A full backlog drops the newest frames; a reset drops the backlog.
  for (let i = 0; i < RX_BACKLOG_FRAMES; i++) net.receive(frame(60, 0));
  assert.equal(net.backlogged, RX_BACKLOG_FRAMES);
  assert.equal(net.stats.rxDropped, 1);
  net.reset();
  assert.equal(net.backlogged, 0);
});

Deno.test("virtio-net: one tx kick's frames go to sendMany together, in order", () => {
  const mem = new GuestMemory(1 << 20);
  const batches: Uint8Array[][] = [];
  const net = new VirtioNet({
    send: () => assert.fail("send with sendMany there"),
    sendMany: (fs) => void batches.push([...fs]),
  }, { mac: "52:54:00:12:34:56" });
  const d = new TestDriver(mem, new VirtioMmioTransport(mem, net, () => {}));
  d.init();
  const frames = [0, 1, 2].map((i) => frame(60 + i, i));
  const heads = frames.map((f) => {
    const b = d.alloc(VIRTIO_NET_HDR_SIZE + f.length);
    d.put(b + VIRTIO_NET_HDR_SIZE, f);
    const h = d.addChain(1, [{ addr: b, len: VIRTIO_NET_HDR_SIZE + f.length }]);
    d.publish(1, h);
    return h;
  });
  d.setReg(R.QUEUE_NOTIFY, 1);
  assert.deepEqual(batches, [frames]);
  assert.deepEqual(d.takeUsed(1).map((u) => u.id), heads);
  assert.equal(net.stats.txFrames, 3);
});

Deno.test("virtio-net: link down raises a config change and stops traffic", () => {
  const { d, net, sent, t } = setup();
  d.init();
  const gen = d.reg(R.CONFIG_GENERATION);
  net.setLink(false);
  assert.equal(d.t.read(R.CONFIG + 6, 2), 0);
  assert.equal(d.reg(R.CONFIG_GENERATION), gen + 1);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
  const hdr = d.alloc(VIRTIO_NET_HDR_SIZE + 60);
  d.submit(1, [{ addr: hdr, len: VIRTIO_NET_HDR_SIZE + 60 }]);
  assert.equal(sent.length, 0);
  assert.equal(net.receive(frame(60, 0)), false);
  const s = structuredClone(t.save());
  net.setLink(true);
  t.load(s);
  assert.equal(net.linkUp, false, "link state restored by load");
});

/** Brings the device up as a driver without VERSION_1 (low feature word only). */
function initLegacy(d: TestDriver) {
  const [lo] = d.offered();
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  d.setReg(R.DRIVER_FEATURES, lo);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  d.setupQueue(0, 8);
  d.setupQueue(1, 8);
  d.setReg(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
}

Deno.test("virtio-net: without VERSION_1 the header is the legacy 10 bytes, both ways (QEMU)", () => {
  const { d, sent, net } = setup();
  initLegacy(d);
  const f = frame(60, 3);
  const hdr = d.alloc(VIRTIO_NET_LEGACY_HDR_SIZE);
  const p = d.alloc(60);
  d.put(p, f);
  d.submit(1, [{ addr: hdr, len: VIRTIO_NET_LEGACY_HDR_SIZE }, { addr: p, len: 60 }]);
  assert.deepEqual(sent, [f]);
  const rx = d.alloc(256);
  d.put(rx, new Uint8Array(256).fill(0xee));
  const head = d.submit(0, [{ addr: rx, len: 256, write: true }]);
  const g = frame(64, 9);
  assert.equal(net.receive(g), true);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: VIRTIO_NET_LEGACY_HDR_SIZE + 64 }]);
  assert.deepEqual([...d.get(rx, VIRTIO_NET_LEGACY_HDR_SIZE)], new Array(10).fill(0));
  assert.deepEqual(d.get(rx + VIRTIO_NET_LEGACY_HDR_SIZE, 64), g);
});

Deno.test("virtio-net: a driver without VERSION_1 may set the MAC in config space (QEMU)", () => {
  const { d, net } = setup();
  initLegacy(d);
  d.t.write(R.CONFIG + 0, 4, 0x03020100);
  d.t.write(R.CONFIG + 4, 2, 0x0504);
  d.t.write(R.CONFIG + 6, 2, 0); // status is read-only
  assert.deepEqual([...net.mac], [0, 1, 2, 3, 4, 5]);
  assert.equal(d.t.read(R.CONFIG + 6, 2), 1);
  assert.deepEqual(net.save().mac, [0, 1, 2, 3, 4, 5]);
  // With VERSION_1 the MAC is read-only.
  const v1 = setup();
  v1.d.init();
  v1.d.t.write(R.CONFIG + 0, 4, 0);
  assert.deepEqual([...v1.net.mac], [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
});

Deno.test("virtio-net: changeMac bounces the link, up again once the driver read the status", () => {
  const { d, net, sent } = setup();
  d.init();
  const gen = d.reg(R.CONFIG_GENERATION);
  net.changeMac("52:54:00:ab:cd:ef", 60_000);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => d.t.read(R.CONFIG + i, 1)), [
    0x52,
    0x54,
    0x00,
    0xab,
    0xcd,
    0xef,
  ]);
  assert.equal(net.linkUp, false);
  assert.equal(net.bouncing, true);
  assert.equal(d.reg(R.CONFIG_GENERATION), gen + 1);
  assert.equal(d.ack(), VIRTIO_MMIO_INT_CONFIG);
  // While down, nothing goes in or out.
  assert.equal(net.receive(frame(60, 0)), false);
  const hdr = d.alloc(VIRTIO_NET_HDR_SIZE + 60);
  d.submit(1, [{ addr: hdr, len: VIRTIO_NET_HDR_SIZE + 60 }]);
  assert.equal(sent.length, 0);
  d.ack();
  // The driver's status read answers "down"; right after it the link is up, with a second
  // config change interrupt, and the driver's next read sees it.
  assert.equal(d.t.read(R.CONFIG + 6, 2), 0);
  assert.equal(net.linkUp, true);
  assert.equal(net.bouncing, false);
  assert.equal(d.reg(R.CONFIG_GENERATION), gen + 2);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
  assert.equal(d.t.read(R.CONFIG + 6, 2), 1);
  assert.equal(d.reg(R.CONFIG_GENERATION), gen + 2, "no third change");
  assert.deepEqual([...net.save().mac!], [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
  assert.throws(() => net.changeMac("52:54:00"), RangeError);
  assert.throws(() => net.changeMac("52:54:00:ab:cd:ef", -1), RangeError);
});

Deno.test("virtio-net: changeMac brings the link back after maxDownMs if the status is never read", async () => {
  const { d, net } = setup();
  d.init();
  const gen = d.reg(R.CONFIG_GENERATION);
  net.changeMac("52:54:00:00:00:01", 30);
  assert.equal(net.linkUp, false);
  d.ack();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(net.linkUp, true);
  assert.equal(d.reg(R.CONFIG_GENERATION), gen + 2);
  assert.equal(d.reg(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
});

Deno.test("virtio-net: changeMac before the driver runs only changes the MAC; a bounce survives save/load", () => {
  const fresh = setup();
  fresh.net.changeMac("52:54:00:00:00:02");
  assert.equal(fresh.net.linkUp, true);
  assert.equal(fresh.net.bouncing, false);
  assert.equal(fresh.d.reg(R.INTERRUPT_STATUS), 0);
  assert.equal(fresh.t.read(R.CONFIG + 5, 1), 2);
  // A bounce in a saved state goes on in the loaded device: down until the status is read.
  const { d, net, t } = setup();
  d.init();
  net.changeMac("52:54:00:00:00:03", 60_000);
  const s = structuredClone(t.save());
  const other = setup();
  other.d.init();
  other.t.load(s);
  assert.equal(other.net.linkUp, false);
  assert.equal(other.net.bouncing, true);
  assert.equal(other.t.read(R.CONFIG + 6, 2), 0);
  assert.equal(other.net.linkUp, true);
  // A device reset ends a bounce with the link up (the next probe reads it so).
  net.reset();
  assert.equal(net.linkUp, true);
  assert.equal(net.bouncing, false);
});
