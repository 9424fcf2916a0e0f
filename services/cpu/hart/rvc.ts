/**
 * RV64C: expansion of 16-bit compressed instructions into their 32-bit equivalents.
 *
 * The interpreter looks compressed parcels up in a 64 Ki-entry table built once, so a
 * compressed instruction costs one array load before the normal 32-bit dispatch. Reserved
 * and illegal encodings expand to 0 (never a valid 32-bit instruction).
 */

function itype(op: number, rd: number, f3: number, rs1: number, imm: number): number {
  return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

function stype(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    ((imm & 31) << 7) | op;
}

function btype(f3: number, rs1: number, rs2: number, imm: number): number {
  return (((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
    (f3 << 12) | (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63;
}

function jtype(rd: number, imm: number): number {
  return (((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) |
    (((imm >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}

function rtype(op: number, rd: number, f3: number, rs1: number, rs2: number, f7: number): number {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

function bit(c: number, i: number): number {
  return (c >> i) & 1;
}

function bits(c: number, hi: number, lo: number): number {
  return (c >> lo) & ((1 << (hi - lo + 1)) - 1);
}

function sext(v: number, width: number): number {
  const s = 32 - width;
  return (v << s) >> s;
}

const OP_LOAD = 0x03, OP_LOAD_FP = 0x07, OP_IMM = 0x13, OP_IMM32 = 0x1b, OP_STORE = 0x23;
const OP_STORE_FP = 0x27, OP = 0x33, OP_LUI = 0x37, OP_32 = 0x3b, OP_JALR = 0x67;
const EBREAK = 0x00100073;

/** Expands one 16-bit parcel (low two bits != 3); returns 0 for illegal/reserved encodings. */
export function expandCompressed(c: number): number {
  const quadrant = c & 3;
  const f3 = bits(c, 15, 13);
  const rdp = bits(c, 4, 2) + 8; // rd' / rs2'
  const rs1p = bits(c, 9, 7) + 8;
  const rd = bits(c, 11, 7);
  const rs2 = bits(c, 6, 2);
  const imm6 = sext((bit(c, 12) << 5) | bits(c, 6, 2), 6);
  if (quadrant === 0) {
    const uimmD = (bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6);
    const uimmW = (bits(c, 12, 10) << 3) | (bit(c, 6) << 2) | (bit(c, 5) << 6);
    switch (f3) {
      case 0: {
        const nz = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) | (bit(c, 6) << 2) |
          (bit(c, 5) << 3);
        return nz === 0 ? 0 : itype(OP_IMM, rdp, 0, 2, nz);
      }
      case 1:
        return itype(OP_LOAD_FP, rdp, 3, rs1p, uimmD);
      case 2:
        return itype(OP_LOAD, rdp, 2, rs1p, uimmW);
      case 3:
        return itype(OP_LOAD, rdp, 3, rs1p, uimmD);
      case 5:
        return stype(OP_STORE_FP, 3, rs1p, rdp, uimmD);
      case 6:
        return stype(OP_STORE, 2, rs1p, rdp, uimmW);
      case 7:
        return stype(OP_STORE, 3, rs1p, rdp, uimmD);
      default:
        return 0;
    }
  }
  if (quadrant === 1) {
    switch (f3) {
      case 0:
        return itype(OP_IMM, rd, 0, rd, imm6);
      case 1:
        return rd === 0 ? 0 : itype(OP_IMM32, rd, 0, rd, imm6);
      case 2:
        return itype(OP_IMM, rd, 0, 0, imm6);
      case 3: {
        if (rd === 2) {
          const nz = sext(
            (bit(c, 12) << 9) | (bit(c, 6) << 4) | (bit(c, 5) << 6) | (bits(c, 4, 3) << 7) |
              (bit(c, 2) << 5),
            10,
          );
          return nz === 0 ? 0 : itype(OP_IMM, 2, 0, 2, nz);
        }
        if (imm6 === 0) return 0;
        return ((imm6 & 0xfffff) << 12) | (rd << 7) | OP_LUI;
      }
      case 4: {
        const f2 = bits(c, 11, 10);
        const shamt = (bit(c, 12) << 5) | bits(c, 6, 2);
        if (f2 === 0) return itype(OP_IMM, rs1p, 5, rs1p, shamt);
        if (f2 === 1) return itype(OP_IMM, rs1p, 5, rs1p, 0x400 | shamt);
        if (f2 === 2) return itype(OP_IMM, rs1p, 7, rs1p, imm6);
        const sel = bits(c, 6, 5);
        if (bit(c, 12) === 0) {
          const f3s = [0, 4, 6, 7][sel];
          return rtype(OP, rs1p, f3s, rs1p, rdp, sel === 0 ? 0x20 : 0);
        }
        if (sel === 0) return rtype(OP_32, rs1p, 0, rs1p, rdp, 0x20);
        if (sel === 1) return rtype(OP_32, rs1p, 0, rs1p, rdp, 0);
        return 0;
      }
      case 5: {
        const off = sext(
          (bit(c, 12) << 11) | (bit(c, 11) << 4) | (bits(c, 10, 9) << 8) | (bit(c, 8) << 10) |
            (bit(c, 7) << 6) | (bit(c, 6) << 7) | (bits(c, 5, 3) << 1) | (bit(c, 2) << 5),
          12,
        );
        return jtype(0, off);
      }
      default: {
        const off = sext(
          (bit(c, 12) << 8) | (bits(c, 11, 10) << 3) | (bits(c, 6, 5) << 6) |
            (bits(c, 4, 3) << 1) | (bit(c, 2) << 5),
          9,
        );
        return btype(f3 === 6 ? 0 : 1, rs1p, 0, off);
      }
    }
  }
  if (quadrant === 2) {
    const uimmDsp = (bit(c, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6);
    const uimmWsp = (bit(c, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6);
    const sdsp = (bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6);
    const swsp = (bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6);
    switch (f3) {
      case 0:
        return itype(OP_IMM, rd, 1, rd, (bit(c, 12) << 5) | rs2);
      case 1:
        return itype(OP_LOAD_FP, rd, 3, 2, uimmDsp);
      case 2:
        return rd === 0 ? 0 : itype(OP_LOAD, rd, 2, 2, uimmWsp);
      case 3:
        return rd === 0 ? 0 : itype(OP_LOAD, rd, 3, 2, uimmDsp);
      case 4:
        if (bit(c, 12) === 0) {
          if (rs2 === 0) return rd === 0 ? 0 : itype(OP_JALR, 0, 0, rd, 0);
          return rtype(OP, rd, 0, 0, rs2, 0);
        }
        if (rs2 === 0) return rd === 0 ? EBREAK : itype(OP_JALR, 1, 0, rd, 0);
        return rtype(OP, rd, 0, rd, rs2, 0);
      case 5:
        return stype(OP_STORE_FP, 3, 2, rs2, sdsp);
      case 6:
        return stype(OP_STORE, 2, 2, rs2, swsp);
      default:
        return stype(OP_STORE, 3, 2, rs2, sdsp);
    }
  }
  return 0;
}

let table: Int32Array | undefined;

/** The expansion of every 16-bit parcel, indexed by the parcel (0 = illegal). */
export function compressedTable(): Int32Array {
  if (table) return table;
  table = new Int32Array(65536);
  for (let c = 0; c < 65536; c++) table[c] = (c & 3) === 3 ? 0 : expandCompressed(c);
  return table;
}
