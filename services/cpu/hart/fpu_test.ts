/**
 * Table-driven unit tests of `fpExecute`: rounding modes, fflags (including tininess after
 * rounding), NaN boxing, canonical NaNs, signed zeros, conversion corners, fused multiply-add
 * and illegal encodings. Expected values are worked out from the RISC-V spec and IEEE 754.
 */

import assert from "node:assert/strict";
import { fpExecute, type FpState } from "./fpu.ts";
import { fmaOp, opFp } from "./fpu_cases.ts";

const X = 0;
const F = 64;
const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4, DYN = 7;
const NV = 16, DZ = 8, OF = 4, UF = 2, NX = 1;
const S = 0, DBL = 1;

/** A 64-bit value: a hex string of raw bits, or a number (a double's bits). */
type Bits = string | number;

const f64 = new Float64Array(1);
const w = new Int32Array(f64.buffer);
const f32 = new Float32Array(1);
const w32 = new Int32Array(f32.buffer);

function pair(v: Bits): [number, number] {
  if (typeof v === "number") {
    f64[0] = v;
    return [w[0], w[1]];
  }
  const h = v.padStart(16, "0");
  return [parseInt(h.slice(8), 16) | 0, parseInt(h.slice(0, 8), 16) | 0];
}

/** Hex of a NaN-boxed single. */
function box(v: number): string {
  f32[0] = v;
  return "ffffffff" + (w32[0] >>> 0).toString(16).padStart(8, "0");
}

function hex(p: [number, number]): string {
  return (p[1] >>> 0).toString(16).padStart(8, "0") + (p[0] >>> 0).toString(16).padStart(8, "0");
}

function state(frm = 0): FpState {
  return { i32: new Int32Array(128), xBase: X, fBase: F, fflags: 0, frm };
}

/** Runs insn with operands in f11..f13 and x11..x13; returns f10, x10 and fflags. */
function run(insn: number, ops: Bits[], frm = 0) {
  const s = state(frm);
  ops.forEach((o, k) => {
    const [lo, hi] = pair(o);
    s.i32[F + 2 * (11 + k)] = s.i32[X + 2 * (11 + k)] = lo;
    s.i32[F + 2 * (11 + k) + 1] = s.i32[X + 2 * (11 + k) + 1] = hi;
  });
  const ok = fpExecute(s, insn);
  return {
    ok,
    f: hex([s.i32[F + 20], s.i32[F + 21]]),
    x: hex([s.i32[X + 20], s.i32[X + 21]]),
    flags: s.fflags,
  };
}

const op = (f5: number, fmt: number, rm: number, rs2 = 12) => opFp(f5, fmt, rs2, 11, rm, 10);
const FADD = 0, FSUB = 1, FMUL = 2, FDIV = 3, FSQRT = 0x0b;

type Row = [string, number, Bits[], Bits, number, number?];

/** Each row: name, insn, operands, expected f10 (or x10 for integer results), flags, frm. */
function check(rows: Row[], intResult = false) {
  for (const [name, insn, ops, want, flags, frm] of rows) {
    const r = run(insn, ops, frm ?? 0);
    assert.ok(r.ok, `${name}: reported illegal`);
    const wantHex = typeof want === "number" ? hex(pair(want)) : want.padStart(16, "0");
    assert.equal(intResult ? r.x : r.f, wantHex, `${name}: result`);
    assert.equal(r.flags, flags, `${name}: fflags`);
  }
}

const ONE = "3ff0000000000000";
const ONE_ULP = "3ff0000000000001";
const TIE_D = 1 + 2 ** -53; // not a double: built from operands below

