import assert from "node:assert/strict";
import { assemble } from "../hart/test_support.ts";
import { decodeAccess } from "./access_decode.ts";

// [assembly, base register, offset, size, "r" | "w" | "rw"] or [assembly] for no access.
const CASES: [string, number?, number?, number?, string?][] = [
  ["lb a0, -3(a1)", 11, -3, 1, "r"],
  ["lhu a0, 2047(a1)", 11, 2047, 2, "r"],
  ["lwu a0, 4(a2)", 12, 4, 4, "r"],
  ["ld a0, -2048(s0)", 8, -2048, 8, "r"],
  ["flw fa0, 12(a2)", 12, 12, 4, "r"],
  ["fld fa0, 16(a2)", 12, 16, 8, "r"],
  ["sb a0, -1(a1)", 11, -1, 1, "w"],
  ["sh a0, 100(a1)", 11, 100, 2, "w"],
  ["sw a0, -100(a1)", 11, -100, 4, "w"],
  ["sd a0, 2040(t0)", 5, 2040, 8, "w"],
  ["fsw fa0, -4(a3)", 13, -4, 4, "w"],
  ["fsd fa0, 8(a3)", 13, 8, 8, "w"],
  ["lr.d a0, (a1)", 11, 0, 8, "r"],
  ["sc.w a0, a2, (a1)", 11, 0, 4, "w"],
  ["amoadd.d a0, a2, (a1)", 11, 0, 8, "rw"],
  ["amoswap.w a0, a2, (a3)", 13, 0, 4, "rw"],
  ["c.lw a0, 124(a1)", 11, 124, 4, "r"],
  ["c.ld a0, 248(a1)", 11, 248, 8, "r"],
  ["c.fld fa0, 8(a1)", 11, 8, 8, "r"],
  ["c.sw a0, 64(a1)", 11, 64, 4, "w"],
  ["c.sd a0, 128(a5)", 15, 128, 8, "w"],
  ["c.fsd fa0, 248(a1)", 11, 248, 8, "w"],
  ["c.lwsp a0, 252(sp)", 2, 252, 4, "r"],
  ["c.ldsp a0, 504(sp)", 2, 504, 8, "r"],
  ["c.fldsp fa0, 8(sp)", 2, 8, 8, "r"],
  ["c.swsp a0, 252(sp)", 2, 252, 4, "w"],
  ["c.sdsp a0, 504(sp)", 2, 504, 8, "w"],
  ["c.fsdsp fa0, 496(sp)", 2, 496, 8, "w"],
  ["add a0, a1, a2"],
  ["c.addi a0, 1"],
  ["c.mv a0, a1"],
  ["jalr ra, 0(a0)"],
  ["csrr a0, mstatus"],
  ["fence"],
];

const reg = (i: number) => 0x8000_0000n + BigInt(i) * 0x1000n;

Deno.test("access decode: every load/store/AMO form, as the assembler encodes them", async () => {
  const bin = await assemble(
    ".globl _start\n_start:\n" + CASES.map(([a]) => `  ${a}\n`).join(""),
  );
  let off = 0;
  for (const [asm, base, imm, size, dir] of CASES) {
    const half = bin[off] | (bin[off + 1] << 8);
    const len = (half & 3) === 3 ? 4 : 2;
    const insn = len === 4 ? new DataView(bin.buffer).getInt32(off, true) : half;
    off += len;
    const got = decodeAccess(insn, reg);
    if (base === undefined) {
      assert.equal(got, null, asm);
      continue;
    }
    assert.deepEqual(got, {
      va: reg(base) + BigInt(imm!),
      size,
      read: dir!.includes("r"),
      write: dir!.includes("w"),
    }, `${asm} (0x${(insn >>> 0).toString(16)})`);
  }
  assert.equal(off, bin.length, "every case decoded in order");
});
