/**
 * The translator against the interpreter: the same program run by the interpreter alone and
 * by translated regions (with the interpreter for what they leave out) must end in the same
 * registers and memory.
 */
import assert from "node:assert/strict";
import { DRAM_BASE, RAM_OFFSET } from "../../guest_memory.ts";
import { assemble, EXIT, makeMachine, type TestMachine } from "../../hart/test_support.ts";
import { RegionRunner } from "./region_runner_test_support.ts";
import { randomProgram } from "./random_program_test_support.ts";
import { type GuestInsn, Kind, type Region } from "./region.ts";
import { planRegion } from "./emit.ts";

const RAM = 8 << 20;
/** Guest buffer the programs write (below the runner's reserved top). */
const DATA = DRAM_BASE + 0x10_0000;

function snapshot(m: TestMachine): { regs: bigint[]; data: number[] } {
  const regs: bigint[] = [];
  for (let i = 0; i < 32; i++) regs.push(m.hart.getReg(i));
  const host = RAM_OFFSET + (DATA - DRAM_BASE);
  return { regs, data: Array.from(m.mem.u8.subarray(host, host + 4096)) };
}

async function both(source: string, maxInsns = 2_000_000, chain = true) {
  const bin = await assemble(source);
  const a = makeMachine(bin, RAM);
  a.hart.run(maxInsns);
  const b = makeMachine(bin, RAM);
  const runner = new RegionRunner(b, chain);
  runner.run(maxInsns);
  return { interp: a, jit: b, stats: runner.stats };
}

/** The translated run ended with the interpreter's registers and instruction count. */
function assertAgree(r: { interp: TestMachine; jit: TestMachine }, what = ""): void {
  assert.deepEqual(snapshot(r.jit).regs, snapshot(r.interp).regs, what);
  assert.equal(r.jit.hart.instret, r.interp.hart.instret, what);
}

const PROGRAM = `
  .globl _start
_start:
  li sp, ${DRAM_BASE + 0xf_0000}
  li s0, ${DATA}
  li s1, 0            # sum
  li s2, 0x9e3779b97f4a7c15
  li s3, 2000         # iterations
  li s4, 0
loop:
  # xorshift64
  slli t0, s2, 13
  xor s2, s2, t0
  srli t0, s2, 7
  xor s2, s2, t0
  slli t0, s2, 17
  xor s2, s2, t0
  add s1, s1, s2
  # 32-bit ops and M extension, including the division corner cases
  addw t1, s1, s2
  subw t2, s1, s2
  sllw t3, s2, s1
  sraw t4, s2, s1
  mul a0, s1, s2
  mulh a1, s1, s2
  mulhu a2, s1, s2
  mulhsu a3, s1, s2
  andi t5, s4, 3
  div a4, s2, t5
  divu a5, s2, t5
  rem a6, s2, t5
  remu a7, s2, t5
  divw t1, s2, t5
  remuw t2, s2, t5
  add s1, s1, a0
  xor s1, s1, a1
  add s1, s1, a2
  xor s1, s1, a3
  add s1, s1, a4
  add s1, s1, a5
  xor s1, s1, a6
  add s1, s1, a7
  add s1, s1, t1
  add s1, s1, t2
  add s1, s1, t3
  add s1, s1, t4
  # stores and loads of every width, some misaligned (slow path), through a rotating slot
  andi t0, s4, 255
  slli t0, t0, 4
  add t0, t0, s0
  sd s2, 0(t0)
  sw s1, 8(t0)
  sh s2, 12(t0)
  sb s1, 14(t0)
  lb t1, 14(t0)
  lbu t2, 13(t0)
  lh t3, 12(t0)
  lhu t4, 12(t0)
  lw t5, 8(t0)
  lwu t6, 8(t0)
  ld a0, 0(t0)
  add s1, s1, t1
  add s1, s1, t2
  add s1, s1, t3
  add s1, s1, t4
  add s1, s1, t5
  add s1, s1, t6
  add s1, s1, a0
  ld a1, 3(t0)        # misaligned
  xor s1, s1, a1
  # slt family and a call through jal/jalr
  slt a2, s1, s2
  sltu a3, s1, s2
  slti a4, s1, -5
  sltiu a5, s2, 17
  add s4, s4, a2
  add s4, s4, a3
  add s4, s4, a4
  add s4, s4, a5
  jal ra, leaf
  addi s4, s4, 1
  addi s3, s3, -1
  bnez s3, loop
  sd s1, 2040(s0)
  sd s4, 2032(s0)
  auipc a0, 0
  sd a0, 2024(s0)
${EXIT}
leaf:
  srai t0, s1, 3
  sub s1, s1, t0
  lui t1, 0xfffff
  or s1, s1, t1
  ret
`;

for (const chain of [false, true]) {
  const how = chain ? "regions chained in wasm" : "every exit returns to TypeScript";
  Deno.test(`translated code ends in the same state as the interpreter (${how})`, async () => {
    const { interp, jit, stats } = await both(PROGRAM, 2_000_000, chain);
    const a = snapshot(interp), b = snapshot(jit);
    assert.deepEqual(b.regs, a.regs);
    assert.deepEqual(b.data, a.data);
    assert.equal(jit.hart.instret, interp.hart.instret, "instructions retired");
    // Most of the work must have run translated, or the comparison proves little.
    assert.ok(stats.translatedInsns > 0.9 * jit.hart.instret, JSON.stringify(stats));
    assert.ok(stats.slowExits >= 2000, `misaligned loads take the slow path: ${stats.slowExits}`);
  });
}

