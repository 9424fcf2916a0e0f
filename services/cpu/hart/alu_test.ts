/**
 * RV64I/M register-register and register-immediate arithmetic against a BigInt reference,
 * over operand pairs that hit the corner cases (zero, -1, MIN, MAX, division overflow, shifts
 * of 31/32/63/64).
 */
import assert from "node:assert/strict";
import { EXIT, runProgram } from "./test_support.ts";

const M64 = (1n << 64n) - 1n;
const u64 = (v: bigint) => BigInt.asUintN(64, v);
const s64 = (v: bigint) => BigInt.asIntN(64, v);
const s32 = (v: bigint) => BigInt.asIntN(32, v);
const u32 = (v: bigint) => BigInt.asUintN(32, v);
const MIN = -(1n << 63n);
const MIN32 = -(1n << 31n);

const RR: Record<string, (a: bigint, b: bigint) => bigint> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  sll: (a, b) => a << (u64(b) & 63n),
  srl: (a, b) => u64(a) >> (u64(b) & 63n),
  sra: (a, b) => s64(a) >> (u64(b) & 63n),
  slt: (a, b) => (s64(a) < s64(b) ? 1n : 0n),
  sltu: (a, b) => (u64(a) < u64(b) ? 1n : 0n),
  xor: (a, b) => a ^ b,
  or: (a, b) => a | b,
  and: (a, b) => a & b,
  addw: (a, b) => s32(a + b),
  subw: (a, b) => s32(a - b),
  sllw: (a, b) => s32(a << (u64(b) & 31n)),
  srlw: (a, b) => s32(u32(a) >> (u64(b) & 31n)),
  sraw: (a, b) => s32(a) >> (u64(b) & 31n),
  mul: (a, b) => a * b,
  mulh: (a, b) => (s64(a) * s64(b)) >> 64n,
  mulhsu: (a, b) => (s64(a) * u64(b)) >> 64n,
  mulhu: (a, b) => (u64(a) * u64(b)) >> 64n,
  div: (a, b) => (b === 0n ? -1n : a === MIN && b === -1n ? MIN : a / b),
  divu: (a, b) => (u64(b) === 0n ? M64 : u64(a) / u64(b)),
  rem: (a, b) => (b === 0n ? a : a === MIN && b === -1n ? 0n : a % b),
  remu: (a, b) => (u64(b) === 0n ? a : u64(a) % u64(b)),
  mulw: (a, b) => s32(a * b),
  divw: (a, b) => {
    const x = s32(a), y = s32(b);
    return y === 0n ? -1n : x === MIN32 && y === -1n ? MIN32 : s32(x / y);
  },
  divuw: (a, b) => (u32(b) === 0n ? -1n : s32(u32(a) / u32(b))),
  remw: (a, b) => {
    const x = s32(a), y = s32(b);
    return y === 0n ? x : x === MIN32 && y === -1n ? 0n : s32(x % y);
  },
  remuw: (a, b) => (u32(b) === 0n ? s32(a) : s32(u32(a) % u32(b))),
};

const RI: Record<string, (a: bigint, imm: bigint) => bigint> = {
  addi: (a, i) => a + i,
  slti: (a, i) => (s64(a) < i ? 1n : 0n),
  sltiu: (a, i) => (u64(a) < u64(i) ? 1n : 0n),
  xori: (a, i) => a ^ i,
  ori: (a, i) => a | i,
  andi: (a, i) => a & i,
  addiw: (a, i) => s32(a + i),
};
const SHIFT_I: Record<string, [(a: bigint, sh: bigint) => bigint, number]> = {
  slli: [(a, s) => a << s, 63],
  srli: [(a, s) => u64(a) >> s, 63],
  srai: [(a, s) => s64(a) >> s, 63],
  slliw: [(a, s) => s32(a << s), 31],
  srliw: [(a, s) => s32(u32(a) >> s), 31],
  sraiw: [(a, s) => s32(a) >> s, 31],
};

const VALUES = [
  0n,
  1n,
  -1n,
  7n,
  -7n,
  31n,
  32n,
  63n,
  64n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  -0x80000000n,
  (1n << 63n) - 1n,
  MIN,
  0x123456789abcdef0n,
  -0x0fedcba987654321n,
];
const IMMS = [0n, 1n, -1n, 2047n, -2048n, 0x555n, -0x556n];
const SHAMTS = [0n, 1n, 13n, 31n, 32n, 63n];

Deno.test("RV64IM arithmetic matches the BigInt reference", async () => {
  const lines: string[] = [".globl _start", "_start:", "  li s0, 0x80100000"];
  const expect: bigint[] = [];
  const emit = (insn: string, value: bigint) => {
    lines.push(`  ${insn}`, `  sd a2, ${(expect.length % 256) * 8}(s0)`);
    expect.push(u64(value));
    if (expect.length % 256 === 0) lines.push("  addi s0, s0, 2047", "  addi s0, s0, 1");
  };
  for (const [op, f] of Object.entries(RR)) {
    for (const a of VALUES) {
      for (const b of VALUES) {
        lines.push(`  li a0, ${a}`, `  li a1, ${b}`);
        emit(`${op} a2, a0, a1`, f(a, b));
      }
    }
  }
  for (const [op, f] of Object.entries(RI)) {
    for (const a of VALUES) {
      for (const i of IMMS) {
        lines.push(`  li a0, ${a}`);
        emit(`${op} a2, a0, ${i}`, f(a, i));
      }
    }
  }
  for (const [op, [f, max]] of Object.entries(SHIFT_I)) {
    for (const a of VALUES) {
      for (const s of SHAMTS) {
        if (s > BigInt(max)) continue;
        lines.push(`  li a0, ${a}`);
        emit(`${op} a2, a0, ${s}`, f(a, s));
      }
    }
  }
  // x0 stays zero whatever is written to it.
  lines.push("  li a0, 5", "  add x0, a0, a0", "  mul x0, a0, a0", "  div x0, a0, a0");
  lines.push("  mv a2, x0");
  emit("nop", 0n);
  lines.push(EXIT);
  const m = await runProgram(lines.join("\n"), 10_000_000);
  assert.equal(m.stop, 2);
  const got = m.mem.readPhys(0x80100000, expect.length * 8);
  const dv = new DataView(got.buffer);
  let failures = 0;
  const report: string[] = [];
  for (let i = 0; i < expect.length; i++) {
    const v = dv.getBigUint64(i * 8, true);
    if (v !== expect[i]) {
      failures++;
      if (report.length < 10) {
        report.push(`#${i}: got ${v.toString(16)} want ${expect[i].toString(16)}`);
      }
    }
  }
  assert.equal(failures, 0, report.join("\n"));
  assert.ok(expect.length > 8000);
});
