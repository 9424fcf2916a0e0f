/**
 * Hart behaviour on small assembled programs: memory access widths, branches, compressed code,
 * atomics, CSRs, traps and delegation, the Sstc timer, Sv39 and PMP.
 */
import assert from "node:assert/strict";
import { StopReason } from "../engine.ts";
import { HartLayout } from "./state.ts";
import { assemble, EXIT, makeMachine, runProgram, type TestMachine } from "./test_support.ts";

const RECORDS = 0x80100000;

/** Prologue: M-mode trap handler that records (cause, tval, epc) at tp and skips 4 bytes. */
const PRE = `
.globl _start
_start:
  la t0, m_trap
  csrw mtvec, t0
  li tp, ${RECORDS}
  li s0, 0x80200000
  j main
.align 2
m_trap:
  csrr t0, mcause
  sd t0, 0(tp)
  csrr t0, mtval
  sd t0, 8(tp)
  csrr t0, mepc
  sd t0, 16(tp)
  addi tp, tp, 24
  addi t0, t0, 4
  csrw mepc, t0
  mret
.align 2
s_trap:
  csrr t0, scause
  sd t0, 0(tp)
  csrr t0, stval
  sd t0, 8(tp)
  csrr t0, sepc
  sd t0, 16(tp)
  addi tp, tp, 24
  addi t0, t0, 4
  csrw sepc, t0
  sret
main:
`;

/** Opens PMP entry 0 as NAPOT over all memory (RWX) so S/U-mode can run. */
const PMP_ALL = `
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
`;

/** Drops from M to S-mode at `label`. */
function enterS(label: string): string {
  return `
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0
  la t0, ${label}
  csrw mepc, t0
  mret
`;
}

interface TrapRecord {
  cause: bigint;
  tval: bigint;
  epc: bigint;
}

function records(m: TestMachine, count: number): TrapRecord[] {
  const b = m.mem.readPhys(RECORDS, count * 24 + 24);
  const dv = new DataView(b.buffer);
  const out: TrapRecord[] = [];
  for (let i = 0; i <= count; i++) {
    out.push({
      cause: dv.getBigUint64(i * 24, true),
      tval: dv.getBigUint64(i * 24 + 8, true),
      epc: dv.getBigUint64(i * 24 + 16, true),
    });
  }
  // Exactly `count` traps were taken: the next record slot is untouched.
  assert.deepEqual(out.pop(), { cause: 0n, tval: 0n, epc: 0n }, "more traps than expected");
  return out;
}

function word(m: TestMachine, addr: bigint): bigint {
  const b = m.mem.readPhys(Number(addr), 4);
  return BigInt(new DataView(b.buffer).getUint32(0, true));
}

function dword(m: TestMachine, addr: number): bigint {
  return new DataView(m.mem.readPhys(addr, 8).buffer).getBigUint64(0, true);
}

const u64 = (v: bigint) => BigInt.asUintN(64, v);

// Register numbers.
const A0 = 10, S1 = 9, S2 = 18, S3 = 19, S4 = 20, S5 = 21, S6 = 22, S7 = 23, S8 = 24;
const S9 = 25, S10 = 26, S11 = 27;