Deno.test("chained regions call each other in wasm: a loop calling a function on another page", async () => {
  const src = `
  .globl _start
_start:
  li s3, 5000
  li s1, 0
loop:
  mv a0, s3
  call far
  add s1, s1, a0
  addi s3, s3, -1
  bnez s3, loop
${EXIT}
  .balign 4096
far:
  slli a0, a0, 1
  xori a0, a0, 0x55
  ret
`;
  const budget = 1_000_000;
  const unchained = await both(src, budget, false);
  const chained = await both(src, budget, true);
  for (const r of [unchained, chained]) {
    assertAgree(r);
  }
  // Without chaining every call and return goes back to TypeScript (two per iteration).
  assert.ok(unchained.stats.entries >= 10_000, JSON.stringify(unchained.stats));
  assert.ok(chained.stats.entries < 50, JSON.stringify(chained.stats));
});

Deno.test("random instruction streams: translated and interpreted runs agree", async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const src = randomProgram(seed * 7919, 300, DATA);
    const { interp, jit, stats } = await both(src, 100_000, seed % 2 === 0);
    const a = snapshot(interp), b = snapshot(jit);
    assert.deepEqual(b.regs, a.regs, `seed ${seed}`);
    assert.deepEqual(b.data, a.data, `seed ${seed}`);
    assert.equal(jit.hart.instret, interp.hart.instret, `seed ${seed} instret`);
    assert.ok(stats.translatedInsns > 0, `seed ${seed}: ${JSON.stringify(stats)}`);
  }
});

Deno.test("loops stay wasm loops: nested, entered in the middle, and one with two entries", async () => {
  const reducible = `
  .globl _start
_start:
  li s1, 0
  li s3, 300          # outer iterations
outer:
  li s4, 40           # inner iterations: the loop is entered at its test (gcc's rotation)
  j test
body:
  add s1, s1, s4
  andi t0, s4, 1
  beqz t0, even
  xori s1, s1, 0x35
even:
  addi s4, s4, -1
test:
  bnez s4, body
  addi s3, s3, -1
  bnez s3, outer
${EXIT}
`;
  const r = await both(reducible, 2_000_000, false);
  assertAgree(r);
  // Every exit returns to TypeScript here: loops that left the region would show as entries.
  assert.ok(r.stats.entries < r.jit.hart.instret / 900, JSON.stringify(r.stats));
  // Two entries into one loop (irreducible): edges into its middle leave the region.
  const irreducible = `
  .globl _start
_start:
  li s1, 0
  li s3, 2000
  andi t0, s3, 1
  bnez t0, second
first:
  addi s1, s1, 3
second:
  addi s1, s1, 5
  addi s3, s3, -1
  beqz s3, done
  andi t0, s3, 7
  beqz t0, first
  j second
done:
${EXIT}
`;
  for (const chain of [false, true]) {
    const q = await both(irreducible, 100_000, chain);
    assertAgree(q, `chain ${chain}`);
  }
});

Deno.test("planRegion: a loop entered at its test is headed there; its body cannot be entered", () => {
  // Blocks in address order: 0 entry, 1 loop head (test), 2 body, 3 after. The entry jumps to
  // the test, which branches back to the body: the loop is [test, body] in emission order.
  const insn = (pc: number, word: number): GuestInsn => ({
    pc,
    insn: word,
    len: 4,
    kind: Kind.Inline,
  });
  const base = 0x8000_0000;
  // 0: addi x1,x0,4 ; j +8 (to 12) | 8: addi x1,x1,-1 | 12: bnez x1, -4 (to 8) | 16: addi x2,x0,1
  const region: Region = {
    entry: base,
    blocks: [
      { start: base, insns: [insn(base, 0x00400093), insn(base + 4, 0x0080006f)] },
      { start: base + 8, insns: [insn(base + 8, 0xfff08093)] },
      { start: base + 12, insns: [insn(base + 12, 0xfe009ee3)] },
      { start: base + 16, insns: [insn(base + 16, 0x00100113)] },
    ],
    insnCount: 5,
  };
  const index = new Map(region.blocks.map((b, i) => [b.start, i]));
  const plan = planRegion(region, index);
  assert.deepEqual(plan.order.slice(0, 2), [0, 2], "the entry, then the loop's test");
  const head = plan.pos[2], loop = plan.loopAt[head];
  assert.ok(loop >= 0, "the test block heads a loop");
  assert.ok(plan.loopEnd[loop] >= plan.pos[1], "the loop reaches its back-edge");
  assert.equal(plan.scope[plan.pos[1]], loop, "the body is inside the loop");
  assert.equal(plan.scope[plan.pos[0]], -1, "the entry can be entered");
  assert.equal(plan.scope[head], -1, "the loop head can be entered");
});
