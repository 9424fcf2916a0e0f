/**
 * IEEE 754 binary32/binary64 arithmetic with all five RISC-V rounding modes and exact
 * exception flags, built on host doubles.
 *
 * Every operation first forms its exact result as an unevaluated sum `(hi + lo) * 2^e2`
 * (TwoSum / Dekker TwoProduct are exact, and the remainders of a correctly rounded quotient or
 * square root give the sign of the error), then `roundPack` rounds that exact value once to the
 * target format. Tininess is detected after rounding, as RISC-V specifies. Inputs are never
 * NaN (callers handle NaNs from the raw bits); an invalid operation returns NaN and raises NV.
 */

/** Target format: binary32. */
export const FMT_S = 0;
/** Target format: binary64. */
export const FMT_D = 1;

/** Rounding modes, as encoded in the rm field and frm. */
export const RNE = 0;
export const RTZ = 1;
export const RDN = 2;
export const RUP = 3;
export const RMM = 4;

/** fflags bits. */
export const NV = 16;
export const DZ = 8;
export const OF = 4;
export const UF = 2;
export const NX = 1;

const PREC = [24, 53];
const EMIN = [-126, -1022];
const EMAX = [127, 1023];
const MAXF = [3.4028234663852886e38, Number.MAX_VALUE];

let flags = 0;

/** Returns the flags raised since the last call and clears them. */
export function takeFlags(): number {
  const f = flags;
  flags = 0;
  return f;
}

const scratch = new Float64Array(1);
const scratchW = new Int32Array(scratch.buffer);

/** POW2[k + 1074] = 2^k for k in [-1074, 1023], built from bits so every entry is exact. */
const POW2 = new Float64Array(2098);
for (let k = -1074; k <= 1023; k++) {
  if (k >= -1022) {
    scratchW[0] = 0;
    scratchW[1] = (k + 1023) << 20;
  } else {
    const bit = k + 1074; // position in the 52-bit fraction
    scratchW[0] = bit < 32 ? 1 << bit : 0;
    scratchW[1] = bit >= 32 ? 1 << (bit - 32) : 0;
  }
  POW2[k + 1074] = scratch[0];
}

/** 2^k for k in [-1074, 1023]. */
function pow2(k: number): number {
  return POW2[k + 1074];
}

/** x * 2^k, exact whenever the result is representable. */
function ldexp(x: number, k: number): number {
  while (k > 1000) {
    x *= POW2[1000 + 1074];
    k -= 1000;
  }
  while (k < -1000) {
    x *= POW2[-1000 + 1074];
    k += 1000;
  }
  return x * POW2[k + 1074];
}

