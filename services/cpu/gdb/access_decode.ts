/**
 * Which memory an instruction is about to touch: the effective address, size and direction of
 * RV64 loads, stores, FP loads/stores, AMOs and their compressed forms, decoded from the
 * instruction and the registers. The GDB stub checks this before each instruction while
 * watchpoints are set, so a watchpoint fires on the access itself (also a store of an equal
 * value, or a read), not on a later value comparison.
 */

/** One data access of an instruction. */
export interface DataAccess {
  /** Effective virtual address (unsigned 64-bit). */
  va: bigint;
  size: number;
  read: boolean;
  write: boolean;
}

/**
 * The data access of `insn` (its low 16 bits for a compressed instruction), or null when it
 * makes none. `reg(i)` gives integer register i.
 *
 * @example
 * ```ts
 * // sd a1, 8(sp) with sp = 0x80001000
 * decodeAccess(0x00b13423, (i) => (i === 2 ? 0x8000_1000n : 0n));
 * // { va: 0x80001008n, size: 8, read: false, write: true }
 * ```
 */
export function decodeAccess(insn: number, reg: (i: number) => bigint): DataAccess | null {
  const at = (base: number, off: number | bigint) => BigInt.asUintN(64, reg(base) + BigInt(off));
  if ((insn & 3) === 3) {
    const op = insn & 0x7f, f3 = (insn >>> 12) & 7, rs1 = (insn >>> 15) & 31;
    if (op === 0x03 || op === 0x07) {
      if (op === 0x07 && f3 !== 2 && f3 !== 3) return null; // vector or reserved
      return { va: at(rs1, insn >> 20), size: 1 << (f3 & 3), read: true, write: false };
    }
    if (op === 0x23 || op === 0x27) {
      if (op === 0x27 && f3 !== 2 && f3 !== 3) return null;
      const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 31);
      return { va: at(rs1, imm), size: 1 << (f3 & 3), read: false, write: true };
    }
    if (op === 0x2f && (f3 === 2 || f3 === 3)) {
      const f5 = insn >>> 27;
      return { va: at(rs1, 0), size: f3 === 2 ? 4 : 8, read: f5 !== 3, write: f5 !== 2 };
    }
    return null;
  }
  const q = insn & 3, f3 = (insn >>> 13) & 7;
  const bit = (i: number) => (insn >>> i) & 1;
  const bits = (hi: number, lo: number) => (insn >>> lo) & ((1 << (hi - lo + 1)) - 1);
  if (q === 0) {
    const rs1 = bits(9, 7) + 8;
    // c.lw/c.sw: uimm[5:3|2|6]; c.ld/c.sd/c.fld/c.fsd: uimm[5:3|7:6].
    const w = (bits(12, 10) << 3) | (bit(6) << 2) | (bit(5) << 6);
    const d = (bits(12, 10) << 3) | (bits(6, 5) << 6);
    switch (f3) {
      case 1:
      case 3:
        return { va: at(rs1, d), size: 8, read: true, write: false };
      case 2:
        return { va: at(rs1, w), size: 4, read: true, write: false };
      case 5:
      case 7:
        return { va: at(rs1, d), size: 8, read: false, write: true };
      case 6:
        return { va: at(rs1, w), size: 4, read: false, write: true };
    }
    return null;
  }
  if (q === 2) {
    const rd = bits(11, 7);
    switch (f3) {
      case 1: // c.fldsp
      case 3: // c.ldsp
        if (f3 === 3 && rd === 0) return null;
        return {
          va: at(2, (bit(12) << 5) | (bits(6, 5) << 3) | (bits(4, 2) << 6)),
          size: 8,
          read: true,
          write: false,
        };
      case 2: // c.lwsp
        if (rd === 0) return null;
        return {
          va: at(2, (bit(12) << 5) | (bits(6, 4) << 2) | (bits(3, 2) << 6)),
          size: 4,
          read: true,
          write: false,
        };
      case 5: // c.fsdsp
      case 7: // c.sdsp
        return {
          va: at(2, (bits(12, 10) << 3) | (bits(9, 7) << 6)),
          size: 8,
          read: false,
          write: true,
        };
      case 6: // c.swsp
        return {
          va: at(2, (bits(12, 9) << 2) | (bits(8, 7) << 6)),
          size: 4,
          read: false,
          write: true,
        };
    }
  }
  return null;
}
