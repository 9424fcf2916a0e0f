/*
 * Differential decoder test: thousands of pseudo-random 32-bit encodings in the OP, OP-32,
 * OP-IMM, OP-IMM-32, LUI, AUIPC, OP-FP and fused multiply-add major opcodes (legal and
 * illegal combinations of funct fields, rounding modes and formats), and 16-bit compressed
 * parcels that cannot jump or store (reserved forms included), are written to a code
 * buffer and executed with every x and f register preloaded; the resulting registers,
 * fflags and any trap (cause, tval) are hashed per opcode class. Compared with QEMU.
 */
#include "dump.h"

/* x5..x31 in, out; f0..f31 in, out; fcsr in, out */
static u64 xregs[32], fregs[32];
static u64 fcsr_io;
static u32 code[4] __attribute__((aligned(16)));

/* Saves callee-saved state, loads x5..x31/f0..f31/fcsr, calls code, stores them back. */
__asm__(
  ".text\n.globl exec_insn\nexec_insn:\n"
  "addi sp, sp, -224\n"
  "sd ra, 0(sp)\nsd s0, 8(sp)\nsd s1, 16(sp)\nsd s2, 24(sp)\nsd s3, 32(sp)\nsd s4, 40(sp)\n"
  "sd s5, 48(sp)\nsd s6, 56(sp)\nsd s7, 64(sp)\nsd s8, 72(sp)\nsd s9, 80(sp)\nsd s10, 88(sp)\n"
  "sd s11, 96(sp)\nsd gp, 104(sp)\nsd tp, 112(sp)\n"
  "fsd fs0, 120(sp)\nfsd fs1, 128(sp)\nfsd fs2, 136(sp)\nfsd fs3, 144(sp)\nfsd fs4, 152(sp)\n"
  "fsd fs5, 160(sp)\nfsd fs6, 168(sp)\nfsd fs7, 176(sp)\nfsd fs8, 184(sp)\nfsd fs9, 192(sp)\n"
  "fsd fs10, 200(sp)\nfsd fs11, 208(sp)\n"
  "la ra, fcsr_io\nld ra, 0(ra)\ncsrw fcsr, ra\n"
  "la ra, fregs\n"
  ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
  "fld f\\n, \\n*8(ra)\n.endr\n"
  "la ra, xregs\n"
  ".irp n, 5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
  "ld x\\n, \\n*8(ra)\n.endr\n"
  "la ra, code\njalr ra, 0(ra)\n"
  "la ra, xregs\n"
  ".irp n, 5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
  "sd x\\n, \\n*8(ra)\n.endr\n"
  "la ra, fregs\n"
  ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
  "fsd f\\n, \\n*8(ra)\n.endr\n"
  "csrr s0, fcsr\nla ra, fcsr_io\nsd s0, 0(ra)\n"
  "ld ra, 0(sp)\nld s0, 8(sp)\nld s1, 16(sp)\nld s2, 24(sp)\nld s3, 32(sp)\nld s4, 40(sp)\n"
  "ld s5, 48(sp)\nld s6, 56(sp)\nld s7, 64(sp)\nld s8, 72(sp)\nld s9, 80(sp)\nld s10, 88(sp)\n"
  "ld s11, 96(sp)\nld gp, 104(sp)\nld tp, 112(sp)\n"
  "fld fs0, 120(sp)\nfld fs1, 128(sp)\nfld fs2, 136(sp)\nfld fs3, 144(sp)\nfld fs4, 152(sp)\n"
  "fld fs5, 160(sp)\nfld fs6, 168(sp)\nfld fs7, 176(sp)\nfld fs8, 184(sp)\nfld fs9, 192(sp)\n"
  "fld fs10, 200(sp)\nfld fs11, 208(sp)\n"
  "addi sp, sp, 224\nret\n");
void exec_insn(void);

static u64 rng = 0x0123456789abcdefull;
static u64 next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const u64 values[] = {
  0, 1, 0xffffffffffffffffull, 0x8000000000000000ull, 0x7fffffffffffffffull, 0x80000000,
  0xffffffff80000000ull, 0x3ff0000000000000ull, 0xffffffff3f800000ull, 0x7ff8000000000000ull,
  0xffffffff7fc00000ull, 0x000fffffffffffffull, 0xbff8000000000000ull, 0x12345678, 31, 64,
};
#define NV (sizeof values / sizeof values[0])

