/**
 * Test vectors for the F/D extensions: instruction encoders and a deterministic table of
 * (instruction, frm, operands) cases covering every operation, every rounding mode and the
 * interesting operands (signed zeros, subnormals, extremes, NaNs, integer limits). The same
 * table drives the QEMU differential test and can be replayed through `fpExecute`.
 */

/** One test case: the instruction (rd = 10, rs1 = 11, rs2 = 12, rs3 = 13), frm, operands. */
export interface FpCase {
  /** Encoded instruction. */
  insn: number;
  /** Dynamic rounding mode in effect. */
  frm: number;
  /** Raw 64-bit operands as [lo, hi] int32 pairs, loaded into both f11..f13 and x11..x13. */
  ops: [number, number][];
  /** True when the instruction writes x10 (else f10). */
  intResult: boolean;
  /** False for encodings that must raise illegal instruction (only some random encodings). */
  legal: boolean;
}

/** Encodes an OP-FP instruction. */
export function opFp(
  funct5: number,
  fmt: number,
  rs2: number,
  rs1: number,
  rm: number,
  rd: number,
): number {
  return ((funct5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) |
    0x53) | 0;
}

/** Encodes a fused multiply-add (opcode 0x43 fmadd, 0x47 fmsub, 0x4b fnmsub, 0x4f fnmadd). */
export function fmaOp(
  opcode: number,
  fmt: number,
  rs3: number,
  rs2: number,
  rs1: number,
  rm: number,
  rd: number,
): number {
  return ((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) |
    opcode) | 0;
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const f64 = new Float64Array(1);
const f64w = new Int32Array(f64.buffer);
const f32 = new Float32Array(1);
const f32w = new Int32Array(f32.buffer);

/** Raw bits of a double as [lo, hi]. */
export function dBits(v: number): [number, number] {
  f64[0] = v;
  return [f64w[0], f64w[1]];
}

function dValue(b: [number, number]): number {
  f64w[0] = b[0];
  f64w[1] = b[1];
  return f64[0];
}

function sValue(lo: number): number {
  f32w[0] = lo;
  return f32[0];
}

/** A NaN-boxed single as [lo, hi]. */
export function sBoxed(v: number): [number, number] {
  f32[0] = v;
  return [f32w[0], -1];
}

/** Interesting binary64 operands (raw bits). */
export const SPECIAL_D: [number, number][] = [
  [0, 0], // +0
  [0, 0x80000000 | 0], // -0
  [1, 0], // min subnormal
  [-1, 0x000fffff], // max subnormal
  [0, 0x00100000], // min normal
  [1, 0x00100000], // min normal + ulp
  [-1, 0x7fefffff], // max finite
  [-1, 0xffefffff | 0], // -max finite
  [0, 0x7ff00000], // +inf
  [0, 0xfff00000 | 0], // -inf
  [0, 0x7ff80000], // canonical qNaN
  [5, 0xfff80000 | 0], // negative qNaN with payload
  [1, 0x7ff00000], // sNaN
  [0, 0xfff40000 | 0], // negative sNaN
  dBits(1),
  dBits(-1),
  dBits(1.5),
  dBits(2),
  dBits(3),
  dBits(0.1),
  dBits(-0.7),
  dBits(2.5),
  dBits(-2.5),
  dBits(1 + 2 ** -52),
  dBits(1 - 2 ** -53),
  dBits(2 ** 31),
  dBits(2 ** 31 - 0.5),
  dBits(-(2 ** 31) - 0.5),
  dBits(2 ** 32 - 0.5),
  dBits(2 ** 63),
  dBits(-(2 ** 63)),
  dBits(2 ** 64),
  dBits(2 ** 53 + 2),
  dBits(1 / 3),
  dBits(2 ** 1023),
  dBits(3 * 2 ** -1023),
  dBits(2 ** -1022 * (1 - 2 ** -52)),
];

/** Interesting binary32 operands (NaN-boxed raw bits). */
export const SPECIAL_S: [number, number][] = [
  [0, -1],
  [0x80000000 | 0, -1],
  [1, -1], // min subnormal
  [0x007fffff, -1], // max subnormal
  [0x00800000, -1], // min normal
  [0x00800001, -1],
  [0x7f7fffff, -1], // max finite
  [0xff7fffff | 0, -1],
  [0x7f800000, -1], // +inf
  [0xff800000 | 0, -1], // -inf
  [0x7fc00000, -1], // canonical qNaN
  [0xffc00005 | 0, -1], // negative qNaN with payload
  [0x7f800001, -1], // sNaN
  [0xffa00000 | 0, -1], // negative sNaN
  [0x3f800000, 0], // not NaN-boxed 1.0: reads as canonical NaN
  sBoxed(1),
  sBoxed(-1),
  sBoxed(1.5),
  sBoxed(3),
  sBoxed(0.1),
  sBoxed(-0.7),
  sBoxed(2.5),
  sBoxed(-2.5),
  sBoxed(1 + 2 ** -23),
  sBoxed(1 - 2 ** -24),
  sBoxed(2 ** 31),
  sBoxed(-(2 ** 31)),
  sBoxed(2 ** 32),
  sBoxed(2 ** 63),
  sBoxed(-(2 ** 63)),
  sBoxed(2 ** 64),
  sBoxed(2 ** 24 + 2),
  sBoxed(1 / 3),
  sBoxed(2 ** 127),
  sBoxed(3 * 2 ** -127),
];

/** Interesting 64-bit integers as [lo, hi]. */
export const SPECIAL_INT: [number, number][] = [
  [0, 0],
  [1, 0],
  [-1, -1],
  [0x7fffffff, 0],
  [0x80000000 | 0, -1],
  [0x80000000 | 0, 0],
  [-1, 0],
  [0x01000001, 0], // 2^24 + 1
  [0x01000003, 0],
  [0xffffffff | 0, 0x001fffff], // 2^53 - 1
  [1, 0x00200000], // 2^53 + 1
  [3, 0x00200000],
  [-1, 0x7fffffff], // 2^63 - 1
  [0, 0x80000000 | 0], // -2^63
  [1, 0x80000000 | 0],
  [0x00000400, 0x80000000 | 0],
  [0xfffffbff | 0, 0x7fffffff],
  [0x00000400, 0], // 1024
  [0xfffffc00 | 0, -1],
  [0x12345678, 0x9abcdef0 | 0],
  [0x00000800, 0x00100000],
  [0x00000400, 0x00200000], // tie at 2^53 scale
  [0x00000c00, 0x00200000],
];

/** A random double with a spread of exponents (some near the subnormal and overflow edges). */
function randomD(rnd: () => number): [number, number] {
  const sign = rnd() & 0x80000000;
  const pick = rnd() % 8;
  let exp: number;
  if (pick === 0) exp = rnd() % 60; // subnormal edge
  else if (pick === 1) exp = 2047 - 1 - (rnd() % 60); // overflow edge
  else if (pick === 2) exp = rnd() % 2047;
  else exp = 1023 - 40 + (rnd() % 80);
  let lo = rnd() | 0;
  let hi = rnd() & 0xfffff;
  const shape = rnd() % 6;
  if (shape === 0) lo &= 0xffff0000; // few significant bits: exact and tie results
  if (shape === 1) {
    lo = 0;
    hi &= 0xff000;
  }
  return [lo, (sign | (exp << 20) | hi) | 0];
}

/** A random single (NaN-boxed) with a spread of exponents. */
function randomS(rnd: () => number): [number, number] {
  const sign = rnd() & 0x80000000;
  const pick = rnd() % 8;
  let exp: number;
  if (pick === 0) exp = rnd() % 30;
  else if (pick === 1) exp = 254 - (rnd() % 30);
  else if (pick === 2) exp = rnd() % 255;
  else exp = 127 - 20 + (rnd() % 40);
  let frac = rnd() & 0x7fffff;
  if (rnd() % 4 === 0) frac &= 0x7ff000;
  return [(sign | (exp << 23) | frac) | 0, -1];
}

function randomInt(rnd: () => number): [number, number] {
  const bits = rnd() % 65;
  let lo = rnd() | 0;
  let hi = rnd() | 0;
  if (bits < 32) {
    hi = 0;
    lo = bits === 0 ? 0 : lo >>> (32 - bits);
  } else if (bits < 64) hi = hi >>> (64 - bits);
  if (rnd() % 3 === 0) lo &= 0xfffff000; // trailing zeros make exact and tie cases
  if (rnd() % 2 === 0) { // negate
    lo = -lo | 0;
    hi = (lo === 0 ? -hi : ~hi) | 0;
  }
  return [lo, hi];
}

/**
 * Whether an OP-FP / fused multiply-add encoding (with rd 10, rs1 11) is a legal RV64FD
 * instruction: an independent restatement of the spec's encoding tables.
 */
export function isLegal(insn: number, frm: number): boolean {
  const opcode = insn & 0x7f;
  const fmt = (insn >>> 25) & 3;
  const rm = (insn >>> 12) & 7;
  const rs2 = (insn >>> 20) & 31;
  const funct5 = insn >>> 27;
  const rmOk = rm === 7 ? frm <= 4 : rm <= 4;
  if (fmt > 1) return false;
  if (opcode !== 0x53) return rmOk;
  switch (funct5) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x03:
      return rmOk;
    case 0x0b:
      return rmOk && rs2 === 0;
    case 0x04:
    case 0x14:
      return rm <= 2;
    case 0x05:
      return rm <= 1;
    case 0x08:
      return rmOk && rs2 === (fmt === 0 ? 1 : 0);
    case 0x18:
    case 0x1a:
      return rmOk && rs2 <= 3;
    case 0x1c:
      return rs2 === 0 && rm <= 1;
    case 0x1e:
      return rs2 === 0 && rm === 0;
    default:
      return false;
  }
}