Deno.test("loads and stores: widths, sign extension, misaligned, page-crossing, MMIO", async () => {
  const m = await runProgram(`${PRE}
  li t1, 0x8899aabbccddeeff
  sd t1, 0(s0)
  li t2, 0x1122334455667788
  sd t2, 8(s0)
  lb a0, 0(s0)
  lbu a1, 0(s0)
  lh a2, 0(s0)
  lhu a3, 0(s0)
  lw a4, 0(s0)
  lwu a5, 0(s0)
  ld a6, 0(s0)
  lb a7, 7(s0)
  ld s2, 1(s0)
  lw s3, 6(s0)
  li s4, 0x80200ffc
  sd t1, 0(s4)
  ld s5, 0(s4)
  lw s6, 2(s4)
  li t2, -1
  sd t2, 16(s0)
  li t3, 0x1234
  sh t3, 16(s0)
  sb zero, 18(s0)
  sw t3, 20(s0)
  ld s7, 16(s0)
  li s8, 0x10000000
  li t4, 0xdeadbeef
  sw t4, 4(s8)
  lw s9, 4(s8)
  lbu s10, 5(s8)
  sd t1, 8(s8)
  ld s11, 8(s8)
  .option norvc
  li t5, 0x20000000
  lw t2, 0(t5)
  sw t4, 0(t5)
  lw t2, 2(s8)
  sh t3, 0xf(s8)
  ${EXIT}`);
  assert.equal(m.stop, StopReason.Halted);
  const h = m.hart;
  const expect: [number, bigint][] = [
    [10, u64(-1n)],
    [11, 0xffn],
    [12, 0xffffffffffffeeffn],
    [13, 0xeeffn],
    [14, 0xffffffffccddeeffn],
    [15, 0xccddeeffn],
    [16, 0x8899aabbccddeeffn],
    [17, 0xffffffffffffff88n],
    [S2, 0x888899aabbccddeen],
    [S3, 0x77888899n],
    [S5, 0x8899aabbccddeeffn],
    [S6, 0xffffffffaabbccddn],
    [S7, 0x00001234ff001234n],
    [S9, 0xffffffffdeadbeefn],
    [S10, 0xben],
    [S11, 0x8899aabbccddeeffn],
  ];
  for (const [r, v] of expect) assert.equal(h.getReg(r).toString(16), v.toString(16), `x${r}`);
  assert.deepEqual(m.bus.log, [
    `4@4=${0xdeadbeef}`,
    `4@8=${0xccddeeff}`,
    `4@c=${0x8899aabb}`,
    // A misaligned MMIO store is byte stores from the lowest address (as QEMU).
    `1@f=${0x34}`,
    `1@10=${0x12}`,
  ]);
  // A misaligned MMIO load combines the aligned words around it (as QEMU): bytes 2..5.
  assert.equal(h.getReg(7), 0xffffffffbeef0000n);
  const rec = records(m, 2);
  assert.deepEqual(rec.map((r) => [r.cause, r.tval]), [
    [5n, 0x20000000n],
    [7n, 0x20000000n],
  ]);
});

Deno.test("branches, jumps, links and compressed control flow", async () => {
  const m = await runProgram(`${PRE}
  li a0, 0
  li a1, -5
  li a2, 3
  blt a1, a2, 1f
  addi a0, a0, 1
1: bltu a1, a2, 2f
  addi a0, a0, 2
2: bge a2, a1, 3f
  addi a0, a0, 4
3: bgeu a2, a1, 4f
  addi a0, a0, 8
4: beq a1, a1, 5f
  addi a0, a0, 16
5: bne a1, a1, 6f
  addi a0, a0, 32
6: jal ra, sub1
ret1:
  la t0, sub2
  addi t0, t0, 1
  jalr s2, 0(t0)
ret2:
  la s3, ret1
  la s4, ret2
  li t1, 100
  li a5, 0
  li a1, 100
8: c.add a5, a1
  c.addi a1, -1
  c.bnez a1, 8b
  li s1, 0
  c.beqz s1, 9f
  li a5, 0
9: c.j 10f
  li a5, 0
10:
  la t0, sub3
  c.jalr t0
ret3:
  la s6, ret3
  ${EXIT}
sub1:
  mv a3, ra
  ret
sub2:
  mv a4, s2
  jr s2
sub3:
  mv s5, ra
  c.jr ra
`);
  const h = m.hart;
  assert.equal(m.stop, StopReason.Halted);
  assert.equal(h.getReg(A0), 42n);
  assert.equal(h.getReg(13), h.getReg(S3));
  assert.equal(h.getReg(14), h.getReg(S4));
  assert.equal(h.getReg(15), 5050n);
  assert.equal(h.getReg(S5), h.getReg(S6));
  assert.equal(h.priv, 3);
});