/** floor(log2|x|) for finite nonzero x. */
function ilogb(x: number): number {
  scratch[0] = x;
  const e = (scratchW[1] >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  scratch[0] = x * POW2[64 + 1074];
  return ((scratchW[1] >>> 20) & 0x7ff) - 1023 - 64;
}

/** True for negative numbers and -0. */
export function signBit(x: number): boolean {
  return x < 0 || (x === 0 && 1 / x < 0);
}

// Results of the error-free transformations (module state avoids allocation on the hot path).
let tHi = 0;
let tLo = 0;

/** tHi + tLo = a + b exactly, tHi = fl(a + b). */
function twoSum(a: number, b: number): void {
  const s = a + b;
  const bb = s - a;
  tLo = (a - (s - bb)) + (b - bb);
  tHi = s;
}

const SPLIT = 134217729; // 2^27 + 1, Veltkamp splitting constant

/** tHi + tLo = a * b exactly (Dekker); a, b are well inside the exponent range. */
function twoProd(a: number, b: number): void {
  const p = a * b;
  let c = SPLIT * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLIT * b;
  const bh = c - (c - b);
  const bl = b - bh;
  tLo = al * bl - (((p - ah * bh) - al * bh) - ah * bl);
  tHi = p;
}

/** a + b rounded to odd: if inexact, the neighbour with an odd last bit. */
function addRoundOdd(a: number, b: number): number {
  twoSum(a, b);
  const s = tHi;
  if (tLo === 0) return s;
  scratch[0] = s;
  if ((scratchW[0] & 1) !== 0) return s;
  // step one ulp toward the error: away from zero when error and s agree in sign
  const up = (tLo > 0) === (s > 0);
  const lo = scratchW[0] >>> 0;
  if (up) {
    scratchW[0] = lo + 1;
  } else {
    if (lo === 0) scratchW[1] = scratchW[1] - 1;
    scratchW[0] = lo - 1;
  }
  return scratch[0];
}

let roundInexact = false;

/**
 * Rounds the magnitude (mh + L) * 2^u, mh an integer < 2^53, |L| <= 1, to a multiple of 2^(u+d)
 * in mode rm (for a value of sign neg). Returns the multiple; sets roundInexact.
 */
function roundMag(mh: number, L: number, d: number, neg: boolean, rm: number): number {
  let t: number;
  let cls: number; // 0 exact, 1 below half, 2 half, 3 above half
  if (d <= 0) {
    const sc = pow2(-d);
    const q = mh * sc;
    const g = L * sc;
    if (g === 0) {
      t = q;
      cls = 0;
    } else if (g < 0) {
      // the fraction k + g may not be representable: compare g with its thresholds instead
      const k = Math.ceil(-g);
      t = q - k;
      const half = 0.5 - k;
      cls = g === -k ? 0 : g < half ? 1 : g === half ? 2 : 3;
    } else {
      const k = Math.floor(g);
      t = q + k;
      const f = g - k; // exact: g < 2
      cls = f === 0 ? 0 : f < 0.5 ? 1 : f === 0.5 ? 2 : 3;
    }
  } else if (d > 54) {
    t = 0;
    cls = 1;
  } else {
    const pd = pow2(d);
    t = Math.floor(mh / pd);
    const r = mh - t * pd;
    const h = pd / 2;
    if (r === 0) {
      if (L === 0) cls = 0;
      else if (L > 0) cls = 1;
      else {
        t -= 1;
        cls = 3;
      }
    } else if (r < h) cls = 1;
    else if (r > h) cls = 3;
    else cls = L === 0 ? 2 : L > 0 ? 3 : 1;
  }
  roundInexact = cls !== 0;
  switch (rm) {
    case RNE:
      return cls === 3 || (cls === 2 && t % 2 === 1) ? t + 1 : t;
    case RTZ:
      return t;
    case RDN:
      return neg && cls !== 0 ? t + 1 : t;
    case RUP:
      return !neg && cls !== 0 ? t + 1 : t;
    default:
      return cls >= 2 ? t + 1 : t;
  }
}

/**
 * Rounds the exact value (hi + lo) * 2^e2 to format fmt in mode rm and raises NX/UF/OF.
 * Requires hi finite and nonzero, |lo| <= ulp(hi)/2, and lo zero or not below |hi| * 2^-600.
 */
export function roundPack(hi: number, lo: number, e2: number, fmt: number, rm: number): number {
  const neg = hi < 0;
  if (neg) {
    hi = -hi;
    lo = -lo;
  }
  const k = ilogb(hi);
  const mh = ldexp(hi, 52 - k); // integer in [2^52, 2^53)
  const L = ldexp(lo, 52 - k);
  e2 += k;
  let ex = e2; // exponent of the exact value
  if (mh === 4503599627370496 && L < 0) ex--;
  const p = PREC[fmt];
  const emin = EMIN[fmt];
  let qe = (ex > emin ? ex : emin) - p + 1;
  let r = roundMag(mh, L, qe - e2 + 52, neg, rm);
  const inexact = roundInexact;
  if (r === pow2(p)) {
    r = pow2(p - 1);
    qe++;
  }
  if (qe + p - 1 > EMAX[fmt]) {
    flags |= OF | NX;
    const toInf = rm === RNE || rm === RMM || (rm === RUP && !neg) || (rm === RDN && neg);
    const m = toInf ? Infinity : MAXF[fmt];
    return neg ? -m : m;
  }
  if (inexact) {
    flags |= NX;
    if (ex < emin) {
      // tiny after rounding unless rounding with unbounded exponent reaches 2^emin
      let tiny = true;
      if (ex === emin - 1) {
        const r2 = roundMag(mh, L, emin - p - e2 + 52, neg, rm);
        if (r2 === pow2(p)) tiny = false;
      }
      if (tiny) flags |= UF;
    }
  }
  const v = r * pow2(qe);
  return neg ? -v : v;
}

/** Sum of two zeros or an exact cancellation: the sign IEEE 754 prescribes. */
function zeroSum(a: number, b: number, rm: number): number {
  const na = signBit(a);
  if (a === 0 && b === 0 && na === signBit(b)) return a;
  return rm === RDN ? -0 : 0;
}

// Fast paths: when the host's round-to-nearest result is a normal number well away from
// underflow and overflow, it is the RNE result, an error-free transformation gives the sign
// of (exact - result), and a directed mode moves at most one ulp. RMM ties go the slow way.
const D_LO = 2 ** -960;
const D_HI = 2 ** 995;
const S_LO = 2 ** -125;
const S_HI = 2 ** 126;
const f32 = new Float32Array(1);
const f32w = new Int32Array(f32.buffer);

/** Next representable value of fmt from f, one ulp toward zero (down) or away from it. */
function step(f: number, away: boolean, fmt: number): number {
  if (fmt === FMT_S) {
    f32[0] = f;
    f32w[0] += away ? 1 : -1;
    return f32[0];
  }
  scratch[0] = f;
  const lo = scratchW[0] >>> 0;
  if (away) {
    if (lo === 0xffffffff) scratchW[1]++;
    scratchW[0] = lo + 1;
  } else {
    if (lo === 0) scratchW[1]--;
    scratchW[0] = lo - 1;
  }
  return scratch[0];
}

/** The result in mode rm (not RMM) from the RNE result f and err, of the sign of exact - f. */
function directed(f: number, err: number, fmt: number, rm: number): number {
  if (err === 0) return f;
  flags |= NX;
  if (rm === RNE) return f;
  const towardZero = (err < 0) === (f > 0);
  if (rm === RTZ) return towardZero ? step(f, false, fmt) : f;
  if (rm === RDN) return err < 0 ? step(f, f < 0, fmt) : f;
  return err > 0 ? step(f, f > 0, fmt) : f; // RUP
}

/** a + b rounded to fmt (operands are values of fmt, not NaN). */
export function add(a: number, b: number, fmt: number, rm: number): number {
  if (a === 0 || b === 0) {
    if (a === 0 && b === 0) return zeroSum(a, b, rm);
    return a === 0 ? b : a;
  }
  if (a - a !== 0 || b - b !== 0) {
    if (a === -b) {
      flags |= NV;
      return NaN;
    }
    return a - a !== 0 ? a : b;
  }
  if (rm !== RMM) {
    const r = a + b;
    const m = Math.abs(r);
    if (fmt === FMT_D ? m > D_LO && m < D_HI : m > S_LO && m < S_HI) {
      twoSum(a, b);
      if (fmt === FMT_D) return directed(r, tLo, fmt, rm);
      const f = Math.fround(r);
      return directed(f, f === r ? tLo : r - f, fmt, rm);
    }
  }
  if (Math.abs(a) < Math.abs(b)) {
    const t = a;
    a = b;
    b = t;
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  const as = ldexp(a, -ea);
  const bs = ea - eb > 200 ? (b < 0 ? -pow2(-300) : pow2(-300)) : ldexp(b, -ea);
  twoSum(as, bs);
  if (tHi === 0) return zeroSum(a, b, rm);
  return roundPack(tHi, tLo, ea, fmt, rm);
}

/** a * b rounded to fmt. */
export function mul(a: number, b: number, fmt: number, rm: number): number {
  const neg = signBit(a) !== signBit(b);
  if (a - a !== 0 || b - b !== 0) {
    if (a === 0 || b === 0) {
      flags |= NV;
      return NaN;
    }
    return neg ? -Infinity : Infinity;
  }
  if (a === 0 || b === 0) return neg ? -0 : 0;
  if (rm !== RMM) {
    const r = a * b;
    const m = Math.abs(r);
    if (fmt === FMT_S) {
      if (m > S_LO && m < S_HI) {
        const f = Math.fround(r); // the double product of two singles is exact
        return directed(f, r - f, fmt, rm);
      }
    } else if (
      m > D_LO && m < D_HI && Math.abs(a) < D_HI && Math.abs(b) < D_HI && Math.abs(a) > D_LO &&
      Math.abs(b) > D_LO
    ) {
      twoProd(a, b);
      return directed(r, tLo, fmt, rm);
    }
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  twoProd(Math.abs(ldexp(a, -ea)), Math.abs(ldexp(b, -eb)));
  return roundPack(neg ? -tHi : tHi, neg ? -tLo : tLo, ea + eb, fmt, rm);
}

/** a / b rounded to fmt. */
export function div(a: number, b: number, fmt: number, rm: number): number {
  const neg = signBit(a) !== signBit(b);
  const aInf = a - a !== 0;
  const bInf = b - b !== 0;
  if (aInf || bInf) {
    if (aInf && bInf) {
      flags |= NV;
      return NaN;
    }
    return aInf ? (neg ? -Infinity : Infinity) : neg ? -0 : 0;
  }
  if (b === 0) {
    if (a === 0) {
      flags |= NV;
      return NaN;
    }
    flags |= DZ;
    return neg ? -Infinity : Infinity;
  }
  if (a === 0) return neg ? -0 : 0;
  if (rm !== RMM) {
    const ma = Math.abs(a);
    const mb = Math.abs(b);
    if (ma > 2 ** -480 && ma < 2 ** 480 && mb > 2 ** -480 && mb < 2 ** 480) {
      const r = a / b;
      if (fmt === FMT_D) {
        twoProd(r, b);
        const rem = (a - tHi) - tLo; // exact remainder a - r*b
        return directed(r, b > 0 ? rem : -rem, fmt, rm);
      }
      const f = Math.fround(r);
      const m = Math.abs(f);
      if (m > S_LO && m < S_HI) {
        const rem = a - f * b; // f*b is exact (24 x 24 bits), the difference by Sterbenz
        return directed(f, b > 0 ? rem : -rem, fmt, rm);
      }
    }
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  const ma = Math.abs(ldexp(a, -ea));
  const mb = Math.abs(ldexp(b, -eb));
  const q = ma / mb;
  twoProd(q, mb);
  const rem = (ma - tHi) - tLo; // sign of the exact remainder ma - q*mb
  // The quotient is never a tie at 53 bits, so a small stand-in of the right sign suffices.
  const lo = rem === 0 ? 0 : rem > 0 ? q * pow2(-58) : -q * pow2(-58);
  return roundPack(neg ? -q : q, neg ? -lo : lo, ea - eb, fmt, rm);
}

/** sqrt(a) rounded to fmt. */
export function sqrt(a: number, fmt: number, rm: number): number {
  if (a === 0) return a;
  if (a < 0) {
    flags |= NV;
    return NaN;
  }
  if (a === Infinity) return a;
  if (rm !== RMM && a > 2 ** -960 && a < 2 ** 960) {
    const r = Math.sqrt(a);
    if (fmt === FMT_D) {
      twoProd(r, r);
      return directed(r, (a - tHi) - tLo, fmt, rm);
    }
    const f = Math.fround(r);
    if (f > S_LO && f < S_HI) return directed(f, a - f * f, fmt, rm);
  }
  let ea = ilogb(a);
  let m = ldexp(a, -ea);
  if ((ea & 1) !== 0) {
    m *= 2;
    ea -= 1;
  }
  const s = Math.sqrt(m);
  twoProd(s, s);
  const rem = (m - tHi) - tLo;
  const lo = rem === 0 ? 0 : rem > 0 ? s * pow2(-58) : -s * pow2(-58);
  return roundPack(s, lo, ea / 2, fmt, rm);
}

/**
 * tHi + tLo: the exact sum ph + pl + c renormalised (|tLo| <= ulp(tHi)/2) with the tail folded
 * by round-to-odd, which keeps every rounding decision of the exact sum: tHi is its RNE value,
 * tLo has the sign of (exact - tHi). All error-free steps must be free of under/overflow.
 */
function sum3(ph: number, pl: number, c: number): void {
  twoSum(c, ph);
  const s1 = tHi;
  twoSum(tLo, pl);
  const s2 = tHi;
  const e2 = tLo;
  twoSum(s1, s2);
  const h = tHi;
  const lo = addRoundOdd(tLo, e2);
  twoSum(h, lo);
}

/** a * b + c with a single rounding to fmt (callers negate operands for fmsub/fnm*). */
export function fma(a: number, b: number, c: number, fmt: number, rm: number): number {
  const negP = signBit(a) !== signBit(b);
  const aInf = a - a !== 0;
  const bInf = b - b !== 0;
  const cInf = c - c !== 0;
  if (aInf || bInf) {
    if (a === 0 || b === 0 || (cInf && signBit(c) !== negP)) {
      flags |= NV;
      return NaN;
    }
    return negP ? -Infinity : Infinity;
  }
  if (cInf) return c;
  if (a === 0 || b === 0) {
    if (c === 0) return zeroSum(negP ? -0 : 0, c, rm);
    return c;
  }
  if (c === 0) return mul(a, b, fmt, rm);
  if (rm !== RMM) {
    if (fmt === FMT_S) {
      // the double product of singles is exact; rounding the sum to odd avoids double rounding
      const r = addRoundOdd(a * b, c);
      const f = Math.fround(r);
      const m = Math.abs(f);
      if (m > S_LO && m < S_HI) return directed(f, r - f, fmt, rm);
    } else {
      const ma = Math.abs(a);
      const mb = Math.abs(b);
      const mc = Math.abs(c);
      if (
        ma > 2 ** -400 && ma < 2 ** 400 && mb > 2 ** -400 && mb < 2 ** 400 && mc > 2 ** -400 &&
        mc < 2 ** 400
      ) {
        twoProd(a, b);
        sum3(tHi, tLo, c);
        if (tHi !== 0) {
          const m = Math.abs(tHi);
          if (m > D_LO && m < D_HI) return directed(tHi, tLo, fmt, rm);
        }
      }
    }
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  const ec = ilogb(c);
  twoProd(Math.abs(ldexp(a, -ea)), Math.abs(ldexp(b, -eb)));
  let ph = negP ? -tHi : tHi;
  let pl = negP ? -tLo : tLo;
  const eab = ea + eb;
  let cs = ldexp(c, -ec);
  let scale: number;
  if (eab - ec > 200) {
    scale = eab;
    cs = c < 0 ? -pow2(-300) : pow2(-300); // far below every rounding point: a sticky bit
  } else if (ec - eab > 200) {
    scale = ec;
    ph = negP ? -pow2(-300) : pow2(-300);
    pl = 0;
  } else if (eab >= ec) {
    scale = eab;
    cs = ldexp(cs, ec - eab);
  } else {
    scale = ec;
    ph = ldexp(ph, eab - ec);
    pl = ldexp(pl, eab - ec);
  }
  sum3(ph, pl, cs);
  if (tHi === 0) return zeroSum(ph, cs, rm);
  return roundPack(tHi, tLo, scale, fmt, rm);
}

/** A value of another format (or an integer) rounded to fmt. */
export function convert(a: number, fmt: number, rm: number): number {
  if (a === 0 || a - a !== 0) return a;
  const ea = ilogb(a);
  return roundPack(ldexp(a, -ea), 0, ea, fmt, rm);
}

/** The 64-bit integer hi:lo (signed or unsigned) rounded to fmt. */
export function fromInt64(
  lo: number,
  hi: number,
  unsigned: boolean,
  fmt: number,
  rm: number,
): number {
  const h = (unsigned ? hi >>> 0 : hi | 0) * 4294967296;
  const l = lo >>> 0;
  if (h === 0 && l === 0) return 0;
  twoSum(h, l);
  return roundPack(tHi, tLo, 0, fmt, rm);
}

/** Integer conversion kinds (the rs2 field of fcvt.int.fmt). */
export const CVT_W = 0;
export const CVT_WU = 1;
export const CVT_L = 2;
export const CVT_LU = 3;

const INT_MIN = [-2147483648, 0, -9223372036854775808, 0];
const INT_MAX = [2147483647, 4294967295, 2 ** 63, 2 ** 64];

/** Low and high words of the last `toInt` result. */
export let intLo = 0;
export let intHi = 0;

function setInt(v: number, kind: number): void {
  if (kind <= CVT_WU) {
    intLo = v | 0; // wu results are sign-extended from bit 31 as well
    intHi = intLo >> 31;
    return;
  }
  const a = Math.abs(v);
  const h = Math.floor(a / 4294967296);
  const l = a - h * 4294967296;
  if (v >= 0) {
    intLo = l | 0;
    intHi = h | 0;
  } else {
    intLo = (-l) | 0;
    intHi = (l === 0 ? -h : ~h) | 0;
  }
}

/**
 * Converts a (any double, NaN allowed) to the integer kind with rounding mode rm, saturating
 * as the RISC-V table says; the 64-bit result (sign-extended for .w/.wu) is in intLo/intHi.
 */
export function toInt(a: number, kind: number, rm: number): void {
  let r = a !== a ? Infinity : a; // NaN saturates like +inf
  let inexact = false;
  if (a - a === 0 && Math.abs(a) < 4503599627370496) {
    const t = Math.trunc(a);
    const f = Math.abs(a - t);
    if (f !== 0) {
      inexact = true;
      const away = a < 0 ? t - 1 : t + 1;
      switch (rm) {
        case RNE:
          r = f > 0.5 || (f === 0.5 && t % 2 !== 0) ? away : t;
          break;
        case RTZ:
          r = t;
          break;
        case RDN:
          r = a < 0 ? away : t;
          break;
        case RUP:
          r = a > 0 ? away : t;
          break;
        default:
          r = f >= 0.5 ? away : t;
      }
    }
  }
  const min = INT_MIN[kind];
  const max = INT_MAX[kind];
  // for .l/.lu the bound is 2^63 / 2^64 itself, which is out of range
  const tooBig = kind >= CVT_L ? r >= max : r > max;
  if (r < min || tooBig) {
    flags |= NV;
    if (kind === CVT_L && tooBig) {
      intLo = -1;
      intHi = 0x7fffffff;
    } else if (kind === CVT_LU && tooBig) {
      intLo = -1;
      intHi = -1;
    } else setInt(r < min ? min : max, kind);
    return;
  }
  if (inexact) flags |= NX;
  setInt(r, kind);
}