Deno.test("fadd.d rounds a tie correctly in all five modes", () => {
  const h = 2 ** -53;
  assert.notEqual(TIE_D, 1 + 2 ** -52);
  check([
    ["RNE", op(FADD, DBL, RNE), [1, h], ONE, NX],
    ["RTZ", op(FADD, DBL, RTZ), [1, h], ONE, NX],
    ["RDN", op(FADD, DBL, RDN), [1, h], ONE, NX],
    ["RUP", op(FADD, DBL, RUP), [1, h], ONE_ULP, NX],
    ["RMM", op(FADD, DBL, RMM), [1, h], ONE_ULP, NX],
    ["DYN=RUP", op(FADD, DBL, DYN), [1, h], ONE_ULP, NX, RUP],
    ["neg RDN", op(FADD, DBL, RDN), [-1, -h], "bff0000000000001", NX],
    ["neg RUP", op(FADD, DBL, RUP), [-1, -h], "bff0000000000000", NX],
    ["exact", op(FADD, DBL, RUP), [1, 2], "4008000000000000", 0],
    ["x-x=+0", op(FSUB, DBL, RNE), [1.5, 1.5], "0000000000000000", 0],
    ["x-x=-0 in RDN", op(FSUB, DBL, RDN), [1.5, 1.5], "8000000000000000", 0],
    [
      "-0 + -0",
      op(FADD, DBL, RNE),
      ["8000000000000000", "8000000000000000"],
      "8000000000000000",
      0,
    ],
    ["+0 + -0", op(FADD, DBL, RNE), ["0", "8000000000000000"], "0", 0],
    ["inf - inf", op(FSUB, DBL, RNE), [Infinity, Infinity], "7ff8000000000000", NV],
    // huge exponent gap: the tiny operand only acts as a sticky bit
    ["gap RUP", op(FADD, DBL, RUP), [1, "0000000000000001"], ONE_ULP, NX],
    ["gap RNE", op(FADD, DBL, RNE), [1, "0000000000000001"], ONE, NX],
    ["gap RDN", op(FSUB, DBL, RDN), [1, "0000000000000001"], "3fefffffffffffff", NX],
  ]);
});

Deno.test("fadd.s: ties to even vs ties to max magnitude, and wide exponent gaps", () => {
  const t = 2 ** -24;
  check([
    ["RNE", op(FADD, S, RNE), [box(1), box(t)], box(1), NX],
    ["RMM", op(FADD, S, RMM), [box(1), box(t)], box(1 + 2 ** -23), NX],
    ["RUP", op(FADD, S, RUP), [box(1), box(2 ** -100)], box(1 + 2 ** -23), NX],
    ["RTZ", op(FSUB, S, RTZ), [box(1), box(2 ** -100)], box(1 - 2 ** -24), NX],
  ]);
});

Deno.test("overflow gives infinity or the largest finite value by rounding mode", () => {
  const max = "7fefffffffffffff";
  const inf = "7ff0000000000000";
  check([
    ["RNE", op(FMUL, DBL, RNE), [max, 2], inf, OF | NX],
    ["RTZ", op(FMUL, DBL, RTZ), [max, 2], max, OF | NX],
    ["RDN", op(FMUL, DBL, RDN), [max, 2], max, OF | NX],
    ["RUP", op(FMUL, DBL, RUP), [max, 2], inf, OF | NX],
    ["RMM", op(FMUL, DBL, RMM), [max, 2], inf, OF | NX],
    ["neg RDN", op(FMUL, DBL, RDN), [max, -2], "fff0000000000000", OF | NX],
    ["neg RUP", op(FMUL, DBL, RUP), [max, -2], "ffefffffffffffff", OF | NX],
    ["add RNE", op(FADD, DBL, RNE), [max, max], inf, OF | NX],
    ["single", op(FMUL, S, RTZ), [box(3e38), box(2)], box(3.4028234663852886e38), OF | NX],
    // rounds up to exactly 2^1024 in RNE: overflow
    ["carry", op(FADD, DBL, RNE), [max, 2 ** 970], inf, OF | NX],
    ["no carry", op(FADD, DBL, RNE), [max, 2 ** 969], max, NX],
  ]);
});