Deno.test("LR/SC and AMOs, misaligned atomics trap", async () => {
  const m = await runProgram(`${PRE}
  li t0, 5
  sd t0, 0(s0)
  lr.d a0, (s0)
  addi a0, a0, 1
  sc.d a1, a0, (s0)
  sc.d a2, a0, (s0)
  li t1, 10
  amoadd.d a3, t1, (s0)
  li t2, -16
  sw t2, 8(s0)
  addi s1, s0, 8
  amoswap.w a4, t1, (s1)
  li t2, -3
  amomin.w a5, t2, (s1)
  lw s2, 8(s0)
  li t2, 7
  amomaxu.d a6, t2, (s0)
  ld s3, 0(s0)
  li t2, 0xff
  amoand.d a7, t2, (s0)
  amoor.d s4, t2, (s0)
  li t2, 0x0f
  amoxor.d s5, t2, (s0)
  ld s6, 0(s0)
  li t2, -1
  sd t2, 16(s0)
  li t3, 1
  addi t5, s0, 16
  amoadd.w s7, t3, (t5)
  ld s8, 16(s0)
  lr.w s9, (s0)
  li t3, 0
  sc.w s10, t3, (s1)
  .option norvc
  addi t4, s0, 2
  amoadd.w t5, t1, (t4)
  lr.d t5, (t4)
  sc.d t5, t1, (t4)
  ${EXIT}`);
  const h = m.hart;
  const want: [number, bigint][] = [
    [10, 6n],
    [11, 0n],
    [12, 1n],
    [13, 6n],
    [14, u64(-16n)],
    [15, 10n],
    [S2, u64(-3n)],
    [16, 16n],
    [S3, 16n],
    [17, 16n],
    [S4, 16n],
    [S5, 0xffn],
    [S6, 0xf0n],
    [S7, u64(-1n)],
    [S8, 0xffffffff00000000n],
    [S9, 0xf0n],
    [S10, 1n],
  ];
  for (const [r, v] of want) assert.equal(h.getReg(r), v, `x${r}`);
  const rec = records(m, 3);
  const addr = 0x80200002n;
  assert.deepEqual(rec.map((r) => [r.cause, r.tval]), [[6n, addr], [4n, addr], [6n, addr]]);
});

Deno.test("CSR read/modify/write, WARL masks and illegal CSR accesses", async () => {
  const m = await runProgram(`${PRE}
  li t1, 0x5a5a
  csrw mscratch, t1
  li t2, 0xf
  csrrs a0, mscratch, t2
  csrrc a1, mscratch, t2
  csrrwi a2, mscratch, 7
  csrrsi a3, mscratch, 8
  csrr a4, mscratch
  csrr a5, misa
  csrr a6, mhartid
  csrr a7, mstatus
  li t1, -1
  csrw mie, t1
  csrr s2, mie
  csrw medeleg, t1
  csrr s3, medeleg
  csrw mideleg, t1
  csrr s4, mideleg
  csrr s5, sie
  csrw mepc, t1
  csrr s6, mepc
  li t1, 0x9000000000080400
  csrw satp, t1
  li t1, 0xa000000000080401
  csrw satp, t1
  csrr s7, satp
  csrw satp, zero
  li t1, 1000
  csrw minstret, t1
  csrr s8, minstret
  csrr s9, time
  .option norvc
  csrr t2, 0x7c0
  csrw mvendorid, t1
  csrw cycle, t1
  csrr t2, fcsr
  csrr t2, 0x3a1
  .2byte 0, 1
  ${EXIT}`);
  const h = m.hart;
  const want: [number, bigint][] = [
    [10, 0x5a5an],
    [11, 0x5a5fn],
    [12, 0x5a50n],
    [13, 7n],
    [14, 15n],
    [15, 0x800000000014112dn],
    [16, 0n],
    [17, 0xa00000000n],
    [S2, 0xaaan],
    [S3, 0xb3ffn],
    [S4, 0x222n],
    [S5, 0x222n],
    [S6, 0xfffffffffffffffen],
    [S7, 0x9000000000080400n],
    [S8, 1000n],
    [S9, 0n],
  ];
  for (const [r, v] of want) assert.equal(h.getReg(r).toString(16), v.toString(16), `x${r}`);
  const rec = records(m, 6);
  for (const r of rec) assert.equal(r.cause, 2n);
  for (const r of rec.slice(0, 5)) assert.equal(r.tval, word(m, r.epc), "mtval = instruction bits");
  assert.equal(rec[5].tval, 0n);
  assert.equal(h.readCsr(0x341), rec[5].epc + 4n);
});

