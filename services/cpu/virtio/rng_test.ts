import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { VirtioMmioReg as R, VirtioMmioTransport } from "./mmio_transport.ts";
import { cryptoEntropy, VirtioRng } from "./rng.ts";
import { TestDriver } from "./test_driver.ts";

function setup(rng: VirtioRng) {
  const mem = new GuestMemory(1 << 20);
  const t = new VirtioMmioTransport(mem, rng, () => {});
  const d = new TestDriver(mem, t);
  d.init();
  return d;
}

Deno.test("virtio-rng: injected entropy source fills the guest's buffer", () => {
  const d = setup(new VirtioRng({ entropy: (dst) => dst.fill(0xa5) }));
  assert.equal(d.reg(R.DEVICE_ID), 4);
  const buf = d.alloc(64);
  const head = d.submit(0, [{ addr: buf, len: 64, write: true }]);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 64 }]);
  assert.ok(d.get(buf, 64).every((b) => b === 0xa5));
});

Deno.test("virtio-rng: default source is crypto, requests are capped at 64 KiB", () => {
  const rng = new VirtioRng();
  const d = setup(rng);
  const buf = d.alloc(0x20000);
  d.submit(0, [{ addr: buf, len: 0x20000, write: true }]);
  assert.deepEqual(d.takeUsed(0).map((u) => u.len), [0x10000]);
  const got = d.get(buf, 0x10000);
  // 64 KiB of crypto output contains every byte value.
  assert.equal(new Set(got).size, 256);
  assert.ok(d.get(buf + 0x10000, 0x10000).every((b) => b === 0), "rest untouched");
  assert.equal(rng.bytesServed, 0x10000);
  const x = new Uint8Array(70000);
  cryptoEntropy(x);
  assert.ok(x.subarray(65536).some((b) => b !== 0), "fills past the 64 KiB getRandomValues limit");
});

Deno.test("virtio-rng: readable-only chain is answered with zero bytes", () => {
  const d = setup(new VirtioRng({ entropy: (dst) => dst.fill(1) }));
  const buf = d.alloc(8);
  d.submit(0, [{ addr: buf, len: 8 }]);
  assert.deepEqual(d.takeUsed(0).map((u) => u.len), [0]);
  assert.ok(d.get(buf, 8).every((b) => b === 0));
});
