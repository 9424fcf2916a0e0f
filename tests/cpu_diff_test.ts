/**
 * Differential tests: dump programs (integer ops over edge operands, a pseudo-random
 * instruction mix, FP ops in every rounding mode, random legal/illegal encodings) run under
 * QEMU `virt` and vmesh; the console output must match byte for byte.
 */

import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { describe, runQemu, runVmesh } from "./riscv/run.ts";

/** One dump program under tests/riscv/diff and the least output QEMU must give for it. */
const DIFF_PROGRAMS = [
  { name: "int_ops", minLines: 75 },
  { name: "mix", minLines: 25 },
  { name: "fp_ops", minLines: 150 },
  { name: "decode", minLines: 40 },
] as const;

/** Line number (1-based) and both lines where two outputs first differ, for the message. */
function firstDifference(want: string, got: string): string {
  const a = want.split("\n"), b = got.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `first difference at line ${i + 1}:\n  qemu:  ${a[i] ?? "<end>"}\n  vmesh: ${
        b[i] ?? "<end>"
      }`;
    }
  }
  return "outputs equal";
}

for (const program of DIFF_PROGRAMS) {
  Deno.test(`diff ${program.name}: vmesh output equals QEMU's byte for byte`, async () => {
    // UART output (virt flavour): no HTIF round trip per character.
    const elf = await buildProgram(`diff/${program.name}.c`, { flags: ["-DVMESH_VIRT"] });
    const oracle = await runQemu(elf, "virt");
    const qemuWhat = describe(`qemu ${program.name}`, oracle);
    assert.equal(oracle.timedOut, false, qemuWhat);
    assert.equal(oracle.code, 0, qemuWhat);
    assert.ok(oracle.stdout.endsWith("PASS\n"), qemuWhat);
    assert.ok(oracle.stdout.split("\n").length > program.minLines, qemuWhat);

    const r = await runVmesh(elf, 300_000, ["--timeout", "280"]);
    const what = describe(`vmesh run ${program.name}`, r);
    assert.equal(r.timedOut, false, what);
    assert.ok(
      r.stdout === oracle.stdout,
      `${firstDifference(oracle.stdout, r.stdout)}\n${what}`,
    );
    assert.equal(r.code, 0, what);
  });
}
