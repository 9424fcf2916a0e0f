import assert from "node:assert/strict";
import { DRAM_BASE, GuestMemory, RAM_OFFSET } from "../guest_memory.ts";
import { type BlockBackendClient, VirtioBlk } from "./blk.ts";
import type { VirtioDevice } from "./device.ts";
import { VirtioMmioReg as R, VirtioMmioTransport } from "./mmio_transport.ts";
import { VirtioNet } from "./net.ts";
import { VirtioRng } from "./rng.ts";
import { TestDriver } from "./test_driver.ts";

/** xorshift32: a seeded generator so a failure can be replayed. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

const RAM = 256 << 10;
const disk = new Uint8Array(64 * 512);
const backend: BlockBackendClient = {
  info: () => Promise.resolve({ sizeBytes: disk.length, readOnly: false, discard: true }),
  read: (o, n) => Promise.resolve(disk.slice(o, o + n)),
  write: (o, d) => Promise.resolve(void disk.set(d, o)),
  flush: () => Promise.resolve(),
  discard: () => Promise.resolve(),
};

const devices: [string, () => VirtioDevice][] = [
  ["rng", () => new VirtioRng({ entropy: (d) => d.fill(1) })],
  ["net", () => new VirtioNet({ send: () => {} }, { mac: "52:54:00:00:00:01" })],
  ["blk", () => new VirtioBlk(backend, { sizeBytes: disk.length, readOnly: false, discard: true })],
];

for (const [name, make] of devices) {
  Deno.test(`fuzz: random rings and descriptors never throw (${name})`, async () => {
    const next = prng(0x5eed + name.length);
    let needsReset = 0, served = 0;
    for (let iter = 0; iter < 300; iter++) {
      const mem = new GuestMemory(RAM);
      const dev = make();
      const t = new VirtioMmioTransport(mem, dev, () => {});
      const d = new TestDriver(mem, t);
      d.init({ size: 8 });
      // Scribble over descriptor tables, rings and the start of the heap.
      for (const q of d.queues) {
        const start = q.desc - DRAM_BASE + RAM_OFFSET;
        const len = q.used + 6 + 8 * q.size - q.desc;
        for (let i = 0; i < len; i++) if (next() % 4 === 0) mem.u8[start + i] = next();
        // Point some descriptors at plausible RAM so that some chains are valid.
        for (let i = 0; i < q.size; i++) {
          if (next() % 2) {
            d.w64(q.desc + 16 * i, DRAM_BASE + 0x8000 + (next() % 0x1000));
            d.w32(q.desc + 16 * i + 8, next() % 2048);
          }
        }
        d.w16(q.avail + 2, next() % 12);
      }
      for (let q = 0; q < d.queues.length; q++) d.setReg(R.QUEUE_NOTIFY, q);
      if (dev instanceof VirtioNet) dev.receive(new Uint8Array(60 + (next() % 1500)));
      await new Promise((r) => setTimeout(r, 0));
      // Random register traffic afterwards.
      for (let i = 0; i < 20; i++) {
        const off = (next() % 0x140) & ~3;
        if (next() % 2) t.write(off, 4, next());
        else t.read(off, 4);
      }
      assert.equal(t.deviceExceptions, 0, `device threw: ${t.lastError}`);
      if (d.reg(R.STATUS) & 64) needsReset++;
      for (let q = 0; q < d.queues.length; q++) served += t.queue(q).usedIdx;
    }
    // Both outcomes were exercised: malformed input rejected, well-formed input served.
    assert.ok(needsReset > 0, "some chains were malformed");
    assert.ok(served > 0, "some chains were served");
  });
}

for (const legacy of [false, true]) {
  Deno.test(`fuzz: random register traffic never throws (${legacy ? "legacy" : "modern"})`, () => {
    const next = prng(legacy ? 0x1e9 : 0x30d);
    const regs = Object.values(R).filter((o) => o < R.CONFIG);
    for (let iter = 0; iter < 200; iter++) {
      const mem = new GuestMemory(RAM);
      const rng = new VirtioRng({ entropy: (d) => d.fill(2) });
      const t = new VirtioMmioTransport(mem, rng, () => {}, "fuzz", { legacy });
      for (let i = 0; i < 200; i++) {
        const off = next() % 4 === 0 ? (next() % 0x120) & ~3 : regs[next() % regs.length];
        // Values that mean something: small numbers, RAM addresses and pages, status bits.
        const kind = next() % 4;
        const value = kind === 0
          ? next() % 16
          : kind === 1
          ? DRAM_BASE + (next() % RAM)
          : kind === 2
          ? (DRAM_BASE + (next() % RAM)) >>> 12
          : next();
        if (next() % 3) t.write(off, 4, value);
        else {
          const v = t.read(off, 4);
          assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32, `read ${v}`);
        }
      }
      t.write(R.QUEUE_NOTIFY, 4, 0);
      assert.equal(t.deviceExceptions, 0, `device threw: ${t.lastError}`);
      const copy = new VirtioMmioTransport(mem, new VirtioRng(), () => {}, "copy", { legacy });
      // Whatever the guest wrote, the state goes through a snapshot and loads back.
      copy.load(structuredClone(t.save()));
      assert.deepEqual(copy.save(), t.save(), "state loads back");
    }
  });
}
