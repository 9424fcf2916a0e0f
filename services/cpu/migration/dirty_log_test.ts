import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { assemble, PRELUDE } from "../machine/asm_test_support.ts";
import { parseElf } from "../machine/elf.ts";
import type { Hart } from "../hart/hart.ts";
import { loadMachine, saveMachine } from "../snapshot/machine_state.ts";
import { DirtyLog } from "./dirty_log.ts";
import { applyPages, encodePages, nonZeroPages } from "./page_batch.ts";

/**
 * S-mode under Sv39 (one gigapage at 0x80000000 whose PTE has A and D clear, so the hart sets
 * them: a write by the page walk), storing pseudo-random doublewords over 64 pages, an AMO
 * counter and a store that crosses a page boundary, forever.
 */
const PROGRAM = PRELUDE + `
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  la t0, root
  srli t0, t0, 12
  li t1, 8 << 60
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  li t0, 1 << 11          # MPP = S
  csrw mstatus, t0
  la t0, smode
  csrw mepc, t0
  mret
smode:
  la s0, buf
  li s1, 88172645463325252
  li s2, 0xff8
  la s3, cnt
  la s4, cross
  li s5, 1
1:
  slli t0, s1, 13
  xor s1, s1, t0
  srli t0, s1, 7
  xor s1, s1, t0
  slli t0, s1, 17
  xor s1, s1, t0
  srli t1, s1, 20
  andi t1, t1, 63
  slli t1, t1, 12
  and t2, s1, s2
  add t1, t1, t2
  add t1, t1, s0
  sd s1, 0(t1)
  amoadd.d zero, s5, (s3)
  sd s1, 0(s4)
  j 1b
  .data
  .align 12
  .globl root
root:
  .dword 0, 0
  .dword (0x80000000 >> 12 << 10) | 0xf   # V R W X, A and D clear
  .fill 509, 8, 0
  .align 12
buf: .fill 64 * 4096, 1, 0
  .globl cnt
cnt: .dword 0
  .align 12
  .fill 4092, 1, 0
cross: .dword 0
  .fill 4096, 1, 0
`;

for (const engine of ["interp", "jit"] as const) {
  Deno.test(`dirty log (${engine}): pre-copy rounds leave the copy equal to the source`, async () => {
    const kernel = await assemble(PROGRAM);
    const rootPage = (parseElf(kernel).symbols.get("root")! - 0x8000_0000) / 4096;
    const make = () => new Machine({ ramSize: 8 << 20, kernel, engine });
    const a = make(), b = make();
    const hart = a.hart as unknown as Hart;
    const log = new DirtyLog(a.mem, [hart]);
    const ramA = a.mem.ram(), ramB = b.mem.ram();
    // Round 0 as migration does it: log first, then copy every non-zero page.
    log.start();
    ramB.fill(0);
    applyPages(ramB, encodePages(ramA, nonZeroPages(ramA), 0).batch);
    let sawRoot = false;
    const sizes: number[] = [];
    for (let round = 1; round <= 8; round++) {
      a.hart.run(100_000 + round * 1_001);
      // The translator compiles asynchronously: let its modules install between rounds.
      await new Promise((r) => setTimeout(r, 2));
      const dirty = log.take();
      sizes.push(dirty.length);
      if (dirty.includes(rootPage)) sawRoot = true;
      applyPages(ramB, encodePages(ramA, dirty, round).batch);
    }
    a.hart.run(5_003);
    const last = log.take();
    log.stop();
    applyPages(ramB, encodePages(ramA, last, 9).batch);
    const rec = saveMachine(a);
    loadMachine(b, rec.harts, rec.devices);

    assert.ok(sawRoot, "the page walk's A/D update marked the page table dirty");
    if (engine === "jit") {
      const st = hart.translator!.stats;
      assert.ok(
        st.regions > 0 && st.translatedInsns > 50_000,
        `translated code ran: ${JSON.stringify(st)}`,
      );
    }
    assert.ok(sizes.every((n) => n >= 30), `each round saw the stores to ~64 pages: ${sizes}`);
    const diff = firstDiff(ramA, ramB);
    assert.equal(diff, -1, `RAM differs at page ${diff >> 12} after the rounds`);
    assert.deepEqual(saveMachine(b), rec);
    if (engine === "interp") {
      // And both run on alike from there (a translated region may overrun a batch's budget).
      a.hart.run(10_000);
      b.hart.run(10_000);
      assert.equal(firstDiff(ramA, ramB), -1);
      assert.deepEqual(b.hart.save(), a.hart.save());
    }
  });
}

Deno.test("dirty log: without the TLB flush a cached store page is missed (the test can fail)", async () => {
  const kernel = await assemble(PROGRAM);
  const a = new Machine({ ramSize: 8 << 20, kernel, engine: "interp" });
  a.hart.run(50_000);
  // Logging on but no flush: the store TLB still holds the pages written so far.
  a.mem.dirtyPages.fill(0);
  a.mem.dirtyLog = true;
  a.hart.run(20_000);
  const unflushed = a.mem.dirtyPages.reduce((n, d) => n + d, 0);
  const log = new DirtyLog(a.mem, [a.hart as unknown as Hart]);
  log.take();
  a.hart.run(20_000);
  assert.ok(log.count() > unflushed + 30, `flushed ${log.count()}, unflushed ${unflushed}`);
});

Deno.test("page batch: zero pages go by number, bad batches are refused", () => {
  const ram = new Uint8Array(16 * 4096);
  ram[3 * 4096 + 5] = 7;
  const { batch } = encodePages(ram, [1, 3], 0);
  assert.equal(batch.data.length, 4096);
  assert.deepEqual([...new Uint32Array(batch.zero.slice().buffer)], [1]);
  const dst = new Uint8Array(16 * 4096).fill(9);
  assert.equal(applyPages(dst, batch), 2);
  assert.equal(dst[3 * 4096 + 5], 7);
  assert.equal(dst[1 * 4096 + 100], 0);
  assert.equal(dst[2 * 4096], 9, "pages not in the batch untouched");
  assert.throws(() => applyPages(new Uint8Array(2 * 4096), batch), /outside/);
  assert.throws(() => applyPages(dst, { ...batch, data: batch.data.subarray(1) }), /carries/);
});

function firstDiff(x: Uint8Array, y: Uint8Array): number {
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}