Deno.test("ecall/mret/sret round trip with delegation through M, S and U", async () => {
  const m = await runProgram(`${PRE}${PMP_ALL}
  li t0, 0x100
  csrw medeleg, t0
  la t0, s_handler
  csrw stvec, t0
  la t0, m_handler
  csrw mtvec, t0
  ${enterS("s_entry")}
s_entry:
  li s1, 1
  la t0, u_entry
  csrw sepc, t0
  li t0, 0x100
  csrc sstatus, t0
  sret
u_entry:
  li s3, 2
u_ecall:
  ecall
  j .
.align 2
s_handler:
  csrr s4, scause
  csrr s5, sepc
  csrr s6, sstatus
s_ecall:
  ecall
  j .
.align 2
m_handler:
  csrr s7, mcause
  csrr s8, mepc
  csrr s9, mstatus
  la s10, u_ecall
  la s11, s_ecall
  ${EXIT}`);
  const h = m.hart;
  assert.equal(m.stop, StopReason.Halted);
  assert.equal(h.getReg(S1), 1n);
  assert.equal(h.getReg(S3), 2n);
  assert.equal(h.getReg(S4), 8n);
  assert.equal(h.getReg(S5), h.getReg(S10));
  assert.equal(h.getReg(S6) & 0x100n, 0n, "SPP = U");
  assert.equal(h.getReg(S7), 9n);
  assert.equal(h.getReg(S8), h.getReg(S11));
  assert.equal((h.getReg(S9) >> 11n) & 3n, 1n, "MPP = S");
  assert.equal(h.priv, 3);
});

Deno.test("privileged instruction traps: TSR, TVM, TW in S; xRET, WFI, CSR, counters in U", async () => {
  const sm = await runProgram(`${PRE}${PMP_ALL}
  li t0, 0x700000
  csrs mstatus, t0
  ${enterS("s_entry")}
s_entry:
  .option norvc
  sret
  sfence.vma
  csrr t1, satp
  wfi
  ${EXIT}`);
  const srec = records(sm, 4);
  assert.deepEqual(srec.map((r) => r.cause), [2n, 2n, 2n, 2n]);
  for (const r of srec) assert.equal(r.tval, word(sm, r.epc));
  assert.equal(sm.hart.priv, 1);

  const um = await runProgram(`${PRE}${PMP_ALL}
  li t0, 0x4
  csrw medeleg, t0
  la t0, s_trap
  csrw stvec, t0
  ${enterS("s_entry")}
s_entry:
  la t0, u_entry
  csrw sepc, t0
  li t0, 0x100
  csrc sstatus, t0
  sret
u_entry:
  .option norvc
  csrr t1, sstatus
  wfi
  mret
  sret
  rdcycle t1
  ecall
  ${EXIT}`);
  const urec = records(um, 6);
  assert.deepEqual(urec.map((r) => r.cause), [2n, 2n, 2n, 2n, 2n, 8n]);
  for (const r of urec.slice(0, 5)) assert.equal(r.tval, word(um, r.epc));
  assert.equal(um.hart.priv, 0);
});

