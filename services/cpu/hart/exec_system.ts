/**
 * The SYSTEM opcode: ECALL/EBREAK, MRET/SRET, WFI, SFENCE.VMA and the Zicsr instructions
 * (privilege and read-only checks by CSR number, then the CSR file's own rules).
 */
import { Cause, Mstatus } from "./csr_numbers.ts";
import { SEIP, W_MEPC, W_MIE, W_SEPC } from "./csr.ts";
import { i64Of } from "./state.ts";
import type { HartTraps } from "./trap.ts";

const MIP = 0x344;

/** Executes SYSTEM instruction `insn` (raw parcel `raw`, length `ilen`); false on trap. */
export function execSystem(h: HartTraps, insn: number, raw: number, ilen: number): boolean {
  const f3 = (insn >>> 12) & 7;
  const priv = h.privv;
  if (f3 === 0) {
    switch (insn) {
      case 0x00000073: // ECALL
        return h.trapNow(
          priv === 0 ? Cause.ECALL_U : priv === 1 ? Cause.ECALL_S : Cause.ECALL_M,
          0,
        );
      case 0x00100073: // EBREAK
        return h.trapNow(Cause.BREAKPOINT, h.pcv);
      case 0x30200073: { // MRET
        if (priv !== 3) return h.illegal(raw, ilen);
        const ms = h.mstatus;
        const mpp = (ms >> 11) & 3;
        let v = (ms & ~(Mstatus.MIE | Mstatus.MPP)) | Mstatus.MPIE;
        if (ms & Mstatus.MPIE) v |= Mstatus.MIE;
        if (mpp !== 3) v &= ~Mstatus.MPRV;
        h.mstatus = v;
        h.privv = mpp;
        h.pcv = i64Of(h.st[W_MEPC], h.st[W_MEPC + 1]);
        h.resValid = false;
        h.updateMmuMode();
        return true;
      }
      case 0x10200073: { // SRET
        if (priv === 0 || (priv === 1 && (h.mstatus & Mstatus.TSR))) {
          return h.illegal(raw, ilen);
        }
        const ms = h.mstatus;
        const spp = (ms >> 8) & 1;
        let v = (ms & ~(Mstatus.SIE | Mstatus.SPP | Mstatus.MPRV)) | Mstatus.SPIE;
        if (ms & Mstatus.SPIE) v |= Mstatus.SIE;
        h.mstatus = v;
        h.privv = spp;
        h.pcv = i64Of(h.st[W_SEPC], h.st[W_SEPC + 1]);
        h.resValid = false;
        h.updateMmuMode();
        return true;
      }
      case 0x10500073: // WFI
        if (priv === 0 || (priv === 1 && (h.mstatus & Mstatus.TW))) {
          return h.illegal(raw, ilen);
        }
        h.pcv += ilen;
        if ((h.readMip() & h.st[W_MIE]) === 0) h.idle = true;
        return true;
      default:
        if ((insn & 0xfe007fff) === 0x12000073) { // SFENCE.VMA
          if (priv === 0 || (priv === 1 && (h.mstatus & Mstatus.TVM))) {
            return h.illegal(raw, ilen);
          }
          const rs1 = (insn >>> 15) & 31;
          const b = h.xBase + 2 * rs1;
          const va = i64Of(h.i32[b], h.i32[b + 1]);
          if (rs1 === 0 || h.inSuperpage(va)) h.flushTlb();
          else h.flushTlbPage(va);
          h.pcv += ilen;
          return true;
        }
        return h.illegal(raw, ilen);
    }
  }
  if (f3 === 4) return h.illegal(raw, ilen);
  // Zicsr.
  const n = insn >>> 20;
  const rs1 = (insn >>> 15) & 31;
  const rd = (insn >>> 7) & 31;
  const r = h.i32;
  let slo: number, shi: number;
  if (f3 >= 5) {
    slo = rs1;
    shi = 0;
  } else {
    slo = r[h.xBase + 2 * rs1];
    shi = r[h.xBase + 2 * rs1 + 1];
  }
  const op = f3 & 3;
  const writes = op === 1 || rs1 !== 0;
  if (((n >>> 8) & 3) > priv) return h.illegal(raw, ilen);
  if (writes && (n >>> 10) === 3) return h.illegal(raw, ilen);
  if (!h.csrAllowed(n)) return h.illegal(raw, ilen);
  if (!h.csrRead(n)) return h.illegal(raw, ilen);
  const rlo = h.tmpLo, rhi = h.tmpHi;
  let olo = rlo;
  const ohi = rhi;
  if (writes) {
    if (n === MIP && op !== 1) olo = (olo & ~SEIP) | (h.mipSw & SEIP);
    let nlo: number, nhi: number;
    if (op === 1) {
      nlo = slo;
      nhi = shi;
    } else if (op === 2) {
      nlo = olo | slo;
      nhi = ohi | shi;
    } else {
      nlo = olo & ~slo;
      nhi = ohi & ~shi;
    }
    h.csrWrite(n, nlo, nhi);
  }
  if (rd !== 0) {
    r[h.xBase + 2 * rd] = rlo;
    r[h.xBase + 2 * rd + 1] = rhi;
  }
  h.pcv += ilen;
  return true;
}
