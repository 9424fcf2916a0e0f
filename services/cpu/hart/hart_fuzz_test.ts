/**
 * Guest code can do anything: random instruction streams (biased towards real opcodes, with
 * random register values, CSR writes, page tables and PMP settings they produce) must only
 * ever cause architectural traps, never a host exception out of `run()`; the hart's
 * invariants hold after each run and its state survives a save/load round trip.
 */
import assert from "node:assert/strict";
import { DRAM_BASE } from "../guest_memory.ts";
import { makeMachine, type TestMachine } from "./test_support.ts";

/** Invariants any hart state satisfies, whatever the guest did. */
function checkInvariants(m: TestMachine, what: string): void {
  assert.equal(m.hart.getReg(0), 0n, `${what}: x0 is zero`);
  assert.equal(m.hart.getPc() & 1n, 0n, `${what}: pc is 2-byte aligned`);
  assert.ok([0, 1, 3].includes(m.hart.priv), `${what}: privilege ${m.hart.priv}`);
}

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
    const before = m.hart.instret;
    for (let step = 0; step < 50; step++) {
      m.clock.ticks += rnd() % 1000;
      m.hart.run(2000);
      checkInvariants(m, `seed ${seed} step ${step}`);
      if (rnd() % 8 === 0) m.hart.setPc(BigInt(DRAM_BASE + (rnd() % 0x8000) * 2));
    }
    assert.ok(m.hart.instret > before, `seed ${seed}: instructions retired`);
    // Whatever state the stream left, a fresh hart loaded with it saves the same bytes.
    const copy = makeMachine(new Uint8Array(4), 1 << 20);
    copy.hart.load(structuredClone(m.hart.save()));
    assert.deepEqual(copy.hart.save().bytes, m.hart.save().bytes, `seed ${seed}: round trip`);
  }
});