Deno.test("Sstc timer: WFI idles, stimecmp fires a delegated vectored interrupt", async () => {
  const m = makeMachine(
    await assemble(`${PRE}${PMP_ALL}
  li t0, 1
  slli t0, t0, 63
  csrw menvcfg, t0
  li t0, 2
  csrw mcounteren, t0
  li t0, 0x20
  csrw mideleg, t0
  csrw mie, t0
  la t0, s_vec
  ori t0, t0, 1
  csrw stvec, t0
  ${enterS("s_entry")}
s_entry:
  li t0, 1000
  csrw stimecmp, t0
  csrsi sstatus, 2
1: wfi
  j 1b
.align 2
.option norvc
s_vec:
  j s_bad
  j s_bad
  j s_bad
  j s_bad
  j s_bad
  j s_timer
s_timer:
  csrr s4, scause
  csrr s5, sip
  li t0, -1
  csrw stimecmp, t0
  csrr s6, sip
  ${EXIT}
s_bad:
  li s7, 0xbad
  ${EXIT}`),
  );
  assert.equal(m.hart.run(100_000), StopReason.Idle);
  assert.equal(m.hart.interruptPending(), false);
  assert.equal(m.hart.nextDeadline(), 1000);
  m.clock.ticks = 999;
  assert.equal(m.hart.interruptPending(), false);
  assert.equal(m.hart.run(100_000), StopReason.Idle);
  m.clock.ticks = 1000;
  assert.equal(m.hart.interruptPending(), true);
  assert.equal(m.hart.run(100_000), StopReason.Halted);
  assert.equal(m.hart.getReg(S4), 0x8000000000000005n);
  assert.equal(m.hart.getReg(S5) & 0x20n, 0x20n);
  assert.equal(m.hart.getReg(S6) & 0x20n, 0n);
  assert.equal(m.hart.getReg(S7), 0n);
});

Deno.test("machine interrupts: priority, MIE gating and delegation of SSIP", async () => {
  const m = await runProgram(`${PRE}
  la t0, m_irq
  csrw mtvec, t0
  li t0, 0x2
  csrs mip, t0
  csrw mie, t0
  li s1, 1
  csrsi mstatus, 8
  li s1, 2
  ${EXIT}
.align 2
m_irq:
  csrr s2, mcause
  csrr s3, mepc
  la s4, after
  li t0, 2
  csrc mip, t0
  csrr s5, mip
  ${EXIT}
after:
`);
  assert.equal(m.hart.getReg(S2), 0x8000000000000001n);
  assert.equal(m.hart.getReg(S1), 1n, "taken right after MIE was set");
  assert.equal(m.hart.getReg(S5), 0n);
});

Deno.test("Sv39: translation, hardware A/D, page faults with stval, SUM, non-canonical", async () => {
  const m = await runProgram(`${PRE}${PMP_ALL}
  li a0, 0x80300000
  li t0, 0xc7
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (0x80301 << 10) | 1
  sd t0, 8(a0)
  li a1, 0x80301000
  li t0, (0x80302 << 10) | 1
  sd t0, 0(a1)
  li a2, 0x80302000
  li t0, (0x80303 << 10) | 0x7
  sd t0, 0(a2)
  li t0, (0x80304 << 10) | 0x5
  sd t0, 16(a2)
  li t0, (0x80305 << 10) | 0xd7
  sd t0, 24(a2)
  li t0, (0x80306 << 10) | 0x43
  sd t0, 32(a2)
  li t0, 0x80305000
  li t1, 0x77
  sd t1, 0(t0)
  li t0, 0xa000
  csrw medeleg, t0
  la t0, s_trap
  csrw stvec, t0
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  sfence.vma
  ${enterS("s_entry")}
s_entry:
  .option norvc
  li s1, 0x40000000
  li t1, 42
  sd t1, 8(s1)
  ld s2, 8(s1)
  li s3, 0x40001008
  ld s4, 0(s3)
  li s5, 0x40002000
  ld s6, 0(s5)
  li s7, 0x40003000
  ld s8, 0(s7)
  li t0, 0x40000
  csrs sstatus, t0
  ld s8, 0(s7)
  li s9, 0x8000000000
  ld s10, 0(s9)
  li s11, 0x40004000
  ld a3, 0(s11)
  sd a3, 0(s11)
  ${EXIT}`);
  assert.equal(m.stop, StopReason.Halted);
  assert.equal(m.hart.priv, 1);
  assert.equal(m.hart.getReg(S2), 42n);
  assert.equal(dword(m, 0x80303008), 42n);
  assert.equal(dword(m, 0x80302000) & 0xffn, 0xc7n, "A and D set by the walk");
  assert.equal(dword(m, 0x80302020) & 0xc0n, 0x40n, "read-only page: A only");
  assert.equal(m.hart.getReg(S8), 0x77n);
  const rec = records(m, 5);
  assert.deepEqual(rec.map((r) => [r.cause, r.tval]), [
    [13n, 0x40001008n],
    [13n, 0x40002000n],
    [13n, 0x40003000n],
    [13n, 0x8000000000n],
    [15n, 0x40004000n],
  ]);
});

