/**
 * The A extension: LR/SC (one reservation, by physical address) and the AMOs, on DRAM
 * (atomically with respect to this hart) and on MMIO (as a read then a write). Misaligned
 * addresses raise address-misaligned, as the spec requires for LR/SC/AMOs.
 */
import { Cause } from "./csr_numbers.ts";
import { guestPhysical } from "../guest_memory.ts";
import { TriggerAccess } from "./sdtrig.ts";
import type { HartTraps } from "./trap.ts";

const TWO32 = 4294967296;
const M32 = 0xffff_ffffn;

/** The 64-bit value of the word pair lo/hi (for a compare-exchange on a BigInt64Array). */
const big = (lo: number, hi: number): bigint => (BigInt(hi) << 32n) | (BigInt(lo) & M32);

/** Executes AMO-opcode instruction `insn`; false on trap. */
export function execAmo(
  h: HartTraps,
  insn: number,
  rd: number,
  rs1i: number,
  rs2i: number,
): boolean {
  const f3 = (insn >>> 12) & 7;
  if (f3 !== 2 && f3 !== 3) return h.illegal(insn, 4);
  const size = f3 === 2 ? 4 : 8;
  const f5 = insn >>> 27;
  const r = h.i32;
  const alo = r[rs1i];
  const a = r[rs1i + 1] * TWO32 + (alo >>> 0);
  const slo = r[rs2i], shi = r[rs2i + 1];
  // Valid funct5: AMOADD 0, SWAP 1, LR 2 (rs2 = 0), SC 3, XOR 4, OR 8, AND 12, MIN/MAX 16..28.
  if (((0x1111111f >>> f5) & 1) === 0 || (f5 === 2 && ((insn >>> 20) & 31) !== 0)) {
    return h.illegal(insn, 4);
  }
  // Sdtrig: an address breakpoint ranks above misaligned and page faults (an SC only
  // accesses memory when it succeeds: checked below).
  const trigger = f5 === 2 ? TriggerAccess.Load : TriggerAccess.LoadStore;
  if (!h.tlbFillAllowed && f5 !== 3 && h.watch(a, size, trigger)) return h.trapExc();
  if (alo & (size - 1)) {
    return h.trapNow(f5 === 2 ? Cause.LOAD_MISALIGNED : Cause.STORE_MISALIGNED, a);
  }
  const hst = h.dataHost(a, f5 === 2 ? 0 : 1, size);
  if (hst === -2) return h.trapExc();
  const pa = hst >= 0 ? guestPhysical(hst) : h.mmioPa;
  if (h.sharedAtomics && hst >= 0) return amoShared(h, f5, size, hst, pa, a, rd, slo, shi);
  // Read the old value.
  let olo = 0, ohi = 0;
  if (f5 !== 3) {
    if (hst >= 0) {
      olo = r[hst >> 2];
      ohi = size === 8 ? r[(hst >> 2) + 1] : olo >> 31;
    } else {
      const l = h.bus.load(pa, 4);
      const hh = size === 8 && l >= 0 ? h.bus.load(pa + 4, 4) : 0;
      if (l < 0 || hh < 0) {
        return h.trapNow(f5 === 2 ? Cause.LOAD_ACCESS : Cause.STORE_ACCESS, a);
      }
      olo = l | 0;
      ohi = size === 8 ? hh | 0 : olo >> 31;
    }
  }
  let nlo = 0, nhi = 0, write = true;
  switch (f5) {
    case 2: // LR
      h.resValid = true;
      h.resAddr = pa;
      write = false;
      break;
    case 3: // SC
      if (h.resValid && h.resAddr === pa) {
        if (!h.tlbFillAllowed && h.watch(a, size, TriggerAccess.Store)) return h.trapExc();
        nlo = slo;
        nhi = shi;
        olo = 0;
      } else {
        write = false;
        olo = 1;
      }
      ohi = 0;
      h.resValid = false;
      break;
    default:
      combine(f5, size, olo, ohi, slo, shi);
      nlo = outLo;
      nhi = outHi;
  }
  if (write) {
    if (hst >= 0) {
      r[hst >> 2] = nlo;
      if (size === 8) r[(hst >> 2) + 1] = nhi;
    } else {
      const ok = h.bus.store(pa, 4, nlo) && (size === 4 || h.bus.store(pa + 4, 4, nhi));
      if (!ok) return h.trapNow(Cause.STORE_ACCESS, a);
    }
  }
  if (rd !== 0) {
    const w = h.xBase + 2 * rd;
    r[w] = olo;
    r[w + 1] = size === 4 ? olo >> 31 : ohi;
  }
  h.pcv += 4;
  return true;
}