Deno.test("underflow: tininess is detected after rounding", () => {
  const sub = "000ccccccccccccd"; // 3602879701896397 * 2^-1074; 1.25 * sub = 2^-1022 + 2^-1076
  check([
    // exact value -(2^-1022 - 2^-1076): rounds (unbounded exponent) to -2^-1022, so not tiny
    [
      "not tiny",
      fmaOp(0x43, DBL, 13, 12, 11, RNE, 10),
      [1.25, sub, -(2 ** -1021)],
      "8010000000000000",
      NX,
    ],
    // RTZ keeps it below 2^-1022: tiny and inexact
    [
      "tiny RTZ",
      fmaOp(0x43, DBL, 13, 12, 11, RTZ, 10),
      [1.25, sub, -(2 ** -1021)],
      "800fffffffffffff",
      UF | NX,
    ],
    // 2^-126 * (1 - 2^-24) is representable with 24 bits at exponent -127: tiny; RNE ties up
    ["single tie", op(FMUL, S, RNE), [box(2 ** -126), box(1 - 2 ** -24)], box(2 ** -126), UF | NX],
    ["exact subnormal", op(FMUL, S, RNE), [box(2 ** -126), box(0.5)], box(2 ** -127), 0],
    ["to zero", op(FMUL, S, RNE), [box(2 ** -149), box(0.5)], box(0), UF | NX],
    ["to min subnormal", op(FMUL, S, RUP), [box(2 ** -149), box(0.5)], box(2 ** -149), UF | NX],
    ["negative to -0", op(FMUL, S, RUP), [box(-(2 ** -149)), box(0.25)], box(-0), UF | NX],
    ["double to zero RNE", op(FDIV, DBL, RNE), ["0000000000000001", 3], "0", UF | NX],
    ["double RDN", op(FMUL, DBL, RDN), ["0000000000000003", 0.5], "0000000000000001", UF | NX],
  ]);
});

Deno.test("fdiv and fsqrt: division by zero, invalid, directed rounding", () => {
  check([
    ["1/0", op(FDIV, DBL, RNE), [1, 0], "7ff0000000000000", DZ],
    ["-1/0", op(FDIV, DBL, RNE), [-1, 0], "fff0000000000000", DZ],
    ["1/-0", op(FDIV, S, RNE), [box(1), box(-0)], box(-Infinity), DZ],
    ["0/0", op(FDIV, DBL, RNE), [0, 0], "7ff8000000000000", NV],
    ["inf/inf", op(FDIV, S, RNE), [box(Infinity), box(Infinity)], "ffffffff7fc00000", NV],
    ["inf/0", op(FDIV, DBL, RNE), [Infinity, 0], "7ff0000000000000", 0],
    ["1/3 RNE", op(FDIV, DBL, RNE), [1, 3], "3fd5555555555555", NX],
    ["1/3 RUP", op(FDIV, DBL, RUP), [1, 3], "3fd5555555555556", NX],
    ["2/3 RTZ", op(FDIV, DBL, RTZ), [2, 3], "3fe5555555555555", NX],
    ["2/3 RUP", op(FDIV, DBL, RUP), [2, 3], "3fe5555555555556", NX],
    ["2/3 RNE", op(FDIV, DBL, RNE), [2, 3], "3fe5555555555555", NX],
    ["sqrt(-1)", op(FSQRT, DBL, RNE, 0), [-1], "7ff8000000000000", NV],
    ["sqrt(-0)", op(FSQRT, DBL, RNE, 0), ["8000000000000000"], "8000000000000000", 0],
    ["sqrt(4)", op(FSQRT, DBL, RNE, 0), [4], "4000000000000000", 0],
    ["sqrt(2) RNE", op(FSQRT, DBL, RNE, 0), [2], "3ff6a09e667f3bcd", NX],
    ["sqrt(2) RTZ", op(FSQRT, DBL, RTZ, 0), [2], "3ff6a09e667f3bcc", NX],
    ["sqrt(2) RUP", op(FSQRT, DBL, RUP, 0), [2], "3ff6a09e667f3bcd", NX],
    ["sqrt.s(2) RUP", op(FSQRT, S, RUP, 0), [box(2)], "ffffffff3fb504f4", NX],
    ["sqrt.s(2) RDN", op(FSQRT, S, RDN, 0), [box(2)], "ffffffff3fb504f3", NX],
    ["sqrt(min subnormal)", op(FSQRT, DBL, RNE, 0), ["0000000000000001"], "1e60000000000000", 0],
    ["sqrt(-inf)", op(FSQRT, S, RNE, 0), [box(-Infinity)], "ffffffff7fc00000", NV],
  ]);
});

