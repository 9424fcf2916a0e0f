/**
 * Sdtrig trigger registers: WARL behaviour of tselect/tdata1 as QEMU 7.2 has it, the match
 * rules, and a hart whose armed trigger survives save/load into a fresh hart.
 */
import assert from "node:assert/strict";
import { StopReason } from "../engine.ts";
import { HartLayout, TRIGGER_CAPACITY } from "./state.ts";
import {
  TDATA1,
  TDATA2,
  TDATA3,
  TINFO_CSR,
  TriggerAccess,
  TRIGGERS,
  Triggers,
  TSELECT,
} from "./sdtrig.ts";
import { assemble, EXIT, makeMachine } from "./test_support.ts";

const T2 = 2 << 28, T6 = 6 << 28;

function fresh(): Triggers {
  const t = new Triggers(new Int32Array(HartLayout.TLB >> 2));
  t.reset();
  return t;
}

function read(t: Triggers, n: number): [number, number] {
  assert.ok(t.read(n));
  return [t.lo >>> 0, t.hi >>> 0];
}

Deno.test("sdtrig: the triggers fit the record's TRIGGERS area", () => {
  assert.ok(TRIGGERS <= TRIGGER_CAPACITY);
});

Deno.test("sdtrig: reset values, tselect range, WARL tdata1, hard-wired tdata3 and tinfo", () => {
  const t = fresh();
  assert.deepEqual(read(t, TDATA1), [0, T2 >>> 0]);
  assert.deepEqual(read(t, TINFO_CSR), [0x44, 0]);
  assert.ok(t.write(TSELECT, 1, 0));
  assert.ok(t.write(TSELECT, 2, 0));
  assert.deepEqual(read(t, TSELECT), [1, 0]);
  // All bits of a type-2 write: only the mode/access bits survive (no action, chain, ...).
  t.write(TDATA1, -1 & ~(3 << 16) & ~(3 << 21), T2 | 0x0fffffff);
  assert.deepEqual(read(t, TDATA1), [0x5f, T2 >>> 0]);
  // Sizes: 8 bytes (sizehi=1, sizelo=1) kept, the 6-byte encoding dropped.
  t.write(TDATA1, (1 << 21) | (1 << 16) | 0x41, T2);
  assert.deepEqual(read(t, TDATA1), [0x210041, T2 >>> 0]);
  t.write(TDATA1, (1 << 21) | 0x41, T2);
  assert.deepEqual(read(t, TDATA1), [0x41, T2 >>> 0]);
  // Type 6 keeps VU/VS; other types are not taken.
  t.write(TDATA1, (1 << 24) | (1 << 23) | 0x41, T6);
  assert.deepEqual(read(t, TDATA1), [0x1800041, T6 >>> 0]);
  t.write(TDATA1, 0x41, 3 << 28);
  assert.deepEqual(read(t, TDATA1), [0x1800041, T6 >>> 0]);
  t.write(TDATA3, -1, -1);
  assert.deepEqual(read(t, TDATA3), [0, 0]);
  assert.equal(t.read(0x7a5), false, "no tcontrol (as QEMU 7.2)");
});

Deno.test("sdtrig: execute is an exact pc match, loads/stores overlap the window, modes gate", () => {
  const t = fresh();
  assert.equal(t.armed, false);
  t.write(TDATA2, 0x8000_1000, 0);
  t.write(TDATA1, 0x44, T2); // M, execute
  assert.equal(t.armed, true);
  assert.ok(t.fires(0x8000_1000, 2, TriggerAccess.Execute, 3));
  assert.ok(!t.fires(0x8000_1002, 2, TriggerAccess.Execute, 3));
  assert.ok(!t.fires(0x8000_1000, 4, TriggerAccess.Load, 3), "no load bit");
  assert.ok(!t.fires(0x8000_1000, 2, TriggerAccess.Execute, 1), "no S bit");
  t.write(TDATA1, 0x11 | (3 << 16), T2); // S, load, 4 bytes
  assert.ok(t.fires(0x8000_0ffe, 4, TriggerAccess.Load, 1), "overlaps from below");
  assert.ok(t.fires(0x8000_1003, 1, TriggerAccess.Load, 1));
  assert.ok(!t.fires(0x8000_1004, 1, TriggerAccess.Load, 1));
  assert.ok(t.fires(0x8000_1000, 8, TriggerAccess.LoadStore, 1), "an AMO loads");
  assert.ok(!t.fires(0x8000_1000, 8, TriggerAccess.Store, 1));
  // A kernel (sign-extended) address compares exactly.
  t.write(TDATA2, 0x8000_1234 | 0, -1);
  t.write(TDATA1, 0x0a | (1 << 16), T2); // U, store, 1 byte
  assert.ok(t.fires(-0x7fff_edcc, 1, TriggerAccess.Store, 0));
  assert.ok(!t.fires(-0x7fff_edcb, 1, TriggerAccess.Store, 0));
  t.write(TDATA1, 0, T2);
  assert.equal(t.armed, false);
});

Deno.test("sdtrig: an armed trigger is part of the saved state", async () => {
  const bin = await assemble(`
.globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  la t0, watched
  csrw tdata2, t0
  li t0, (2 << 60) | 0x42
  csrw tdata1, t0
  wfi
  la t0, watched
  li t1, 5
  sd t1, 0(t0)
  ${EXIT}
.align 2
trap:
  csrr s1, mcause
  csrr s2, mtval
  la s3, watched
  ${EXIT}
.data
.align 3
watched: .dword 0
`);
  const a = makeMachine(bin);
  assert.equal(a.hart.run(100), StopReason.Idle, "stops at WFI, the trigger armed");
  const b = makeMachine(new Uint8Array(4));
  b.mem.ram().set(a.mem.ram());
  b.hart.load(structuredClone(a.hart.save()));
  b.hart.run(1000);
  assert.equal(b.hart.getReg(9), 3n, "breakpoint");
  assert.equal(b.hart.getReg(18), b.hart.getReg(19), "tval = the watched address");
  assert.equal(b.hart.readCsr(TDATA1), (2n << 60n) | 0x42n);
});

Deno.test("sdtrig: an armed trigger keeps only the pages it watches out of the TLB", async () => {
  const bin = await assemble(`
.globl _start
_start:
  la t0, watched
  csrw tdata2, t0
  li t0, (2 << 60) | 0x42
  csrw tdata1, t0
  la t1, other
  li t2, 100
1: ld t3, 0(t1)
  sd t3, 8(t1)
  addi t2, t2, -1
  bnez t2, 1b
  ${EXIT}
.data
.align 12
watched: .dword 0
.align 12
other: .dword 0, 0
`);
  const m = makeMachine(bin);
  assert.equal(m.hart.run(10_000), StopReason.Halted);
  const h = m.hart;
  // The program's data pages follow its code: find them from the registers it used.
  const other = Number(h.getReg(6)), watched = other - 4096;
  assert.ok(h.triggers.touchesPage(watched) && !h.triggers.touchesPage(other));
  assert.ok(h.tlbLookup(other, h.loadSet) >= 0, "the loop's data page is cached");
  assert.ok(h.tlbLookup(other, h.storeSet) >= 0);
  assert.equal(h.tlbLookup(watched, h.storeSet), -3, "the watched page is not");
  assert.equal(h.tlbLookup(watched, h.loadSet), -3);
  assert.ok(h.tlbLookup(0x8000_0000, h.fetchSet) >= 0, "the code page is cached for fetch");
});