Deno.test("PMP: S-mode without entries cannot fetch; TOR/NAPOT permissions; locked M entry", async () => {
  const none = await runProgram(`${PRE}
  la t0, m_stop
  csrw mtvec, t0
  ${enterS("s_entry")}
s_entry:
  li s1, 1
  ${EXIT}
.align 2
m_stop:
  csrr s2, mcause
  csrr s3, mtval
  la s4, s_entry
  ${EXIT}`);
  assert.equal(none.hart.getReg(S1), 0n);
  assert.equal(none.hart.getReg(S2), 1n);
  assert.equal(none.hart.getReg(S3), none.hart.getReg(S4));

  const m = await runProgram(`${PRE}
  li t0, (0x100000 >> 2) | 0x1ff
  csrw pmpaddr0, t0
  li t0, 0x80010000 >> 2
  csrw pmpaddr1, t0
  li t0, 0x80200000 >> 2
  csrw pmpaddr2, t0
  li t0, 0x80300000 >> 2
  csrw pmpaddr3, t0
  li t0, 0x890b0d1b
  csrw pmpcfg0, t0
  .option norvc
  li s7, 0x80200000
  sd s7, 0(s7)
  li t0, 0x000b0d1b
  csrw pmpcfg0, t0
  csrr s8, pmpcfg0
  csrw pmpaddr3, zero
  csrr s9, pmpaddr3
  csrw pmpaddr2, zero
  csrr s10, pmpaddr2
  ${enterS("s_entry")}
s_entry:
  li s1, 0x80008000
  ld s2, 0(s1)
  sd s2, 0(s1)
  li s3, 0x80150000
  sd s3, 0(s3)
  ld s4, 0(s3)
  li s5, 0x80400000
  ld s6, 0(s5)
  ecall
  ${EXIT}`);
  assert.equal(m.stop, StopReason.Halted);
  const rec = records(m, 4);
  assert.deepEqual(rec.map((r) => [r.cause, r.tval]), [
    [7n, 0x80200000n],
    [7n, 0x80008000n],
    [5n, 0x80400000n],
    [9n, 0n],
  ]);
  assert.equal(m.hart.getReg(S4), 0x80150000n);
  // Entry 3 is locked (R only, TOR): it binds M-mode, and neither its cfg nor the TOR base
  // address below it can be rewritten.
  assert.equal(m.hart.getReg(S8), 0x890b0d1bn);
  assert.equal(m.hart.getReg(S9), 0x80300000n >> 2n);
  assert.equal(m.hart.getReg(S10), 0x80200000n >> 2n);
});

Deno.test("FP glue: FS=Off traps, NaN-boxing loads, raw-bit stores, compressed FP, FS dirty", async () => {
  const m = await runProgram(`${PRE}
  .option norvc
  flw f1, 0(s0)
  csrr t1, fflags
  fadd.s f1, f1, f1
  li t0, 0x2000
  csrs mstatus, t0
  li t0, 0x3f800000
  sw t0, 0(s0)
  flw f1, 0(s0)
  fsd f1, 8(s0)
  li t0, 0x400921fb54442d18
  sd t0, 16(s0)
  fld f2, 16(s0)
  fsw f2, 24(s0)
  mv sp, s0
  .option rvc
  c.fsdsp f1, 32(sp)
  c.fldsp f3, 16(sp)
  c.fld f8, 16(s0)
  c.fsd f8, 48(s0)
  .option norvc
  csrr a0, mstatus
  fadd.d f4, f2, f2
  fsd f4, 56(s0)
  csrwi fflags, 0x1f
  csrwi frm, 3
  csrr a1, fcsr
  ${EXIT}`);
  const rec = records(m, 3);
  for (const r of rec) {
    assert.equal(r.cause, 2n);
    assert.equal(r.tval, word(m, r.epc));
  }
  const base = 0x80200000;
  assert.equal(dword(m, base + 8), 0xffffffff3f800000n);
  assert.equal(dword(m, base + 24) & 0xffffffffn, 0x54442d18n);
  assert.equal(dword(m, base + 32), 0xffffffff3f800000n);
  assert.equal(m.hart.getFReg(3), 0x400921fb54442d18n);
  assert.equal(dword(m, base + 48), 0x400921fb54442d18n);
  assert.equal(dword(m, base + 56), 0x401921fb54442d18n);
  const ms = m.hart.getReg(A0);
  assert.equal((ms >> 13n) & 3n, 3n, "FS = Dirty");
  assert.equal(ms >> 63n, 1n, "SD");
  assert.equal(m.hart.getReg(11), 0x7fn);
});