Deno.test("fused multiply-add: one rounding, operand negation, zero signs, invalid", () => {
  const FMADD = 0x43, FMSUB = 0x47, FNMSUB = 0x4b, FNMADD = 0x4f;
  const m = (o: number, fmt: number, rm: number) => fmaOp(o, fmt, 13, 12, 11, rm, 10);
  const a = 1 + 2 ** -52; // a*a = 1 + 2^-51 + 2^-104
  check([
    ["fused", m(FMADD, DBL, RNE), [a, a, -(1 + 2 ** -51)], "3970000000000000", 0],
    ["fmadd", m(FMADD, DBL, RNE), [2, 3, 1], "401c000000000000", 0],
    ["fmsub", m(FMSUB, DBL, RNE), [2, 3, 1], "4014000000000000", 0],
    ["fnmsub", m(FNMSUB, DBL, RNE), [2, 3, 1], "c014000000000000", 0],
    ["fnmadd", m(FNMADD, DBL, RNE), [2, 3, 1], "c01c000000000000", 0],
    ["+0*1 + -0", m(FMADD, DBL, RNE), [0, 1, "8000000000000000"], "0", 0],
    ["+0*1 + -0 RDN", m(FMADD, DBL, RDN), [0, 1, "8000000000000000"], "8000000000000000", 0],
    ["fnmadd 0*1 + 0", m(FNMADD, DBL, RNE), [0, 1, 0], "8000000000000000", 0],
    ["exact cancel", m(FMSUB, DBL, RNE), [2, 3, 6], "0", 0],
    ["exact cancel RDN", m(FMSUB, DBL, RDN), [2, 3, 6], "8000000000000000", 0],
    ["inf*0 + qNaN", m(FMADD, DBL, RNE), [Infinity, 0, "7ff8000000000000"], "7ff8000000000000", NV],
    ["inf*1 - inf", m(FMSUB, DBL, RNE), [Infinity, 1, Infinity], "7ff8000000000000", NV],
    ["qNaN operand", m(FMADD, DBL, RNE), [1, "7ff8000000000001", 1], "7ff8000000000000", 0],
    [
      "sNaN operand",
      m(FMADD, S, RNE),
      [box(1), box(1), "ffffffff7f800001"],
      "ffffffff7fc00000",
      NV,
    ],
    // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is a single-precision tie; the tiny addend breaks it.
    // Summing in double first would lose the addend and round to even (down).
    [
      "single no double rounding",
      m(FMADD, S, RNE),
      [box(1 + 2 ** -12), box(1 + 2 ** -12), box(2 ** -80)],
      box(1 + 2 ** -11 + 2 ** -23),
      NX,
    ],
    [
      "single tie to even",
      m(FMADD, S, RNE),
      [box(1 + 2 ** -12), box(1 + 2 ** -12), box(0)],
      box(1 + 2 ** -11),
      NX,
    ],
    [
      "double overflow",
      m(FMADD, DBL, RNE),
      ["7fefffffffffffff", 2, -1],
      "7ff0000000000000",
      OF | NX,
    ],
    ["tiny addend RUP", m(FMADD, DBL, RUP), [1, 1, "0000000000000001"], ONE_ULP, NX],
    [
      "tiny product, normal result, RDN",
      m(FNMADD, DBL, RDN),
      ["0000000000000001", 2 ** -60, -1],
      "3fefffffffffffff",
      NX,
    ],
  ]);
});

