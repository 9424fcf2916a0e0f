/**
 * RV64M on full registers: multiply, divide and remainder through the i64 wasm helper
 * (wide_arith.ts), with the spec's division-by-zero and signed-overflow results.
 */
import type { WideArith } from "./wide_arith.ts";

/** Executes MUL..REMU (funct3 `f3`) with x registers at int32 indexes rs1i/rs2i. */
export function execMulDiv(
  r: Int32Array,
  wa: WideArith,
  xBase: number,
  scratchAddr: number,
  f3: number,
  rd: number,
  rs1i: number,
  rs2i: number,
): void {
  const dst = rd === 0 ? scratchAddr : (xBase + 2 * rd) << 2;
  const a = rs1i << 2, b = rs2i << 2;
  const blo = r[rs2i], bhi = r[rs2i + 1];
  if (f3 >= 4 && blo === 0 && bhi === 0) {
    // Division by zero: quotient all ones, remainder the dividend.
    if (rd === 0) return;
    const w = xBase + 2 * rd;
    if (f3 <= 5) {
      r[w] = -1;
      r[w + 1] = -1;
    } else {
      const alo = r[rs1i], ahi = r[rs1i + 1];
      r[w] = alo;
      r[w + 1] = ahi;
    }
    return;
  }
  if (
    (f3 === 4 || f3 === 6) && blo === -1 && bhi === -1 && r[rs1i] === 0 &&
    r[rs1i + 1] === (0x80000000 | 0)
  ) {
    // Signed overflow: quotient is the dividend, remainder zero.
    if (rd === 0) return;
    const w = xBase + 2 * rd;
    r[w] = 0;
    r[w + 1] = f3 === 4 ? 0x80000000 | 0 : 0;
    return;
  }
  switch (f3) {
    case 0:
      wa.mul(dst, a, b);
      break;
    case 1:
      wa.mulh(dst, a, b);
      break;
    case 2:
      wa.mulhsu(dst, a, b);
      break;
    case 3:
      wa.mulhu(dst, a, b);
      break;
    case 4:
      wa.div(dst, a, b);
      break;
    case 5:
      wa.divu(dst, a, b);
      break;
    case 6:
      wa.rem(dst, a, b);
      break;
    default:
      wa.remu(dst, a, b);
  }
}
