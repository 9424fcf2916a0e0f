/**
 * Differential test of the F/D extensions against QEMU: every case of `fpCases` runs as a
 * bare-metal program under qemu-system-riscv64 and through `fpExecute`; results, fflags and
 * the legality of random encodings must agree bit for bit.
 */

import assert from "node:assert/strict";
import { fpCases } from "./fpu_cases.ts";
import { compare, runOnQemu } from "./fpu_oracle.ts";

Deno.test("F/D results and fflags match qemu-system-riscv64 on every case", async () => {
  const cases = fpCases(1);
  const oracle = await runOnQemu(cases);
  // the oracle itself must have exercised every exception flag
  for (const flag of [16, 8, 4, 2, 1]) {
    const n = oracle.filter((r) => (r.flags & flag) !== 0).length;
    assert.ok(n >= 50, `flag ${flag} raised by QEMU in only ${n} cases`);
  }
  // and QEMU must have refused the illegal random encodings (x10 = its trap handler's mark)
  const illegal = oracle.filter((r, i) => !cases[i].legal && r.x[0] === 0xbad).length;
  assert.ok(illegal >= 1000, `only ${illegal} illegal encodings trapped under QEMU`);
  const bad = compare(cases, oracle);
  assert.equal(
    bad.length,
    0,
    `${bad.length} of ${cases.length} differ:\n${bad.slice(0, 40).join("\n")}`,
  );
});