Deno.test("NaN boxing of singles and canonical NaNs", () => {
  const unboxed = "000000003f800000"; // 1.0f without the upper ones
  check([
    ["unboxed operand is NaN", op(FADD, S, RNE), [unboxed, box(1)], "ffffffff7fc00000", 0],
    [
      "qNaN payload not propagated",
      op(FMUL, DBL, RNE),
      ["fff8000000000123", 1],
      "7ff8000000000000",
      0,
    ],
    ["sNaN raises NV", op(FADD, DBL, RNE), ["7ff0000000000001", 1], "7ff8000000000000", NV],
    ["fsgnj.s of unboxed", op(0x04, S, 0), [unboxed, box(-1)], "ffffffffffc00000", 0],
    ["fsgnjn.s", op(0x04, S, 1), [box(1.5), box(2)], box(-1.5), 0],
    ["fsgnjx.s", op(0x04, S, 2), [box(-1.5), box(-2)], box(1.5), 0],
    [
      "fsgnj.d keeps NaN payload",
      op(0x04, DBL, 0),
      ["7ff0000000000123", -1],
      "fff0000000000123",
      0,
    ],
    ["fsgnjx.d", op(0x04, DBL, 2), [-3, -1], "4008000000000000", 0],
    ["fcvt.d.s of unboxed", opFp(0x08, DBL, 0, 11, RNE, 10), [unboxed], "7ff8000000000000", 0],
    [
      "fcvt.d.s sNaN",
      opFp(0x08, DBL, 0, 11, RNE, 10),
      ["ffffffffff800001"],
      "7ff8000000000000",
      NV,
    ],
    ["fcvt.s.d sNaN", opFp(0x08, S, 1, 11, RNE, 10), ["7ff0000000000001"], "ffffffff7fc00000", NV],
    ["fcvt.s.d tie RNE", opFp(0x08, S, 1, 11, RNE, 10), [1 + 2 ** -24], box(1), NX],
    ["fcvt.s.d tie RMM", opFp(0x08, S, 1, 11, RMM, 10), [1 + 2 ** -24], box(1 + 2 ** -23), NX],
    [
      "fcvt.s.d overflow RTZ",
      opFp(0x08, S, 1, 11, RTZ, 10),
      [1e300],
      box(3.4028234663852886e38),
      OF | NX,
    ],
    ["fcvt.s.d underflow", opFp(0x08, S, 1, 11, RNE, 10), [1e-300], box(0), UF | NX],
    ["fcvt.d.s exact", opFp(0x08, DBL, 0, 11, RNE, 10), [box(0.1)], Math.fround(0.1), 0],
    ["fmv.w.x boxes", opFp(0x1e, S, 0, 11, 0, 10), ["123456789abcdef0"], "ffffffff9abcdef0", 0],
    ["fmv.d.x raw", opFp(0x1e, DBL, 0, 11, 0, 10), ["7ff0000000000001"], "7ff0000000000001", 0],
  ]);
});

Deno.test("fmin/fmax and comparisons", () => {
  const q = "7ff8000000000000", sn = "7ff0000000000001";
  check([
    ["min(-0,+0)", op(0x05, DBL, 0), [0, "8000000000000000"], "8000000000000000", 0],
    ["max(-0,+0)", op(0x05, DBL, 1), ["8000000000000000", 0], "0", 0],
    ["min(qNaN,1)", op(0x05, DBL, 0), [q, 1], ONE, 0],
    ["max(1,sNaN)", op(0x05, DBL, 1), [1, sn], ONE, NV],
    ["min(qNaN,qNaN)", op(0x05, DBL, 0), ["fff8000000000005", q], q, 0],
    [
      "min(sNaN,sNaN)",
      op(0x05, S, 0),
      ["ffffffff7f800001", "ffffffff7f800002"],
      "ffffffff7fc00000",
      NV,
    ],
    ["max.s(-1,-2)", op(0x05, S, 1), [box(-1), box(-2)], box(-1), 0],
    ["min.s(unboxed,2)", op(0x05, S, 0), ["0000000000000000", box(2)], box(2), 0],
  ]);
  check([
    ["feq qNaN", op(0x14, DBL, 2), [q, q], "0", 0],
    ["feq sNaN", op(0x14, DBL, 2), [sn, 1], "0", NV],
    ["flt qNaN", op(0x14, DBL, 1), [q, 1], "0", NV],
    ["fle qNaN", op(0x14, S, 0), [box(1), "ffffffff7fc00000"], "0", NV],
    ["feq -0 +0", op(0x14, DBL, 2), ["8000000000000000", 0], "1", 0],
    ["flt -0 +0", op(0x14, DBL, 1), ["8000000000000000", 0], "0", 0],
    ["fle -0 +0", op(0x14, DBL, 0), ["8000000000000000", 0], "1", 0],
    ["flt.s", op(0x14, S, 1), [box(-1), box(1)], "1", 0],
  ], true);
});

