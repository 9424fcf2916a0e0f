/**
 * Differential tests: dump programs (integer ops over edge operands, a pseudo-random
 * instruction mix, bare and in S-mode under Sv39, FP ops in every rounding mode, random
 * legal/illegal encodings) run under QEMU `virt` and vmesh; the console output must match
 * byte for byte.
 */

import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { describe, runQemu, runVmesh } from "./riscv/run.ts";

/** One dump program build under tests/riscv/diff. */
interface DiffProgram {
  /** Test label. */
  label: string;
  /** Source file name under tests/riscv/diff (without .c). */
  source: string;
  /** Extra compiler flags. */
  flags: string[];
  /** Fewest output lines QEMU must give (guards against a program that prints nothing). */
  minLines: number;
  /** The output must also equal the same source built without `flags` (under QEMU). */
  sameAsUnpaged?: boolean;
}

const DIFF_PROGRAMS: readonly DiffProgram[] = [
  { label: "int_ops", source: "int_ops", flags: [], minLines: 75 },
  { label: "mix", source: "mix", flags: [], minLines: 25 },
  { label: "mix under Sv39", source: "mix", flags: ["-DPAGED"], minLines: 25, sameAsUnpaged: true },
  { label: "fp_ops", source: "fp_ops", flags: [], minLines: 150 },
  { label: "decode", source: "decode", flags: [], minLines: 40 },
];

// UART output (virt flavour): no HTIF round trip per character.
const build = (p: DiffProgram) =>
  buildProgram(`diff/${p.source}.c`, { flags: ["-DVMESH_VIRT", ...p.flags] });

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
  Deno.test(`diff ${program.label}: vmesh output equals QEMU's byte for byte`, async () => {
    const elf = await build(program);
    const oracle = await runQemu(elf, "virt");
    const qemuWhat = describe(`qemu ${program.label}`, oracle);
    assert.equal(oracle.timedOut, false, qemuWhat);
    assert.equal(oracle.code, 0, qemuWhat);
    assert.ok(oracle.stdout.endsWith("PASS\n"), qemuWhat);
    assert.ok(oracle.stdout.split("\n").length > program.minLines, qemuWhat);
    if (program.sameAsUnpaged) {
      // Translation must be invisible: the paged build computes exactly what the bare one does.
      const bare = await runQemu(await build({ ...program, flags: [] }), "virt");
      assert.equal(oracle.stdout, bare.stdout, "paged and unpaged builds differ under QEMU");
    }

    const r = await runVmesh(elf, 300_000, ["--timeout", "280"]);
    const what = describe(`vmesh run ${program.label}`, r);
    assert.equal(r.timedOut, false, what);
    assert.ok(
      r.stdout === oracle.stdout,
      `${firstDifference(oracle.stdout, r.stdout)}\n${what}`,
    );
    assert.equal(r.code, 0, what);
  });
}
