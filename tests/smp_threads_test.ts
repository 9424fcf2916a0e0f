/**
 * `vmesh run --smp-threads`: each hart in its own Worker. tests/riscv/isa/smp.c (AMO and LR/SC
 * counters with exact totals, a ticket lock, message passing, msip IPIs that wake harts
 * sleeping in WFI) must pass on 2 and 4 harts, with its loops made longer than the ISA test's
 * so the harts' threads overlap; and every hart must have run in its own thread.
 */
import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { boardFlags } from "./riscv/programs.ts";
import { describe, runVmesh } from "./riscv/run.ts";

for (const [harts, engine] of [[2, "jit"], [4, "jit"], [2, "interp"], [4, "interp"]]) {
  Deno.test(`smp threads: isa smp.c on ${harts} harts, one Worker each, ${engine}`, async () => {
    const elf = await buildProgram("isa/smp.c", {
      flags: [...boardFlags("virt"), `-DNHARTS=${harts}`, "-DITERS=20000"],
    });
    Deno.env.set("VMESH_SMP_STATS", "1"); // the run reports each hart thread on stderr
    const r = await runVmesh(elf, 120_000, [
      "--smp",
      String(harts),
      "--smp-threads",
      "--engine",
      String(engine),
      "--timeout",
      "100",
    ]);
    const what = describe(`vmesh run --smp ${harts} --smp-threads smp.c`, r);
    assert.equal(r.timedOut, false, what);
    assert.equal(r.code, 0, what);
    assert.equal(r.stdout, "PASS\n", what);
    // Each hart reports from its own thread: instructions retired, and the secondaries slept.
    const lines = [...r.stderr.matchAll(/hart (\d) thread: (\d+) instructions, .* (\d+) WFI/g)];
    assert.equal(lines.length, harts, what);
    for (const [, id, instret, sleeps] of lines) {
      assert.ok(Number(instret) > 20000 * 2, `hart ${id} ran ${instret}: ${what}`);
      if (id !== "0") assert.ok(Number(sleeps) > 0, `hart ${id} never slept in WFI: ${what}`);
    }
  });
}

Deno.test("smp threads: refused with gdb, a record or an instruction limit", async () => {
  const elf = await buildProgram("isa/smp.c", { flags: boardFlags("virt") });
  for (const extra of [["--max-instructions", "1000"], ["--gdb", "tcp::0"], ["--record", "/x"]]) {
    const r = await runVmesh(elf, 60_000, ["--smp", "4", "--smp-threads", ...extra]);
    assert.equal(r.code, 2, describe(`--smp-threads ${extra.join(" ")}`, r));
    assert.match(r.stderr, /--smp-threads/);
  }
});