Deno.test("fcvt from float to integer: rounding, saturation, sign extension", () => {
  const cvt = (fmt: number, k: number, rm: number) => opFp(0x18, fmt, k, 11, rm, 10);
  const W = 0, WU = 1, L = 2, LU = 3;
  check([
    ["w 2.5 RNE", cvt(DBL, W, RNE), [2.5], "2", NX],
    ["w 2.5 RMM", cvt(DBL, W, RMM), [2.5], "3", NX],
    ["w -2.5 RNE", cvt(DBL, W, RNE), [-2.5], "fffffffffffffffe", NX],
    ["w -2.5 RMM", cvt(DBL, W, RMM), [-2.5], "fffffffffffffffd", NX],
    ["w -2.5 RDN", cvt(DBL, W, RDN), [-2.5], "fffffffffffffffd", NX],
    ["w -2.5 RUP", cvt(DBL, W, RUP), [-2.5], "fffffffffffffffe", NX],
    ["w -2.5 RTZ", cvt(DBL, W, RTZ), [-2.5], "fffffffffffffffe", NX],
    ["w 2^31-0.5 RNE overflows", cvt(DBL, W, RNE), [2 ** 31 - 0.5], "7fffffff", NV],
    ["w 2^31-0.5 RTZ", cvt(DBL, W, RTZ), [2 ** 31 - 0.5], "7fffffff", NX],
    ["w NaN", cvt(DBL, W, RNE), ["fff8000000000000"], "7fffffff", NV],
    ["w -inf", cvt(DBL, W, RNE), [-Infinity], "ffffffff80000000", NV],
    ["w.s unboxed is NaN", cvt(S, W, RNE), ["0000000000000000"], "7fffffff", NV],
    ["wu -0.3 RTZ", cvt(DBL, WU, RTZ), [-0.3], "0", NX],
    ["wu -0.7 RNE", cvt(DBL, WU, RNE), [-0.7], "0", NV],
    ["wu -1", cvt(DBL, WU, RTZ), [-1], "0", NV],
    ["wu 3e9 sign-extended", cvt(DBL, WU, RNE), [3e9], "ffffffffb2d05e00", 0],
    ["wu NaN", cvt(S, WU, RNE), ["ffffffff7fc00000"], "ffffffffffffffff", NV],
    ["wu 2^32", cvt(DBL, WU, RNE), [2 ** 32], "ffffffffffffffff", NV],
    ["l 2^63", cvt(DBL, L, RNE), [2 ** 63], "7fffffffffffffff", NV],
    ["l -2^63", cvt(DBL, L, RNE), [-(2 ** 63)], "8000000000000000", 0],
    ["l NaN", cvt(DBL, L, RNE), ["7ff0000000000001"], "7fffffffffffffff", NV],
    ["l -inf", cvt(S, L, RNE), [box(-Infinity)], "8000000000000000", NV],
    ["l -1.5 RDN", cvt(DBL, L, RDN), [-1.5], "fffffffffffffffe", NX],
    ["l 2^53+2", cvt(DBL, L, RNE), [2 ** 53 + 2], "0020000000000002", 0],
    ["l -(2^40+0.5) RUP", cvt(DBL, L, RUP), [-(2 ** 40 + 0.5)], "ffffff0000000000", NX],
    ["lu -0.5 RNE", cvt(DBL, LU, RNE), [-0.5], "0", NX],
    ["lu -0.5 RUP", cvt(DBL, LU, RUP), [-0.5], "0", NX],
    ["lu -0.5 RDN", cvt(DBL, LU, RDN), [-0.5], "0", NV],
    ["lu 2^64", cvt(DBL, LU, RNE), [2 ** 64], "ffffffffffffffff", NV],
    ["lu 2^64-2048", cvt(DBL, LU, RNE), [2 ** 64 - 2048], "fffffffffffff800", 0],
    ["lu NaN", cvt(DBL, LU, RNE), ["7ff8000000000000"], "ffffffffffffffff", NV],
    ["w.s 0.5 DYN=RUP", cvt(S, W, DYN), [box(0.5)], "1", NX, RUP],
  ], true);
});