/** The value an AMO stores (`outLo`/`outHi`) given the old value o and the source s. */
let outLo = 0, outHi = 0;
function combine(f5: number, size: number, olo: number, ohi: number, slo: number, shi: number) {
  let nlo: number, nhi: number;
  switch (f5) {
    case 1:
      nlo = slo;
      nhi = shi;
      break;
    case 0: {
      const s = (olo >>> 0) + (slo >>> 0);
      nlo = s | 0;
      nhi = (ohi + shi + (s > 4294967295 ? 1 : 0)) | 0;
      break;
    }
    case 4:
      nlo = olo ^ slo;
      nhi = ohi ^ shi;
      break;
    case 8:
      nlo = olo | slo;
      nhi = ohi | shi;
      break;
    case 0xc:
      nlo = olo & slo;
      nhi = ohi & shi;
      break;
    default: {
      // MIN/MAX/MINU/MAXU: compare old (o) with source (s).
      const signed = f5 === 0x10 || f5 === 0x14;
      let less: boolean;
      if (size === 4) {
        less = signed ? olo < slo : (olo >>> 0) < (slo >>> 0);
      } else if (ohi !== shi) {
        less = signed ? ohi < shi : (ohi >>> 0) < (shi >>> 0);
      } else less = (olo >>> 0) < (slo >>> 0);
      const pickOld = (f5 === 0x10 || f5 === 0x18) ? less : !less;
      nlo = pickOld ? olo : slo;
      nhi = pickOld ? ohi : shi;
    }
  }
  outLo = nlo;
  outHi = nhi;
}

/**
 * An LR/SC or AMO on DRAM when other threads run harts on the same memory: every access is an
 * Atomics operation (a compare-exchange loop), so no update is lost between harts and 64-bit
 * values never tear. An SC succeeds when the granule still holds the value LR read (a
 * compare-exchange, as QEMU's MTTCG does); another hart's store of a different value fails it.
 */
function amoShared(
  h: HartTraps,
  f5: number,
  size: number,
  hst: number,
  pa: number,
  a: number,
  rd: number,
  slo: number,
  shi: number,
): boolean {
  const r = h.i32, w = hst >> 2;
  const b64 = size === 8 ? h.big64() : undefined, d = hst >> 3;
  let olo = 0, ohi = 0;
  if (f5 === 3) { // SC
    let ok = false;
    if (h.resValid && h.resAddr === pa) {
      if (!h.tlbFillAllowed && h.watch(a, size, TriggerAccess.Store)) return h.trapExc();
      ok = b64
        ? Atomics.compareExchange(b64, d, big(h.resLo, h.resHi), big(slo, shi)) ===
          big(h.resLo, h.resHi)
        : Atomics.compareExchange(r, w, h.resLo, slo) === h.resLo;
    }
    h.resValid = false;
    olo = ok ? 0 : 1;
  } else {
    // Read the old value in one access; for an AMO, swap in the new one unless another hart
    // changed it meanwhile (then retry with what it holds now).
    if (b64) {
      const v = Atomics.load(b64, d);
      olo = Number(v & M32) | 0;
      ohi = Number(v >> 32n) | 0;
    } else {
      olo = Atomics.load(r, w);
      ohi = olo >> 31;
    }
    if (f5 === 2) { // LR
      h.resValid = true;
      h.resAddr = pa;
      h.resLo = olo;
      h.resHi = ohi;
    } else {
      while (true) {
        combine(f5, size, olo, ohi, slo, shi);
        if (b64) {
          const expect = big(olo, ohi);
          const was = Atomics.compareExchange(b64, d, expect, big(outLo, outHi));
          if (was === expect) break;
          olo = Number(was & M32) | 0;
          ohi = Number(was >> 32n) | 0;
        } else {
          const was = Atomics.compareExchange(r, w, olo, outLo);
          if (was === olo) break;
          olo = was;
          ohi = was >> 31;
        }
      }
    }
  }
  if (rd !== 0) {
    const x = h.xBase + 2 * rd;
    r[x] = olo;
    r[x + 1] = size === 4 ? olo >> 31 : f5 === 3 ? 0 : ohi;
  }
  h.pcv += 4;
  return true;
}
