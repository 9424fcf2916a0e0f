/**
 * Differential test of the F/D extensions against QEMU: every case of `fpCases` runs as a
 * bare-metal program under qemu-system-riscv64 and through `fpExecute`; results and fflags
 * must agree bit for bit.
 */

import assert from "node:assert/strict";
import { type FpCase, fpCases } from "./fpu_cases.ts";
import { fpExecute, type FpState } from "./fpu.ts";
import { runOnQemu } from "./fpu_oracle.ts";

const X = 0;
const F = 64;

/** Runs one case through fpExecute from the same initial state the oracle program uses. */
export function runLocal(
  c: FpCase,
): { ok: boolean; x: [number, number]; f: [number, number]; flags: number } {
  const s: FpState = { i32: new Int32Array(128), xBase: X, fBase: F, fflags: 0, frm: c.frm };
  for (let k = 0; k < 3; k++) {
    s.i32[X + 2 * (11 + k)] = s.i32[F + 2 * (11 + k)] = c.ops[k][0];
    s.i32[X + 2 * (11 + k) + 1] = s.i32[F + 2 * (11 + k) + 1] = c.ops[k][1];
  }
  s.i32[X + 20] = 0x5a5a5a5a;
  s.i32[F + 20] = 0x5a5a5a5a;
  const ok = fpExecute(s, c.insn);
  return {
    ok,
    x: [s.i32[X + 20], s.i32[X + 21]],
    f: [s.i32[F + 20], s.i32[F + 21]],
    flags: s.fflags,
  };
}

function hex(p: [number, number]): string {
  return (p[1] >>> 0).toString(16).padStart(8, "0") + (p[0] >>> 0).toString(16).padStart(8, "0");
}

Deno.test("F/D results and fflags match qemu-system-riscv64 on every case", async () => {
  const cases = fpCases(1);
  const oracle = await runOnQemu(cases);
  const bad: string[] = [];
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const want = oracle[i];
    const got = runLocal(c);
    if (
      !got.ok || got.x[0] !== want.x[0] || got.x[1] !== want.x[1] || got.f[0] !== want.f[0] ||
      got.f[1] !== want.f[1] || got.flags !== want.flags
    ) {
      bad.push(
        `insn ${(c.insn >>> 0).toString(16)} frm ${c.frm} ops ${c.ops.map(hex).join(" ")}: ` +
          `want x ${hex(want.x)} f ${hex(want.f)} fl ${want.flags}, ` +
          `got ${got.ok ? "" : "ILLEGAL "}x ${hex(got.x)} f ${hex(got.f)} fl ${got.flags}`,
      );
    }
  }
  assert.equal(
    bad.length,
    0,
    `${bad.length} of ${cases.length} differ:\n${bad.slice(0, 40).join("\n")}`,
  );
});