Deno.test("fcvt from integer to float: correct rounding above 2^53 and 2^24", () => {
  const cvt = (fmt: number, k: number, rm: number) => opFp(0x1a, fmt, k, 11, rm, 10);
  const W = 0, WU = 1, L = 2, LU = 3;
  check([
    ["d.l 2^53+1 RNE", cvt(DBL, L, RNE), ["0020000000000001"], 2 ** 53, NX],
    ["d.l 2^53+1 RUP", cvt(DBL, L, RUP), ["0020000000000001"], 2 ** 53 + 2, NX],
    ["d.l 2^53+3 RNE", cvt(DBL, L, RNE), ["0020000000000003"], 2 ** 53 + 4, NX],
    ["d.l -(2^53+1) RDN", cvt(DBL, L, RDN), ["ffdfffffffffffff"], -(2 ** 53 + 2), NX],
    ["d.l -2^63", cvt(DBL, L, RNE), ["8000000000000000"], -(2 ** 63), 0],
    ["d.lu 2^64-1 RNE", cvt(DBL, LU, RNE), ["ffffffffffffffff"], 2 ** 64, NX],
    ["d.lu 2^64-1 RTZ", cvt(DBL, LU, RTZ), ["ffffffffffffffff"], 2 ** 64 - 2048, NX],
    ["d.w -1", cvt(DBL, W, RNE), ["00000000ffffffff"], -1, 0],
    ["d.wu 0xffffffff", cvt(DBL, WU, RNE), ["12345678ffffffff"], 4294967295, 0],
    ["s.w 2^24+1 RNE", cvt(S, W, RNE), ["01000001"], box(2 ** 24), NX],
    ["s.w 2^24+1 RUP", cvt(S, W, RUP), ["01000001"], box(2 ** 24 + 2), NX],
    ["s.w 2^24+3 RNE", cvt(S, W, RNE), ["01000003"], box(2 ** 24 + 4), NX],
    ["s.l 2^63-1 RTZ", cvt(S, L, RTZ), ["7fffffffffffffff"], box(2 ** 63 - 2 ** 39), NX],
    ["s.lu 0", cvt(S, LU, RNE), ["0"], box(0), 0],
  ]);
});

