/**
 * The F and D opcodes as the interpreter dispatches them: FLW/FLD/FSW/FSD (with the TLB fast
 * path, NaN-boxing singles on load) and everything else through `fpExecute` (fpu.ts). All of
 * them are illegal while mstatus.FS is Off; any of them marks FS dirty.
 */
import { Mstatus } from "./csr_numbers.ts";
import { fpExecute } from "./fpu.ts";
import { TLB_INDEX_MASK } from "./mmu.ts";
import { i64Of } from "./state.ts";
import type { HartTraps } from "./trap.ts";

/** Executes an FP instruction (LOAD-FP, STORE-FP, OP-FP, FMADD..); false on trap. */
export function execFp(
  h: HartTraps,
  insn: number,
  raw: number,
  ilen: number,
  rd: number,
  rs1i: number,
): boolean {
  if ((h.mstatus & Mstatus.FS) === 0) return h.illegal(raw, ilen);
  const op = insn & 0x7f;
  const f3 = (insn >>> 12) & 7;
  const r = h.i32;
  if (op === 0x07 || op === 0x27) {
    if (f3 !== 2 && f3 !== 3) return h.illegal(raw, ilen);
    const size = f3 === 2 ? 4 : 8;
    const imm = op === 0x07 ? insn >> 20 : ((insn >> 25) << 5) | ((insn >>> 7) & 31);
    const blo = r[rs1i];
    const alo = (blo + imm) | 0;
    const ahi = (r[rs1i + 1] + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
    const a = i64Of(alo, ahi);
    // TLB fast path for aligned accesses.
    const tlb = h.tlb;
    const ti = (op === 0x07 ? h.loadSet : h.storeSet) + ((alo >>> 10) & TLB_INDEX_MASK);
    const hw = tlb[ti] === (alo & ~0xfff) && tlb[ti + 1] === ahi && (alo & (size - 1)) === 0
      ? (tlb[ti + 2] + (alo & 0xfff)) >> 2
      : -1;
    if (op === 0x07) {
      let lo: number, hi: number;
      if (hw >= 0 && size === 8 && h.sharedAtomics) {
        // Harts on other threads: one 8-byte access (a Float64Array bit copy), never torn.
        const f64 = h.mem.f64;
        f64[(h.fBase + 2 * rd) >> 1] = f64[hw >> 1];
        h.mstatus |= Mstatus.FS;
        h.pcv += ilen;
        return true;
      }
      if (hw >= 0) {
        lo = r[hw];
        hi = size === 4 ? -1 : r[hw + 1];
      } else {
        if (h.loadSlow(a, size) === 2) return h.trapExc();
        lo = h.tmpLo;
        hi = size === 4 ? -1 : h.tmpHi;
      }
      const w = h.fBase + 2 * rd;
      r[w] = lo;
      r[w + 1] = hi;
      h.mstatus |= Mstatus.FS;
    } else {
      const fs = h.fBase + 2 * ((insn >>> 20) & 31);
      if (hw >= 0 && size === 8 && h.sharedAtomics) h.mem.f64[hw >> 1] = h.mem.f64[fs >> 1];
      else if (hw >= 0) {
        r[hw] = r[fs];
        if (size === 8) r[hw + 1] = r[fs + 1];
      } else if (h.storeSlow(a, size, r[fs], r[fs + 1]) === 2) return h.trapExc();
    }
    h.pcv += ilen;
    return true;
  }
  let ok: boolean;
  try {
    ok = fpExecute(h, insn);
  } catch {
    ok = false; // a guest must never be able to throw out of run()
  }
  if (!ok) return h.illegal(raw, ilen);
  // Keep x0 zero after an FP op that wrote an integer register.
  r[h.xBase] = 0;
  r[h.xBase + 1] = 0;
  h.mstatus |= Mstatus.FS;
  h.pcv += ilen;
  return true;
}
