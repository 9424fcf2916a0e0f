/**
 * The hart state record: its layout fits the memory map, and save()/load() is a real round
 * trip: a hart stopped half way through a program (S-mode, Sv39, FP, an LR reservation,
 * delegated traps), saved, and loaded into a fresh hart on fresh memory (RAM copied) runs to
 * the same end state as the original.
 */
import assert from "node:assert/strict";
import { HART_STATE_BYTES, MAX_HARTS, MAX_RAM_BYTES, RAM_OFFSET } from "../guest_memory.ts";
import { StopReason } from "../engine.ts";
import { Csr } from "./csr_numbers.ts";
import {
  CSR_SLOT_CAPACITY,
  CSR_SLOTS,
  HART_RECORD_BYTES,
  HartLayout,
  type HartSnapshot,
  SAVED_BYTES,
  STATE_VERSION,
} from "./state.ts";
import { assemble, EXIT, makeMachine, type TestMachine } from "./test_support.ts";

Deno.test("state record: fields ascend without overlap and the record fits its stride", () => {
  const offsets = Object.values(HartLayout);
  for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] > offsets[i - 1], `field ${i}`);
  assert.ok(CSR_SLOTS.length <= CSR_SLOT_CAPACITY);
  assert.ok(HART_RECORD_BYTES <= HART_STATE_BYTES);
  assert.equal(RAM_OFFSET, MAX_HARTS * HART_STATE_BYTES);
  // TLB host offsets are int32: the end of the largest RAM must stay below 2^31.
  assert.ok(RAM_OFFSET + MAX_RAM_BYTES <= 2 ** 31);
  assert.ok(SAVED_BYTES <= HartLayout.TLB);
});

/** S-mode under Sv39: integer, FP, LR/SC and a delegated EBREAK every 1024 iterations. */
const PROGRAM = `
.globl _start
_start:
  la t0, m_trap
  csrw mtvec, t0
  li tp, 0x80100000
  li s0, 0x80200000
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  li t0, 0x2000
  csrs mstatus, t0
  csrwi frm, 2
  li t0, 0x1234
  csrw mscratch, t0
  li a0, 0x80300000
  li t0, 0xcf
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  la t0, s_trap
  csrw stvec, t0
  csrwi medeleg, 8
  csrwi mcounteren, 7
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0
  la t0, s_entry
  csrw mepc, t0
  mret
.align 2
m_trap:
  j m_trap
.align 2
s_trap:
  csrr t0, scause
  sd t0, 0(tp)
  csrr t0, sepc
  sd t0, 8(tp)
  addi tp, tp, 16
  addi t0, t0, 4
  csrw sepc, t0
  sret
s_entry:
  li a0, 0
  li a1, 0
  fcvt.d.l fa0, zero
1: addi a0, a0, 1
  mul a2, a0, a0
  add a1, a1, a2
  fcvt.d.l fa1, a0
  fadd.d fa0, fa0, fa1
  lr.d t1, (s0)
  sc.d t2, a1, (s0)
  andi t3, a0, 1023
  bnez t3, 2f
  .option push
  .option norvc
  ebreak
  .option pop
2: li t0, 20000
  bne a0, t0, 1b
  rdinstret s5
  csrr s6, sscratch
  fmv.x.d s7, fa0
  ${EXIT}`;

/** Everything observable: registers, pc, privilege and the CSRs a program can read. */
function observe(m: TestMachine) {
  const csrs = [
    Csr.MSTATUS,
    Csr.SSTATUS,
    Csr.MEPC,
    Csr.SEPC,
    Csr.MCAUSE,
    Csr.SCAUSE,
    Csr.MTVAL,
    Csr.STVAL,
    Csr.MTVEC,
    Csr.STVEC,
    Csr.SATP,
    Csr.MEDELEG,
    Csr.MIDELEG,
    Csr.MIE,
    Csr.MIP,
    Csr.MSCRATCH,
    Csr.SSCRATCH,
    Csr.MINSTRET,
    Csr.MCYCLE,
    Csr.MCOUNTEREN,
    Csr.FCSR,
    Csr.PMPCFG0,
    Csr.PMPADDR0,
  ];
  return {
    x: Array.from({ length: 32 }, (_, i) => m.hart.getReg(i)),
    f: Array.from({ length: 32 }, (_, i) => m.hart.getFReg(i)),
    pc: m.hart.getPc(),
    priv: m.hart.priv,
    instret: m.hart.instret,
    csrs: csrs.map((n) => [n.toString(16), m.hart.readCsr(n)]),
  };
}

Deno.test("save/load: a fresh hart on fresh memory continues exactly like the original", async () => {
  const bin = await assemble(PROGRAM);
  const a = makeMachine(bin);
  assert.equal(a.hart.run(50_000), StopReason.Budget);
  assert.equal(a.hart.priv, 1, "stopped in S-mode, under Sv39");
  const snap = structuredClone(a.hart.save()); // what a Worker or a snapshot file would get
  assert.equal(snap.bytes.length, SAVED_BYTES);

  const b = makeMachine(new Uint8Array(4));
  b.mem.ram().set(a.mem.ram());
  b.hart.load(snap);
  assert.deepEqual(observe(b), observe(a), "the loaded hart reads back the same state");
  assert.deepEqual(b.hart.save().bytes, a.hart.save().bytes);

  assert.equal(a.hart.run(1_000_000), StopReason.Halted);
  assert.equal(b.hart.run(1_000_000), StopReason.Halted);
  assert.deepEqual(observe(b), observe(a));
  assert.deepEqual(b.hart.save().bytes, a.hart.save().bytes, "every record byte");
  assert.deepEqual(b.mem.ram(), a.mem.ram(), "the same memory writes");
  assert.equal(a.hart.getReg(11), 2666866670000n, "sum of squares 1..20000");
  assert.equal(a.hart.getReg(22), 0n, "sscratch untouched");
  assert.equal(new Float64Array(new BigUint64Array([a.hart.getReg(23)]).buffer)[0], 200010000);
  assert.equal(a.hart.getReg(21) > 200_000n, true, "instret counted the loop");
});

Deno.test("load refuses states of another kind, version or size with a RangeError", () => {
  const m = makeMachine(new Uint8Array(4));
  const good = m.hart.save();
  const bad: HartSnapshot[] = [
    { ...good, version: STATE_VERSION + 1 },
    { ...good, kind: "other" as "rv64-hart" },
    { ...good, bytes: good.bytes.subarray(0, 100) },
  ];
  for (const s of bad) assert.throws(() => m.hart.load(s), RangeError);
});
