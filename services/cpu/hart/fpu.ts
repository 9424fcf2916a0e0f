/**
 * The F and D extensions for an RV64 hart: decodes OP-FP and the fused multiply-add opcodes,
 * handles NaN boxing, canonical NaNs and signalling-NaN flags from the raw register bits, and
 * leaves the arithmetic to `softfloat.ts`.
 */

import * as sf from "./softfloat.ts";

/** What the FPU needs of a hart. */
export interface FpState {
  /** View over the whole shared WebAssembly.Memory. */
  i32: Int32Array;
  /** Int32 index of x0.lo; x[i] = lo i32[xBase+2i], hi i32[xBase+2i+1]. */
  xBase: number;
  /** Int32 index of f0.lo; f[i] raw IEEE bits, lo/hi like x. */
  fBase: number;
  /** Accrued exceptions, 5 bits: NV=16 DZ=8 OF=4 UF=2 NX=1. */
  fflags: number;
  /** Dynamic rounding mode, 3 bits. */
  frm: number;
}

const CANON_S = 0x7fc00000;
const CANON_D_HI = 0x7ff80000;

const f32 = new Float32Array(1);
const f32w = new Int32Array(f32.buffer);
const f64 = new Float64Array(1);
const f64w = new Int32Array(f64.buffer);

/** Raw binary32 bits of single register r; a value that is not NaN-boxed reads as canonical NaN. */
function sBits(s: FpState, r: number): number {
  const i = s.fBase + 2 * r;
  return s.i32[i + 1] === -1 ? s.i32[i] : CANON_S;
}

function sIsNaN(b: number): boolean {
  return (b & 0x7fffffff) > 0x7f800000;
}

function sIsSNaN(b: number): boolean {
  return sIsNaN(b) && (b & 0x400000) === 0;
}

function dIsNaN(lo: number, hi: number): boolean {
  const h = hi & 0x7fffffff;
  return h > 0x7ff00000 || (h === 0x7ff00000 && lo !== 0);
}

function dIsSNaN(lo: number, hi: number): boolean {
  return dIsNaN(lo, hi) && (hi & 0x80000) === 0;
}

function writeSBits(s: FpState, rd: number, b: number): void {
  const i = s.fBase + 2 * rd;
  s.i32[i] = b;
  s.i32[i + 1] = -1;
}

/** Writes a binary32 value (a NaN becomes the canonical NaN), NaN-boxed. */
function writeS(s: FpState, rd: number, v: number): void {
  if (v !== v) {
    writeSBits(s, rd, CANON_S);
    return;
  }
  f32[0] = v;
  writeSBits(s, rd, f32w[0]);
}

/** Writes a binary64 value (a NaN becomes the canonical NaN). */
function writeD(s: FpState, rd: number, v: number): void {
  const i = s.fBase + 2 * rd;
  if (v !== v) {
    s.i32[i] = 0;
    s.i32[i + 1] = CANON_D_HI;
    return;
  }
  f64[0] = v;
  s.i32[i] = f64w[0];
  s.i32[i + 1] = f64w[1];
}

function writeX(s: FpState, rd: number, lo: number, hi: number): void {
  if (rd === 0) return;
  const i = s.xBase + 2 * rd;
  s.i32[i] = lo;
  s.i32[i + 1] = hi;
}

// Operand decode shared by the handlers (set by loadOperands).
let va = 0;
let vb = 0;
let vc = 0;
let anyNaN = false;
let anySNaN = false;
let aNaN = false;
let bNaN = false;

/** Value of register r in format fmt (unboxed singles read as the canonical NaN). */
function readF(s: FpState, fmt: number, r: number): number {
  const i = s.fBase + 2 * r;
  if (fmt === sf.FMT_S) {
    f32w[0] = s.i32[i + 1] === -1 ? s.i32[i] : CANON_S;
    return f32[0];
  }
  f64w[0] = s.i32[i];
  f64w[1] = s.i32[i + 1];
  return f64[0];
}

/** True when register r holds a signalling NaN of format fmt (only asked once a NaN is seen). */
function isSNaN(s: FpState, fmt: number, r: number): boolean {
  if (fmt === sf.FMT_S) return sIsSNaN(sBits(s, r));
  const i = s.fBase + 2 * r;
  return dIsSNaN(s.i32[i], s.i32[i + 1]);
}

/** Reads n operands of format fmt into va/vb/vc and notes NaNs. */
function loadOperands(s: FpState, fmt: number, insn: number, n: number): void {
  const r1 = (insn >>> 15) & 31;
  va = readF(s, fmt, r1);
  aNaN = va !== va;
  anyNaN = aNaN;
  if (n > 1) {
    vb = readF(s, fmt, (insn >>> 20) & 31);
    bNaN = vb !== vb;
    anyNaN ||= bNaN;
    if (n > 2) {
      vc = readF(s, fmt, insn >>> 27);
      anyNaN ||= vc !== vc;
    }
  }
  anySNaN = false;
  if (anyNaN) {
    anySNaN = isSNaN(s, fmt, r1) || (n > 1 && isSNaN(s, fmt, (insn >>> 20) & 31)) ||
      (n > 2 && isSNaN(s, fmt, insn >>> 27));
  }
}

