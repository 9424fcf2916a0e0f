/**
 * Guest code can do anything: random instruction streams (biased towards real opcodes, with
 * random register values, CSR writes, page tables and PMP settings they produce) must only
 * ever cause architectural traps, never a host exception out of `run()`.
 */
import assert from "node:assert/strict";
import { DRAM_BASE } from "../guest_memory.ts";
import { makeMachine } from "./test_support.ts";

const OPCODES = [0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b, 0x43];
const MORE = [0x47, 0x4b, 0x4f, 0x53, 0x63, 0x67, 0x6f, 0x73];
const ALL = [...OPCODES, ...MORE];

function xorshift(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

Deno.test("random instruction streams never throw out of run()", () => {
  for (let seed = 1; seed <= 24; seed++) {
    const rnd = xorshift(seed * 2654435761);
    const image = new Uint8Array(64 * 1024);
    const dv = new DataView(image.buffer);
    for (let i = 0; i < image.length; i += 4) {
      let w = rnd();
      const kind = rnd() % 4;
      if (kind < 2) w = (w & ~0x7f) | ALL[rnd() % ALL.length];
      // Keep rs1 small-valued registers often so memory accesses land in RAM.
      if (kind === 0) w = (w & ~(31 << 15)) | ((rnd() % 4) << 15);
      dv.setUint32(i, w >>> 0, true);
    }
    const m = makeMachine(image, 1 << 20);
    for (let r = 1; r < 32; r++) {
      const v = rnd() % 3 === 0
        ? BigInt(rnd()) << 32n | BigInt(rnd())
        : BigInt(DRAM_BASE + (rnd() % 0x100000));
      m.hart.setReg(r, v);
    }
    m.hart.writeCsr(0x305, BigInt(DRAM_BASE + (rnd() % 0x10000) * 4));
    for (let step = 0; step < 50; step++) {
      m.clock.ticks += rnd() % 1000;
      m.hart.run(2000);
      if (rnd() % 8 === 0) m.hart.setPc(BigInt(DRAM_BASE + (rnd() % 0x8000) * 2));
    }
    assert.ok(m.hart.instret >= 0);
  }
});
