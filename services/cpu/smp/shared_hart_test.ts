/**
 * A hart with `sharedAtomics` (as in a hart Worker): 64-bit loads and stores copy every bit
 * (NaN payloads included, through the 8-byte path, on the TLB fast path and the slow path, for
 * ld/sd and fld/fsd), and AMOs and LR/SC give what the default path gives.
 */
import assert from "node:assert/strict";
import { DRAM_BASE, hostOffset } from "../guest_memory.ts";
import { assemble, EXIT, makeMachine } from "../hart/test_support.ts";
import { StopReason } from "../engine.ts";

const PATTERNS = [
  0x7ff0_0000_0000_0001n, // signalling NaN
  0xfff4_0000_dead_beefn, // signalling NaN, sign set
  0x7ff8_0000_0000_0000n, // quiet NaN
  0x8000_0000_0000_0000n, // -0
  0xffff_ffff_ffff_ffffn,
  0x0000_0001_0000_0000n,
  0x1234_5678_9abc_def0n,
  0n,
];
const SRC = DRAM_BASE + 0x10000, DST = DRAM_BASE + 0x20000;

Deno.test("shared hart: ld/sd keep all 64 bits (NaN payloads too) over many runs", async () => {
  const prog = await assemble(`
  li s0, ${SRC}
  li s1, ${DST}
  li s2, 20000
1:
${PATTERNS.map((_, i) => `  ld t0, ${8 * i}(s0)\n  sd t0, ${8 * i}(s1)`).join("\n")}
  addi s2, s2, -1
  bnez s2, 1b
${EXIT}`);
  const m = makeMachine(prog);
  m.hart.sharedAtomics = true;
  const b64 = new BigUint64Array(m.mem.memory.buffer);
  PATTERNS.forEach((p, i) => (b64[(hostOffset(SRC) >> 3) + i] = p));
  assert.equal(m.hart.run(10_000_000), StopReason.Halted);
  assert.deepEqual(
    PATTERNS.map((_, i) => b64[(hostOffset(DST) >> 3) + i].toString(16)),
    PATTERNS.map((p) => p.toString(16)),
  );
});

Deno.test("shared hart: AMOs and LR/SC give the default path's results", async () => {
  const prog = await assemble(`
  li s0, ${SRC}
  li t0, -5
  sd t0, 0(s0)
  li t1, 7
  amoadd.d a0, t1, (s0)
  amomax.d a1, t1, (s0)
  amominu.w a2, t0, (s0)
  amoswap.d a3, t0, (s0)
  lr.d a4, (s0)
  sc.d a5, t1, (s0)
  sc.d a6, t1, (s0)
  addi s1, s0, 8
  amoor.w a7, t1, (s1)
  ld s2, 0(s0)
  lw s3, 8(s0)
${EXIT}`);
  const regs = (shared: boolean) => {
    const m = makeMachine(prog);
    m.hart.sharedAtomics = shared;
    assert.equal(m.hart.run(100_000), StopReason.Halted);
    return [10, 11, 12, 13, 14, 15, 16, 17, 18, 19].map((r) => m.hart.getReg(r).toString(16));
  };
  const shared = regs(true);
  assert.deepEqual(shared, regs(false));
  // -5 + 7 = 2; max(2, 7) = 7; minu.w(7, -5 as u32) = 7; swap: old 7, now -5; LR -5; SC ok (0);
  // a second SC without a reservation fails (1); or.w of 8(s0) = 0 -> 7; final 7.
  assert.deepEqual(shared.slice(0, 7), [
    "fffffffffffffffb",
    "2",
    "7",
    "7",
    "fffffffffffffffb",
    "0",
    "1",
  ]);
});

Deno.test("shared hart: ld/sd and fld/fsd on the slow path (a TLB miss each) keep all 64 bits", async () => {
  // Each pattern on a page of its own, copied once: every access misses the TLB.
  const prog = await assemble(`
  li t0, 0x2000
  csrs mstatus, t0
  li s0, ${SRC}
  li s1, ${DST}
  li s3, ${SRC + 0x40000}
  li s4, ${DST + 0x40000}
  li s2, 4096
${
    PATTERNS.map(() =>
      `  ld t0, 0(s0)\n  sd t0, 0(s1)\n  fld ft0, 0(s3)\n  fsd ft0, 0(s4)\n` +
      `  add s0, s0, s2\n  add s1, s1, s2\n  add s3, s3, s2\n  add s4, s4, s2`
    ).join("\n")
  }
${EXIT}`);
  const m = makeMachine(prog);
  m.hart.sharedAtomics = true;
  const b64 = new BigUint64Array(m.mem.memory.buffer);
  const at = (base: number, i: number) => (hostOffset(base) >> 3) + i * 512;
  PATTERNS.forEach((p, i) => {
    b64[at(SRC, i)] = p;
    b64[at(SRC + 0x40000, i)] = p;
  });
  assert.equal(m.hart.run(100_000), StopReason.Halted);
  const want = PATTERNS.map((p) => p.toString(16));
  assert.deepEqual(PATTERNS.map((_, i) => b64[at(DST, i)].toString(16)), want, "ld/sd");
  assert.deepEqual(
    PATTERNS.map((_, i) => b64[at(DST + 0x40000, i)].toString(16)),
    want,
    "fld/fsd",
  );
});
