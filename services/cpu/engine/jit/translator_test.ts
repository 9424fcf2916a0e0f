/**
 * The translator inside a real hart (`engine: "jit"`) against the interpreter alone: the same
 * programs, compared at the end and in lockstep at short intervals, including the helper
 * paths (floating point, CSR reads, AMOs, traps) and code that rewrites itself.
 */
import assert from "node:assert/strict";
import { DRAM_BASE, hostOffset } from "../../guest_memory.ts";
import { Hart } from "../../hart/hart.ts";
import { assemble, EXIT, makeMachine, type TestMachine } from "../../hart/test_support.ts";
import { randomProgram } from "./random_program_test_support.ts";

const RAM = 4 << 20;
const DATA = DRAM_BASE + 0x10_0000;

/** A machine of hart/test_support.ts whose hart translates (synchronously, soon by default). */
function jitMachine(binary: Uint8Array, threshold = 2): TestMachine {
  const m = makeMachine(binary, RAM);
  const hart = new Hart({
    mem: m.mem,
    hartId: 0,
    bus: m.bus,
    clock: m.clock,
    engine: "jit",
    translator: { threshold, async: false },
  });
  hart.reset(DRAM_BASE);
  return { ...m, hart };
}

function state(m: TestMachine) {
  const x: bigint[] = [], f: bigint[] = [];
  for (let i = 0; i < 32; i++) {
    x.push(m.hart.getReg(i));
    f.push(m.hart.getFReg(i));
  }
  const host = hostOffset(DATA);
  return {
    pc: m.hart.getPc(),
    instret: m.hart.instret,
    x,
    f,
    fcsr: m.hart.readCsr(0x003),
    mcause: m.hart.readCsr(0x342),
    data: Array.from(m.mem.u8.subarray(host, host + 4096)),
  };
}

const HELPERS = `
  .globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  li t0, 0x2000          # mstatus.FS = initial
  csrs mstatus, t0
  li s0, ${DATA}
  li s3, 3000
  li s1, 0
  fcvt.d.l fs0, zero
  li t0, 3
  fcvt.d.l fs1, t0
loop:
  # floating point through the helper, with x results (fcvt, fmv, compare) and f results
  fadd.d fs0, fs0, fs1
  fcvt.l.d a2, fs0
  fmv.x.d a3, fs0
  flt.d a4, fs1, fs0
  add s1, s1, a2
  xor s1, s1, a3
  add s1, s1, a4
  fsd fs0, 8(s0)
  fld fa5, 8(s0)
  # a CSR read and AMOs
  csrr a5, mscratch
  add s1, s1, a5
  amoadd.d a6, s3, (s0)
  add s1, s1, a6
  lr.d a7, (s0)
  sc.d t1, s1, (s0)
  add s1, s1, t1
  # every 1000 iterations: an illegal instruction, taken and skipped by the handler
  li t2, 1000
  remu t3, s3, t2
  bnez t3, 1f
  .word 0
1:
  addi s3, s3, -1
  bnez s3, loop
  sd s1, 16(s0)
${EXIT}
  .balign 4
trap:
  csrr t4, mepc
  addi t4, t4, 4
  csrw mepc, t4
  csrr t5, mcause
  add s1, s1, t5
  csrw mscratch, s1
  mret
`;

Deno.test("translated code with helpers (FP, CSR reads, AMOs, traps) ends as the interpreter does", async () => {
  const bin = await assemble(HELPERS);
  const a = makeMachine(bin, RAM);
  a.hart.run(5_000_000);
  const b = jitMachine(bin);
  b.hart.run(5_000_000);
  assert.deepEqual(state(b), state(a));
  const s = b.hart.translator!.stats;
  assert.ok(s.translatedInsns > 0.5 * b.hart.instret, JSON.stringify(s));
  assert.ok(s.helperCalls > 3000, `FP, CSR and AMO instructions ran as helpers: ${s.helperCalls}`);
});

const PATCH = `
  .globl _start
_start:
  li s3, 300
  li s1, 0
  la s2, code
loop:
  li a1, 0x00000513      # addi a0, zero, 0 ...
  slli t0, s3, 20
  or a1, a1, t0          # ... with the loop counter as immediate
  mv a0, s2
  jalr ra, 0(s2)
  add s1, s1, a0
  addi s3, s3, -1
  bnez s3, loop
${EXIT}
  .balign 4096
  .option norvc
code:
  sw a1, 12(a0)          # patches the instruction at code + 12 ...
  nop
  nop
  addi a0, zero, 1       # ... which must run as patched
  ret
`;