/* One random encoding of a class; rs1/rs2 any of x0..x31 except ra (the return address). */
static u32 encode(int cls, u64 r) {
  u32 rd = 5 + (u32)((r >> 7) % 27);   /* x5..x31: preloaded and saved */
  u32 rs1 = (u32)(r >> 15) & 31, rs2 = (u32)(r >> 20) & 31;
  if (rs1 == 1) rs1 = 0;
  if (rs2 == 1) rs2 = 0;
  u32 f3 = (u32)(r >> 12) & 7, f7 = (u32)(r >> 25) & 0x7f;
  u32 pick = (u32)(r >> 40) & 3;
  switch (cls) {
    case 0: /* OP: mostly known funct7 values, sometimes random */
    case 1: /* OP-32 */
      if (pick == 0) f7 = 0;
      else if (pick == 1) f7 = 1;
      else if (pick == 2) f7 = 0x20;
      return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | (cls ? 0x3b : 0x33);
    case 2: /* OP-IMM: any 12-bit immediate (shift encodings with bad high bits) */
    case 3: /* OP-IMM-32 */
      return ((u32)(r >> 20) & 0xfff) << 20 | (rs1 << 15) | (f3 << 12) | (rd << 7) |
             (cls == 2 ? 0x13 : 0x1b);
    case 4: /* LUI / AUIPC */
      return ((u32)(r >> 32) & 0xfffff000u) | (rd << 7) | ((r & 1) ? 0x17 : 0x37);
    case 5: { /* OP-FP: funct5 of a real op, random fmt, rs2 field and rounding mode */
      static const u32 funct5[] = {0x00, 0x01, 0x02, 0x03, 0x0b, 0x04, 0x05, 0x08,
                                   0x14, 0x18, 0x1a, 0x1c, 0x1e, 0x06, 0x0f, 0x10};
      u32 fn = funct5[(r >> 44) % 16];
      u32 fmt = pick == 3 ? (u32)(r >> 50) & 3 : (u32)(r >> 50) & 1;
      u32 rs2f = pick == 2 ? (u32)(r >> 52) & 3 : rs2;
      return (fn << 27) | (fmt << 25) | (rs2f << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x53;
    }
    default: { /* FMADD/FMSUB/FNMSUB/FNMADD with random fmt and rs3 */
      static const u32 op[] = {0x43, 0x47, 0x4b, 0x4f};
      u32 rs3 = (u32)(r >> 54) & 31, fmt = (u32)(r >> 59) & (pick == 3 ? 3 : 1);
      return (rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) |
             op[(r >> 61) & 3];
    }
  }
}

/*
 * A random 16-bit parcel that cannot jump or store: quadrant 1 ALU forms, quadrant 2
 * c.slli/c.mv/c.add/c.ldsp/c.lwsp/c.fldsp, quadrant 0 c.addi4spn (reserved forms included).
 * Never writes ra, sp, gp or tp (x1..x4: the handlers rely on gp).
 */
static u32 encode_rvc(u64 r) {
  u32 p = (u32)(r >> 16) & 0xffff;
  u32 rd = (p >> 7) & 31;
  switch ((r >> 40) % 4) {
    case 0: /* c.addi4spn (funct3 000), quadrant 0 */
      return p & ~0xe003u;
    case 1: { /* quadrant 1: c.addi, c.addiw, c.li, c.lui, misc-alu (no c.j/c.beqz/c.bnez) */
      static const u32 f3[] = {0, 1, 2, 3, 4, 4, 4, 3};
      u32 f = f3[(r >> 44) & 7];
      if (rd >= 1 && rd <= 4 && f != 4) p |= 8u << 7; /* keep ra, sp, gp, tp out of rd */
      return (p & ~0xe003u) | (f << 13) | 1;
    }
    default: { /* quadrant 2: c.slli, c.fldsp, c.lwsp, c.ldsp, c.mv/c.add (not jr/jalr) */
      static const u32 f3[] = {0, 1, 2, 3, 4, 0, 4, 3};
      u32 f = f3[(r >> 44) & 7];
      if (rd >= 1 && rd <= 4) p |= 8u << 7;
      if (f == 4 && ((p >> 2) & 31) == 0) p |= 5u << 2; /* rs2 != 0: c.mv/c.add, not jr/jalr/ebreak */
      return (p & ~0xe003u) | (f << 13) | 2;
    }
  }
}

static const char *const names[] = {"op", "op-32", "op-imm", "op-imm-32", "lui/auipc", "op-fp", "fma", "rvc"};

int main(void) {
  for (int cls = 0; cls < 8; cls++) {
    u64 h = FNV_INIT, traps = 0;
    for (int n = 1; n <= 1500; n++) {
      u64 r = next();
      for (int i = 5; i < 32; i++) xregs[i] = values[(r + (u64)i * 7) % NV] ^ (i == 20 ? r : 0);
      for (int i = 0; i < 32; i++) fregs[i] = values[((r >> 3) + (u64)i * 5) % NV];
      fcsr_io = (r >> 60) % 5 << 5; /* frm: a valid rounding mode */
      if (cls == 7) {
        code[0] = encode_rvc(r) | (0x8082u << 16); /* parcel, then c.jr ra */
      } else {
        code[0] = encode(cls, r);
      }
      code[1] = 0x00008067; /* ret */
      __asm__ volatile("fence.i" ::: "memory");
      trap_reset();
      exec_insn();
      h = fnv(h, code[0]);
      h = fnv(h, m_trap.count ? m_trap.cause : 0xff);
      h = fnv(h, m_trap.count ? m_trap.tval : 0);
      traps += m_trap.count;
      for (int i = 5; i < 32; i++) h = fnv(h, xregs[i]);
      for (int i = 0; i < 32; i++) h = fnv(h, fregs[i]);
      h = fnv(h, fcsr_io);
      if (n % 250 == 0) {
        htif_puts(names[cls]);
        htif_putchar(' ');
        print_dec(n);
        htif_puts(" traps ");
        print_dec((i64)traps);
        htif_putchar(' ');
        print_hex(h);
        htif_putchar('\n');
      }
    }
  }
  return 0;
}
