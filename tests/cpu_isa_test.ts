/**
 * ISA tests: every self-checking bare-metal program under tests/riscv/isa, compiled at test
 * time, must pass under QEMU (which proves the program right) and under vmesh.
 */

import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { buildIsaProgram, ISA_PROGRAMS } from "./riscv/programs.ts";
import { describe, runQemu, runVmesh } from "./riscv/run.ts";

for (const program of ISA_PROGRAMS) {
  Deno.test(`isa ${program.name}: ${program.covers}`, async (t) => {
    const elf = await buildIsaProgram(program);
    const smp = program.smp ?? 1;

    await t.step("passes under QEMU (the oracle)", async () => {
      const r = await runQemu(elf, program.board, 60_000, ["-smp", String(smp)]);
      const what = describe(`qemu -M ${program.board} ${program.name}`, r);
      assert.equal(r.timedOut, false, what);
      assert.equal(r.code, 0, what);
      assert.equal(r.stdout, program.expected, what);
    });

    // With the translator and with the interpreter alone: both engines must pass everything.
    for (const engine of ["jit", "interp"]) {
      await t.step(`passes under vmesh --engine ${engine}`, async () => {
        const r = await runVmesh(elf, 120_000, [
          "--engine",
          engine,
          "--smp",
          String(smp),
          "--timeout",
          "100",
        ]);
        const what = describe(`vmesh run --engine ${engine} ${program.name}`, r);
        assert.equal(r.timedOut, false, what);
        assert.equal(r.code, 0, what);
        assert.equal(r.stdout, program.expected, what);
      });
    }
  });
}

Deno.test("isa harness: a failing check exits with its line, under QEMU and vmesh", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-isa-" });
  try {
    const src = `${dir}/fails.c`;
    await Deno.writeTextFile(
      src,
      '#include "test.h"\nint main(void) {\n  CHECK(1 + 1 == 3);\n  return 0;\n}\n',
    );
    const expected = "FAIL line 3: 1 + 1 == 3\n";
    for (const board of ["spike", "virt"] as const) {
      const elf = await buildProgram(src, {
        cacheDir: `${dir}/cache`,
        flags: board === "virt" ? ["-DVMESH_VIRT"] : [],
      });
      await t.step(`${board} flavour under QEMU`, async () => {
        const r = await runQemu(elf, board);
        assert.equal(r.code, 4, describe("fails", r)); // line 3 -> 3 % 255 + 1
        assert.equal(r.stdout, expected, describe("fails", r));
      });
      await t.step(`${board} flavour under vmesh`, async () => {
        const r = await runVmesh(elf, 120_000, ["--timeout", "100"]);
        assert.equal(r.code, 4, describe("fails", r));
        assert.equal(r.stdout, expected, describe("fails", r));
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