Deno.test("a store into the running region's own straight line is seen by the next instruction", async () => {
  const bin = await assemble(PATCH);
  const a = makeMachine(bin, RAM);
  a.hart.run(1_000_000);
  const b = jitMachine(bin);
  b.hart.run(1_000_000);
  assert.equal(a.hart.getReg(9), BigInt((300 * 301) / 2), "the interpreter runs the patch");
  assert.deepEqual(state(b), state(a));
  assert.ok(b.hart.translator!.stats.invalidations > 0, "the store dropped translated code");
});

Deno.test("lockstep over random instruction streams: same state at every interval", async () => {
  for (let seed = 1; seed <= 8; seed++) {
    const bin = await assemble(randomProgram(seed * 104729, 200, DATA, 30));
    const a = makeMachine(bin, RAM);
    const b = jitMachine(bin);
    let steps = 0;
    while (steps++ < 10_000 && b.hart.run(37) === 0) {
      const behind = b.hart.instret - a.hart.instret;
      if (behind > 0) a.hart.run(behind);
      assert.equal(a.hart.instret, b.hart.instret, `seed ${seed} step ${steps}: instret`);
      assert.deepEqual(state(b), state(a), `seed ${seed} step ${steps}`);
    }
    assert.ok(b.hart.translator!.stats.translatedInsns > 0, `seed ${seed}: nothing translated`);
  }
});

const IRQ_ENABLE = `
  .globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  li t0, 2               # mie.SSIE: a supervisor software interrupt, taken in M (no mideleg)
  csrw mie, t0
  li s1, 0
  li s2, 0
  li s3, 3000
loop:
  csrci mstatus, 8       # MIE off (a CSR write the region goes on after)
  andi t1, s3, 7
  bnez t1, 1f
  csrsi mip, 2           # every 8th round: SSIP pending while MIE is off
1:
  addi s1, s1, 1
  csrsi mstatus, 8       # MIE on: a pending SSIP is taken before the next instruction
  addi s1, s1, 1
  addi s3, s3, -1
  bnez s3, loop
  li s0, ${DATA}
  sd s2, 0(s0)
${EXIT}
  .balign 4
trap:
  add s2, s2, s1         # where the interrupt landed
  csrci mip, 2
  mret
`;

Deno.test("an interrupt enabled by a CSR write inside translated code is taken before the next instruction", async () => {
  const bin = await assemble(IRQ_ENABLE);
  const a = makeMachine(bin, RAM);
  a.hart.run(2_000_000);
  const b = jitMachine(bin);
  b.hart.run(2_000_000);
  // 375 interrupts, each after the first addi of its round: s1 = 2 * round + 1 there.
  let expected = 0;
  for (let i = 0; i < 3000; i++) if (((3000 - i) & 7) === 0) expected += 2 * i + 1;
  assert.equal(a.hart.getReg(18), BigInt(expected), "the interpreter takes each at the csrsi");
  assert.deepEqual(state(b), state(a));
  const s = b.hart.translator!.stats;
  assert.ok(s.translatedInsns > 0.5 * b.hart.instret, JSON.stringify(s));
});

/** A loop whose body is 20 KiB of straight-line code: five pages without a jump inside. */
const LONG_BODY = `
  .globl _start
_start:
  li s3, 400
  li s1, 0
  .option norvc
  .balign 4096
loop:
  .rept 2560
  addi s1, s1, 3
  xor s1, s1, s3
  .endr
  addi s3, s3, -1
  bnez s3, loop
  li s0, ${DATA}
  sd s1, 0(s0)
${EXIT}
`;

Deno.test("long straight-line code is translated although its one jump target runs only 400 times", async () => {
  // At the usual threshold (1000 entries) the loop head alone never gets hot: the instructions
  // run since a jump target count too, and so does each fall-through into the next page.
  const bin = await assemble(LONG_BODY);
  const a = makeMachine(bin, RAM);
  a.hart.run(5_000_000);
  const b = jitMachine(bin, 1000);
  b.hart.run(5_000_000);
  assert.deepEqual(state(b), state(a));
  const s = b.hart.translator!.stats;
  assert.ok(s.translatedInsns > 0.6 * b.hart.instret, JSON.stringify(s));
});