Deno.test("fclass, fmv.x.w/d and x0 as destination", () => {
  const cls = (fmt: number) => opFp(0x1c, fmt, 0, 11, 1, 10);
  check([
    ["-inf", cls(DBL), [-Infinity], "1", 0],
    ["-normal", cls(DBL), [-1], "2", 0],
    ["-subnormal", cls(DBL), ["8000000000000001"], "4", 0],
    ["-0", cls(DBL), ["8000000000000000"], "8", 0],
    ["+0", cls(DBL), [0], "10", 0],
    ["+subnormal", cls(DBL), ["000fffffffffffff"], "20", 0],
    ["+normal", cls(DBL), [1], "40", 0],
    ["+inf", cls(DBL), [Infinity], "80", 0],
    ["sNaN", cls(DBL), ["7ff0000000000001"], "100", 0],
    ["qNaN", cls(DBL), ["fff8000000000000"], "200", 0],
    ["single sNaN", cls(S), ["ffffffff7fa00000"], "100", 0],
    ["single unboxed", cls(S), ["00000000ff800000"], "200", 0],
    ["single -subnormal", cls(S), ["ffffffff80000001"], "4", 0],
    [
      "fmv.x.w sign-extends raw low bits",
      opFp(0x1c, S, 0, 11, 0, 10),
      ["0000000080000001"],
      "ffffffff80000001",
      0,
    ],
    ["fmv.x.d", opFp(0x1c, DBL, 0, 11, 0, 10), ["fff0000000000001"], "fff0000000000001", 0],
  ], true);
  const s = state();
  s.i32[F + 22] = 0; // f11 = +0.0
  s.i32[F + 23] = 0;
  s.i32[F + 24] = 0; // f12 = NaN: flt raises NV though the result is discarded
  s.i32[F + 25] = 0x7ff80000;
  assert.ok(fpExecute(s, opFp(0x14, DBL, 12, 11, 1, 0)));
  assert.equal(s.i32[X], 0);
  assert.equal(s.i32[X + 1], 0);
  assert.equal(s.fflags, NV);
});

Deno.test("flags accrue and are never cleared by fpExecute", () => {
  const s = state();
  s.fflags = DZ;
  const [lo, hi] = pair(0.1);
  s.i32[F + 22] = lo;
  s.i32[F + 23] = hi;
  s.i32[F + 24] = lo;
  s.i32[F + 25] = hi;
  assert.ok(fpExecute(s, op(FMUL, DBL, RNE)));
  assert.equal(s.fflags, DZ | NX);
});

Deno.test("illegal encodings are refused without side effects", () => {
  const illegal: [string, number, number?][] = [
    ["rm=5", op(FADD, DBL, 5)],
    ["rm=6", op(FADD, S, 6)],
    ["DYN with frm=5", op(FADD, DBL, DYN), 5],
    ["DYN with frm=7", fmaOp(0x43, DBL, 13, 12, 11, DYN, 10), 7],
    ["half precision", op(FADD, 2, RNE)],
    ["quad precision", op(FMUL, 3, RNE)],
    ["fma half", fmaOp(0x4f, 2, 13, 12, 11, RNE, 10)],
    ["unknown funct5", op(0x06, DBL, RNE)],
    ["fsqrt rs2!=0", op(FSQRT, DBL, RNE, 1)],
    ["fsgnj funct3=3", op(0x04, DBL, 3)],
    ["fmin funct3=2", op(0x05, S, 2)],
    ["fcmp funct3=3", op(0x14, DBL, 3)],
    ["fcvt.s.d rs2=0", opFp(0x08, S, 0, 11, RNE, 10)],
    ["fcvt.d.s rs2=1", opFp(0x08, DBL, 1, 11, RNE, 10)],
    ["fcvt.s.d rm=5", opFp(0x08, S, 1, 11, 5, 10)],
    ["fcvt.w rs2=4", opFp(0x18, DBL, 4, 11, RNE, 10)],
    ["fcvt.d.x rs2=5", opFp(0x1a, DBL, 5, 11, RNE, 10)],
    ["fcvt.w.d DYN frm=6", opFp(0x18, DBL, 0, 11, DYN, 10), 6],
    ["fmv.x.d rs2=1", opFp(0x1c, DBL, 1, 11, 0, 10)],
    ["fclass funct3=2", opFp(0x1c, DBL, 0, 11, 2, 10)],
    ["fmv.d.x funct3=1", opFp(0x1e, DBL, 0, 11, 1, 10)],
    ["not an FP opcode", 0x00000013],
  ];
  for (const [name, insn, frm] of illegal) {
    const s = state(frm ?? 0);
    s.i32.fill(7);
    s.fflags = 0;
    assert.equal(fpExecute(s, insn), false, name);
    assert.ok(s.i32.every((v) => v === 7), `${name}: registers untouched`);
    assert.equal(s.fflags, 0, `${name}: flags untouched`);
  }
});