Deno.test("Sv48 and MPRV: M-mode loads through S translation", async () => {
  const m = await runProgram(`${PRE}${PMP_ALL}
  # Sv48 root at 0x80300000 -> L2 0x80301000 -> L1 0x80302000 (2 MiB megapage at VA 0x8000000000)
  li a0, 0x80300000
  li t0, (0x80301 << 10) | 1
  sd t0, 8(a0)
  li a1, 0x80301000
  li t0, (0x80302 << 10) | 1
  sd t0, 0(a1)
  li a2, 0x80302000
  li t0, (0x80200 << 10) | 0xc3
  sd t0, 0(a2)
  li t0, (0x80201 << 10) | 0xc3
  sd t0, 8(a2)
  li t0, 0x80200000 + 0x1234 * 8
  li t1, 0x5151
  sd t1, 0(t0)
  li t0, (9 << 60) | 0x80300
  csrw satp, t0
  li t0, 0x800
  csrs mstatus, t0
  li t0, 0x20000
  csrs mstatus, t0
  li s1, 0x8000000000 + 0x1234 * 8
  .option norvc
  ld s2, 0(s1)
  li s3, 0x8000200000
  ld s4, 0(s3)
  li t0, 0x20000
  csrc mstatus, t0
  ${EXIT}`);
  assert.equal(m.hart.getReg(S2), 0x5151n);
  const rec = records(m, 1);
  assert.deepEqual([rec[0].cause, rec[0].tval], [13n, 0x8000200000n], "misaligned megapage");
});

Deno.test("SFENCE.VMA by address drops the stale translation", async () => {
  const m = await runProgram(`${PRE}${PMP_ALL}
  li a0, 0x80300000
  li t0, 0xc7
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (0x80301 << 10) | 1
  sd t0, 8(a0)
  li a1, 0x80301000
  li t0, (0x80302 << 10) | 1
  sd t0, 0(a1)
  li a2, 0x80302000
  li t0, (0x80303 << 10) | 0xc7
  sd t0, 0(a2)
  li t0, 0x80303000
  li t1, 111
  sd t1, 0(t0)
  li t0, 0x80304000
  li t1, 222
  sd t1, 0(t0)
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  ${enterS("s_entry")}
s_entry:
  li s1, 0x40000000
  ld s2, 0(s1)
  li t0, (0x80304 << 10) | 0xc7
  li a2, 0x80302000
  sd t0, 0(a2)
  sfence.vma s1
  ld s3, 0(s1)
  ${EXIT}`);
  assert.equal(m.hart.getReg(S2), 111n);
  assert.equal(m.hart.getReg(S3), 222n);
});

Deno.test("device interrupt lines in the shared mip word wake WFI and trap to M", async () => {
  const m = makeMachine(
    await assemble(`${PRE}
  la t0, m_irq
  csrw mtvec, t0
  li t0, 0x880
  csrw mie, t0
  csrsi mstatus, 8
1: wfi
  j 1b
.align 2
m_irq:
  csrr s2, mcause
  csrr s3, mip
  ${EXIT}`),
  );
  assert.equal(m.hart.run(10_000), StopReason.Idle);
  const mipIdx = (m.mem.hartBase(0) + HartLayout.MIP) >> 2;
  Atomics.or(m.mem.i32, mipIdx, 1 << 11);
  assert.equal(m.hart.interruptPending(), true);
  assert.equal(m.hart.run(10_000), StopReason.Halted);
  assert.equal(m.hart.getReg(S2), 0x800000000000000bn);
  assert.equal(m.hart.getReg(S3), 0x800n);
});

