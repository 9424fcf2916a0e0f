import assert from "node:assert/strict";
import { EMULATOR_HIDDEN_FEATURES, hideFeatures } from "./cpuid_emulator_quirks.ts";

Deno.test("hideFeatures clears CX16/XSAVE in leaf 1 and FSGSBASE/SMAP in leaf 7.0 only", () => {
  const leaves = [[1, 0], [7, 0], [7, 1], [0x80000001, 0]];
  const buf = new DataView(new ArrayBuffer(8 + leaves.length * 40));
  buf.setUint32(0, leaves.length, true);
  leaves.forEach(([fn, index], i) => {
    const o = 8 + i * 40;
    buf.setUint32(o, fn, true);
    buf.setUint32(o + 4, index, true);
    for (const r of [16, 20, 24]) buf.setUint32(r + o, 0xffffffff, true);
  });
  hideFeatures(buf, EMULATOR_HIDDEN_FEATURES);
  const reg = (i: number, r: number) => buf.getUint32(8 + i * 40 + r, true);
  assert.equal(reg(0, 20) & (1 << 13), 0); // CX16
  assert.equal(reg(0, 20) & (1 << 26), 0); // XSAVE
  assert.equal(reg(0, 20) & (1 << 31), 1 << 31); // hypervisor bit untouched
  assert.equal(reg(0, 24), 0xffffffff); // leaf 1 edx untouched
  assert.equal(reg(1, 16) & 1, 0); // FSGSBASE
  assert.equal(reg(1, 16) & (1 << 20), 0); // SMAP
  assert.equal(reg(2, 16), 0xffffffff); // leaf 7 subleaf 1 untouched
  assert.equal(reg(3, 20), 0xffffffff);
});
