import assert from "node:assert/strict";
import { Machine, MachineError } from "./machine.ts";
import { assemble, PRELUDE } from "./asm_test_support.ts";

const MiB = 1024 * 1024;

async function runSmp(asm: string, harts: number, engine: "jit" | "interp" = "interp") {
  const out: number[] = [];
  const m = new Machine({
    ramSize: 16 * MiB,
    harts,
    engine,
    kernel: await assemble(PRELUDE + asm),
    onConsoleOutput: (b) => out.push(...b),
    maxInstructions: 200_000_000,
  });
  const code = await m.run();
  return { code, text: new TextDecoder().decode(new Uint8Array(out)), machine: m };
}

Deno.test("smp: every hart starts in the boot ROM with a0 = its hart id", async () => {
  const { code, machine } = await runSmp(
    `
    la t0, seen
    li t1, 1
    sll t1, t1, a0
    amoor.d zero, t1, (t0)
    bnez a0, park
  1:
    ld t2, 0(t0)
    li t3, 0x1f
    bne t2, t3, 1b
    exit 0
  park:
    wfi
    j park
    .data
    .align 3
  seen: .dword 0
  `,
    5,
  );
  assert.equal(code, 0);
  assert.equal(machine.harts.length, 5);
  assert.ok(machine.harts.every((h) => h.instret > 0), "every hart ran");
  assert.equal(machine.instret, machine.harts.reduce((n, h) => n + h.instret, 0));
});

// Hart 0 takes a reservation, hart 1 stores to the granule, then hart 0's SC must fail.
const SC_AFTER_REMOTE_STORE = `
    la s0, word
    la s1, flag_a
    la s2, flag_b
    bnez a0, other
    lr.d t1, (s0)
    li t4, 1
    sd t4, 0(s1)           # a store elsewhere keeps hart 0's own reservation
  1:
    ld t5, 0(s2)
    beqz t5, 1b
    li t3, 99
    sc.d t2, t3, (s0)
    beqz t2, 2f            # the SC succeeded: wrong
    ld t3, 0(s0)
    li t4, 7
    bne t3, t4, 2f         # hart 1's value was overwritten
    exit 0
  2:
    exit 3
  other:
    ld t5, 0(s1)
    beqz t5, other
    li t4, 7
    sd t4, 0(s0)
    li t4, 1
    sd t4, 0(s2)
  3:
    wfi
    j 3b
    .data
    .align 3
  word: .dword 5
  flag_a: .dword 0
  flag_b: .dword 0
`;

for (const engine of ["interp", "jit"] as const) {
  Deno.test(`smp: an SC fails after another hart's store to the reserved granule (${engine})`, async () => {
    const { code } = await runSmp(SC_AFTER_REMOTE_STORE, 2, engine);
    assert.equal(code, 0, "exit 3: the SC succeeded over hart 1's store");
  });
}

// Hart 1 caches a store translation of the code page first; hart 0 then runs f hot (translated),
// hart 1 patches f to return 2, and hart 0 must see the new code.
Deno.test("smp: a store from another hart drops translated code (jit)", async () => {
  const { code, machine } = await runSmp(
    `
    la s1, flag_a
    la s2, flag_b
    bnez a0, other
    j wait0                # hart 0 waits in another page (its hot loop must not mark f's)
  go0:
    li s5, 0               # phase: 0 before the patch, 1 after
  again:
    li s3, 400000
  2:
    call f
    mv s4, a0
    addi s3, s3, -1
    bnez s3, 2b
    bnez s5, 4f
    li s5, 1
    li t0, 1
    sd t0, 0(s1)
  3:
    ld t0, 0(s2)
    li t1, 2
    bne t0, t1, 3b
    fence.i
    j again                # the same hot loop, now over the patched f
  4:
    li t1, 2
    bne s4, t1, 5f
    exit 0
  5:
    exit 4
    .option push
    .option norvc
    .align 3
  f:
    addi a0, zero, 1
    ret
  scratch: .dword 0
    .option pop
    .balign 4096           # hart 1's own code in another page: only f's page is shared
  other:
    la t0, scratch
    sd zero, 0(t0)         # the store TLB now maps f's page
    li t0, 1
    sd t0, 0(s2)
  6:
    ld t0, 0(s1)
    beqz t0, 6b
    la t0, f
    li t2, 0x00200513      # addi a0, zero, 2 replaces f's addi a0, zero, 1
    sw t2, 0(t0)
    li t0, 2
    sd t0, 0(s2)
  7:
    wfi
    j 7b
    .balign 4096
  wait0:
    ld t0, 0(s2)           # until hart 1 has stored into f's page once
    beqz t0, wait0
    j go0
    .data
    .align 3
  flag_a: .dword 0
  flag_b: .dword 0
  `,
    2,
    "jit",
  );
  const t = (machine.hart as unknown as { translator: { stats: { translatedInsns: number } } })
    .translator;
  assert.ok(t.stats.translatedInsns > 0, "hart 0 ran translated code");
  assert.equal(code, 0, "exit 4: hart 0 ran stale translated code");
});

Deno.test("smp: 1 to 8 harts; more is refused", async () => {
  const kernel = await assemble(PRELUDE + "  exit 0\n");
  for (const harts of [0, 9, 1.5]) {
    assert.throws(
      () => new Machine({ ramSize: 16 * MiB, harts, kernel }),
      (e) => e instanceof MachineError && /1 to 8 harts/.test(e.message),
    );
  }
  const m = new Machine({ ramSize: 16 * MiB, harts: 8, kernel });
  assert.equal(await m.run(), 0);
});