Deno.test("EBREAK tval is the pc; page-crossing accesses fault on the unmapped half", async () => {
  const m = await runProgram(`${PRE}${PMP_ALL}
  .option norvc
  ebreak
  li a0, 0x80300000
  li t0, 0xc7
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (0x80301 << 10) | 1
  sd t0, 8(a0)
  li a1, 0x80301000
  li t0, (0x80302 << 10) | 1
  sd t0, 0(a1)
  li a2, 0x80302000
  li t0, (0x80303 << 10) | 0xc7
  sd t0, 0(a2)
  li t0, 0x80303ff8
  li t1, 0x1122334455667788
  sd t1, 0(t0)
  li t0, 0xa000
  csrw medeleg, t0
  la t0, s_trap
  csrw stvec, t0
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  ${enterS("s_entry")}
s_entry:
  li s1, 0x40000ffc
  ld s2, 0(s1)
  li t1, -1
  sd t1, 0(s1)
  li s3, 0x40000ff8
  ld s4, 0(s3)
  ${EXIT}`);
  const rec = records(m, 3);
  assert.equal(rec[0].cause, 3n);
  assert.equal(rec[0].tval, rec[0].epc, "mtval = pc of the EBREAK");
  assert.deepEqual(rec.slice(1).map((r) => [r.cause, r.tval]), [
    [13n, 0x40001000n],
    [15n, 0x40001000n],
  ]);
  assert.equal(m.hart.getReg(S4), 0x1122334455667788n, "faulting store wrote nothing");
});

Deno.test("32-bit instructions crossing a page: executed, or a fetch fault on the second page", async () => {
  const bare = await runProgram(`${PRE}
  .option norvc
  li a0, 0
  j cross
  .balign 4096
  .skip 4094
cross:
  addi a0, a0, 42
  la s1, cross
  ${EXIT}`);
  assert.equal(bare.hart.getReg(A0), 42n);
  assert.equal(bare.hart.getReg(S1) & 0xfffn, 0xffen);

  const paged = await runProgram(`${PRE}${PMP_ALL}
  .option norvc
  la t0, m_exit
  csrw mtvec, t0
  li a0, 0x80300000
  li t0, 0xc7
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (0x80301 << 10) | 1
  sd t0, 8(a0)
  li a1, 0x80301000
  li t0, (0x80302 << 10) | 1
  sd t0, 0(a1)
  la t1, cross
  srli t1, t1, 12
  slli t1, t1, 10
  ori t1, t1, 0xcb
  li a2, 0x80302000
  sd t1, 0(a2)
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  ${enterS("s_entry")}
s_entry:
  li t0, 0x40000ffe
  jr t0
.align 2
m_exit:
  csrr s2, mcause
  csrr s3, mtval
  csrr s4, mepc
  ${EXIT}
  .balign 4096
  .skip 4094
cross:
  addi a0, a0, 42
  ${EXIT}`);
  assert.equal(paged.hart.getReg(S2), 12n);
  assert.equal(paged.hart.getReg(S3), 0x40001000n);
  assert.equal(paged.hart.getReg(S4), 0x40000ffen);
});

Deno.test("page-table walks are PMP-checked: a denied PTE read is an access fault", async () => {
  const m = await runProgram(`${PRE}
  .option norvc
  li t0, 0x803ff000 >> 2
  csrw pmpaddr0, t0
  li t0, 0x80400000 >> 2
  csrw pmpaddr1, t0
  li t0, 0x080f
  csrw pmpcfg0, t0
  li a0, 0x80300000
  li t0, 0xc7
  sd t0, 0(a0)
  li t0, (0x80000 << 10) | 0xcf
  sd t0, 16(a0)
  li t0, (0x803ff << 10) | 1
  sd t0, 8(a0)
  li t0, (8 << 60) | 0x80300
  csrw satp, t0
  ${enterS("s_entry")}
s_entry:
  li s1, 0x40000000
  ld s2, 0(s1)
  ${EXIT}`);
  const rec = records(m, 1);
  assert.deepEqual([rec[0].cause, rec[0].tval], [5n, 0x40000000n]);
});