/** The effective rounding mode, or -1 when it is reserved. */
function roundingMode(s: FpState, insn: number): number {
  let rm = (insn >>> 12) & 7;
  if (rm === 7) rm = s.frm & 7;
  return rm <= 4 ? rm : -1;
}

/** Writes an arithmetic result of format fmt. */
function writeF(s: FpState, fmt: number, rd: number, v: number): void {
  if (fmt === sf.FMT_S) writeS(s, rd, v);
  else writeD(s, rd, v);
}

/** Executes one OP-FP (opcode 0x53) or fused multiply-add (0x43,0x47,0x4b,0x4f) instruction.
 * Returns false when the encoding is illegal (unknown funct, reserved rm, rm=DYN with frm>4);
 * the caller then raises illegal instruction. Writes integer results to x[rd] only if rd != 0,
 * sign-extended to 64 bits as the spec says. The caller handles FS=Off, FS=Dirty, loads/stores. */
export function fpExecute(s: FpState, insn: number): boolean {
  const opcode = insn & 0x7f;
  const fmt = (insn >>> 25) & 3;
  if (fmt > 1) return false;
  const rd = (insn >>> 7) & 31;
  sf.takeFlags();
  if (opcode !== 0x53) {
    if (opcode !== 0x43 && opcode !== 0x47 && opcode !== 0x4b && opcode !== 0x4f) return false;
    const rm = roundingMode(s, insn);
    if (rm < 0) return false;
    loadOperands(s, fmt, insn, 3);
    if (anyNaN) {
      // RISC-V raises NV for inf*0 even when the addend is a quiet NaN
      const invalidProduct = !aNaN && !bNaN &&
        ((va === 0 && vb - vb !== 0) || (vb === 0 && va - va !== 0));
      s.fflags |= anySNaN || invalidProduct ? sf.NV : 0;
      writeF(s, fmt, rd, NaN);
      return true;
    }
    const negProd = opcode === 0x4b || opcode === 0x4f;
    const negC = opcode === 0x47 || opcode === 0x4f;
    writeF(s, fmt, rd, sf.fma(negProd ? -va : va, vb, negC ? -vc : vc, fmt, rm));
    s.fflags |= sf.takeFlags();
    return true;
  }
  const funct5 = insn >>> 27;
  const rs2 = (insn >>> 20) & 31;
  const funct3 = (insn >>> 12) & 7;
  switch (funct5) {
    case 0x00: // fadd
    case 0x01: // fsub
    case 0x02: // fmul
    case 0x03: { // fdiv
      const rm = roundingMode(s, insn);
      if (rm < 0) return false;
      loadOperands(s, fmt, insn, 2);
      let v = NaN;
      if (!anyNaN) {
        if (funct5 === 0x00) v = sf.add(va, vb, fmt, rm);
        else if (funct5 === 0x01) v = sf.add(va, -vb, fmt, rm);
        else if (funct5 === 0x02) v = sf.mul(va, vb, fmt, rm);
        else v = sf.div(va, vb, fmt, rm);
      } else if (anySNaN) s.fflags |= sf.NV;
      writeF(s, fmt, rd, v);
      break;
    }
    case 0x0b: { // fsqrt
      const rm = roundingMode(s, insn);
      if (rm < 0 || rs2 !== 0) return false;
      loadOperands(s, fmt, insn, 1);
      let v = NaN;
      if (!anyNaN) v = sf.sqrt(va, fmt, rm);
      else if (anySNaN) s.fflags |= sf.NV;
      writeF(s, fmt, rd, v);
      break;
    }
    case 0x04: { // fsgnj, fsgnjn, fsgnjx on raw bits
      if (funct3 > 2) return false;
      if (fmt === sf.FMT_S) {
        const a = sBits(s, (insn >>> 15) & 31);
        const b = sBits(s, rs2);
        const sign = funct3 === 0 ? b : funct3 === 1 ? ~b : a ^ b;
        writeSBits(s, rd, (a & 0x7fffffff) | (sign & 0x80000000));
      } else {
        const ia = s.fBase + 2 * ((insn >>> 15) & 31);
        const a = s.i32[ia + 1];
        const b = s.i32[s.fBase + 2 * rs2 + 1];
        const sign = funct3 === 0 ? b : funct3 === 1 ? ~b : a ^ b;
        const lo = s.i32[ia];
        const i = s.fBase + 2 * rd;
        s.i32[i] = lo;
        s.i32[i + 1] = (a & 0x7fffffff) | (sign & 0x80000000);
      }
      return true;
    }
    case 0x05: { // fmin, fmax
      if (funct3 > 1) return false;
      loadOperands(s, fmt, insn, 2);
      if (anySNaN) s.fflags |= sf.NV;
      let useB: boolean;
      if (aNaN && bNaN) {
        writeF(s, fmt, rd, NaN);
        return true;
      } else if (aNaN) useB = true;
      else if (bNaN) useB = false;
      else if (va === vb) useB = funct3 === 0 ? sf.signBit(vb) : !sf.signBit(vb);
      else useB = funct3 === 0 ? vb < va : vb > va;
      writeF(s, fmt, rd, useB ? vb : va);
      return true;
    }
    case 0x08: { // fcvt.s.d, fcvt.d.s
      const rm = roundingMode(s, insn);
      if (rm < 0) return false;
      if (fmt === sf.FMT_S && rs2 === 1) {
        loadOperands(s, sf.FMT_D, insn, 1);
        if (anySNaN) s.fflags |= sf.NV;
        writeS(s, rd, anyNaN ? NaN : sf.convert(va, sf.FMT_S, rm));
      } else if (fmt === sf.FMT_D && rs2 === 0) {
        loadOperands(s, sf.FMT_S, insn, 1);
        if (anySNaN) s.fflags |= sf.NV;
        writeD(s, rd, anyNaN ? NaN : va);
      } else return false;
      break;
    }
    case 0x14: { // feq, flt, fle
      if (funct3 > 2) return false;
      loadOperands(s, fmt, insn, 2);
      let r = 0;
      if (anyNaN) {
        if (anySNaN || funct3 !== 2) s.fflags |= sf.NV;
      } else if (funct3 === 2) r = va === vb ? 1 : 0;
      else if (funct3 === 1) r = va < vb ? 1 : 0;
      else r = va <= vb ? 1 : 0;
      writeX(s, rd, r, 0);
      return true;
    }
    case 0x18: { // fcvt.w/wu/l/lu.fmt
      const rm = roundingMode(s, insn);
      if (rm < 0 || rs2 > 3) return false;
      loadOperands(s, fmt, insn, 1);
      sf.toInt(va, rs2, rm);
      writeX(s, rd, sf.intLo, sf.intHi);
      break;
    }
    case 0x1a: { // fcvt.fmt.w/wu/l/lu
      const rm = roundingMode(s, insn);
      if (rm < 0 || rs2 > 3) return false;
      const i = s.xBase + 2 * ((insn >>> 15) & 31);
      const lo = s.i32[i];
      const hi = rs2 === sf.CVT_W ? lo >> 31 : rs2 === sf.CVT_WU ? 0 : s.i32[i + 1];
      writeF(s, fmt, rd, sf.fromInt64(lo, hi, (rs2 & 1) !== 0, fmt, rm));
      break;
    }
    case 0x1c: { // fmv.x.w / fmv.x.d, fclass
      if (rs2 !== 0 || funct3 > 1) return false;
      const i = s.fBase + 2 * ((insn >>> 15) & 31);
      if (funct3 === 0) {
        const lo = s.i32[i];
        writeX(s, rd, lo, fmt === sf.FMT_S ? lo >> 31 : s.i32[i + 1]);
      } else {
        writeX(
          s,
          rd,
          fmt === sf.FMT_S
            ? classifyS(sBits(s, (insn >>> 15) & 31))
            : classifyD(s.i32[i], s.i32[i + 1]),
          0,
        );
      }
      return true;
    }
    case 0x1e: { // fmv.w.x / fmv.d.x
      if (rs2 !== 0 || funct3 !== 0) return false;
      const i = s.xBase + 2 * ((insn >>> 15) & 31);
      if (fmt === sf.FMT_S) writeSBits(s, rd, s.i32[i]);
      else {
        const j = s.fBase + 2 * rd;
        s.i32[j] = s.i32[i];
        s.i32[j + 1] = s.i32[i + 1];
      }
      return true;
    }
    default:
      return false;
  }
  s.fflags |= sf.takeFlags();
  return true;
}

/** fclass mask from the sign, whether the exponent is all zeros / all ones, and the fraction. */
function classify(
  neg: boolean,
  expZero: boolean,
  expOnes: boolean,
  fracZero: boolean,
  quiet: boolean,
): number {
  if (expOnes) {
    if (fracZero) return neg ? 1 : 1 << 7;
    return quiet ? 1 << 9 : 1 << 8;
  }
  if (expZero) {
    if (fracZero) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

function classifyS(b: number): number {
  const e = (b >>> 23) & 0xff;
  return classify(b < 0, e === 0, e === 0xff, (b & 0x7fffff) === 0, (b & 0x400000) !== 0);
}

function classifyD(lo: number, hi: number): number {
  const e = (hi >>> 20) & 0x7ff;
  return classify(
    hi < 0,
    e === 0,
    e === 0x7ff,
    (hi & 0xfffff) === 0 && lo === 0,
    (hi & 0x80000) !== 0,
  );
}