/** Builds the case table (deterministic for a seed); `scale` multiplies the random counts. */
export function fpCases(seed = 1, scale = 1): FpCase[] {
  const rnd = prng(seed);
  const out: FpCase[] = [];
  const Z: [number, number] = [0, 0];
  const add = (insn: number, intResult: boolean, ops: [number, number][], frm = 0, legal = true) =>
    out.push({ insn, frm, ops: [ops[0] ?? Z, ops[1] ?? Z, ops[2] ?? Z], intResult, legal });
  const RMS = [0, 1, 2, 3, 4];
  const nRand = Math.round(150 * scale);
  // random encodings in the FP opcodes, legal or not, with random frm: decoding must agree
  const operands = [...SPECIAL_D, ...SPECIAL_S];
  const pick = () => operands[rnd() % operands.length];
  for (let i = 0; i < nRand * 40; i++) {
    const fmt = rnd() % 4;
    const rm = rnd() % 8;
    const frm = rnd() % 8;
    const rs2 = [0, 1, 2, 3, 4, 5, 12, 12][rnd() % 8];
    const insn = rnd() % 5 === 0
      ? fmaOp([0x43, 0x47, 0x4b, 0x4f][rnd() % 4], fmt, 13, 12, 11, rm, 10)
      : opFp(rnd() % 32, fmt, rs2, 11, rm, 10);
    add(insn, false, [pick(), pick(), pick()], frm, isLegal(insn, frm));
  }
  for (const fmt of [0, 1]) {
    const spec = fmt === 0 ? SPECIAL_S : SPECIAL_D;
    const rand = fmt === 0 ? () => randomS(rnd) : () => randomD(rnd);
    const pairs: [number, number][][] = [];
    for (const a of spec) for (const b of spec) pairs.push([a, b]);
    for (let i = 0; i < nRand * 4; i++) pairs.push([rand(), rand()]);
    // near-cancelling pairs for add/sub
    for (let i = 0; i < nRand; i++) {
      const a = rand();
      const b: [number, number] = [(a[0] ^ (rnd() & 7)) | 0, a[1] ^ 0x80000000 | 0];
      if (fmt === 0) b[1] = -1, b[0] = (a[0] ^ 0x80000000 ^ (rnd() & 7)) | 0;
      pairs.push([a, b]);
    }
    // arithmetic, every static rounding mode, plus dynamic with each frm
    for (const f5 of [0, 1, 2, 3]) {
      for (const p of pairs) {
        for (const rm of RMS) add(opFp(f5, fmt, 12, 11, rm, 10), false, p);
      }
      for (const rm of RMS) add(opFp(f5, fmt, 12, 11, 7, 10), false, [rand(), rand()], rm);
    }
    const singles: [number, number][] = [...spec];
    for (let i = 0; i < nRand * 4; i++) singles.push(rand());
    // sqrt, conversions to integer
    for (const a of singles) {
      for (const rm of RMS) {
        add(opFp(0x0b, fmt, 0, 11, rm, 10), false, [a]);
        for (const k of [0, 1, 2, 3]) add(opFp(0x18, fmt, k, 11, rm, 10), true, [a]);
        if (fmt === 1) add(opFp(0x08, 0, 1, 11, rm, 10), false, [a]); // fcvt.s.d
        else add(opFp(0x08, 1, 0, 11, rm, 10), false, [a]); // fcvt.d.s
      }
      add(opFp(0x1c, fmt, 0, 11, 1, 10), true, [a]); // fclass
      add(opFp(0x1c, fmt, 0, 11, 0, 10), true, [a]); // fmv.x.*
      add(opFp(0x1e, fmt, 0, 11, 0, 10), false, [a]); // fmv.*.x
    }
    // integers to float
    const ints: [number, number][] = [...SPECIAL_INT];
    for (let i = 0; i < nRand * 4; i++) ints.push(randomInt(rnd));
    for (const a of ints) {
      for (const rm of RMS) {
        for (const k of [0, 1, 2, 3]) add(opFp(0x1a, fmt, k, 11, rm, 10), false, [a]);
      }
    }
    // sign injection, min/max, comparisons
    for (const p of pairs.slice(0, spec.length * spec.length + nRand)) {
      for (const f3 of [0, 1, 2]) add(opFp(0x04, fmt, 12, 11, f3, 10), false, p);
      for (const f3 of [0, 1]) add(opFp(0x05, fmt, 12, 11, f3, 10), false, p);
      for (const f3 of [0, 1, 2]) add(opFp(0x14, fmt, 12, 11, f3, 10), true, p);
    }
    // fused multiply-add
    const fmaSpec = spec.filter((_, i) => [0, 1, 2, 4, 6, 8, 9, 10, 12, 15, 16].includes(i));
    const fmaOps = [0x43, 0x47, 0x4b, 0x4f];
    for (const a of fmaSpec) {
      for (const b of fmaSpec) {
        for (const c of fmaSpec) {
          add(fmaOp(fmaOps[rnd() % 4], fmt, 13, 12, 11, rnd() % 5, 10), false, [a, b, c]);
        }
      }
    }
    for (let i = 0; i < nRand * 8; i++) {
      const t = [rand(), rand(), rand()];
      const shape = rnd() % 4;
      if (shape === 0) {
        // addend near -(a*b): heavy cancellation
        const va = fmt === 0 ? sValue(t[0][0]) : dValue(t[0]);
        const vb = fmt === 0 ? sValue(t[1][0]) : dValue(t[1]);
        const c = fmt === 0 ? sBoxed(-(va * vb)) : dBits(-(va * vb));
        c[0] ^= rnd() & 0xf;
        t[2] = c;
      } else if (shape === 1) {
        t[2] = fmt === 0 ? [rnd() & 0x807fffff | 0, -1] : [rnd() | 0, rnd() & 0x800fffff | 0];
      }
      for (const rm of RMS) {
        add(fmaOp(fmaOps[rnd() % 4], fmt, 13, 12, 11, rm, 10), false, t);
      }
    }
    // results aimed at the subnormal and overflow boundaries
    const bias = fmt === 0 ? 127 : 1023;
    const prec = fmt === 0 ? 24 : 53;
    const withExp = (v: [number, number], e: number): [number, number] => {
      const be = Math.max(1, Math.min(2 * bias, e + bias));
      return fmt === 0
        ? [((v[0] & 0x807fffff) | (be << 23)) | 0, -1]
        : [v[0], ((v[1] & 0x800fffff) | (be << 20)) | 0];
    };
    for (let i = 0; i < nRand * 8; i++) {
      const high = rnd() % 4 === 0;
      const target = high ? bias - 1 + (rnd() % 3) : 1 - bias - prec - 1 + (rnd() % (prec + 4));
      const ea = (rnd() % 120) - 60;
      const a = withExp(rand(), ea);
      const b = withExp(rand(), target - ea);
      const bd = withExp(rand(), ea - target);
      const rm = rnd() % 5;
      add(opFp(2, fmt, 12, 11, rm, 10), false, [a, b]); // fmul
      add(opFp(3, fmt, 12, 11, rm, 10), false, [a, bd]); // fdiv
      const va = fmt === 0 ? sValue(a[0]) : dValue(a);
      const vb = fmt === 0 ? sValue(b[0]) : dValue(b);
      let c = withExp(rand(), target + (rnd() % 5) - 2);
      if (rnd() % 2 === 0) {
        c = fmt === 0 ? sBoxed(-(va * vb)) : dBits(-(va * vb));
        c[0] ^= rnd() & 0xf;
      }
      add(fmaOp(fmaOps[rnd() % 4], fmt, 13, 12, 11, rm, 10), false, [a, b, c]);
      const x = withExp(rand(), target + (rnd() % 3));
      const y = withExp(rand(), target + (rnd() % 3));
      add(opFp(rnd() % 2, fmt, 12, 11, rm, 10), false, [x, y]); // fadd/fsub near the edge
      if (fmt === 1) {
        add(opFp(0x08, 0, 1, 11, rm, 10), false, [withExp(rand(), target - 896)]);
      }
    }
  }
  return out;
}
