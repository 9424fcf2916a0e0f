/*
 * F/D basics: arithmetic, fused multiply-add, min/max and compare corner cases, sign
 * injection, fclass, conversions with saturation and every rounding mode, NaN boxing,
 * exception flags, and the FS = Off illegal-instruction trap.
 */
#include "test.h"

#define FD(op, a, b) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\n" op " ft2, ft0, ft1\nfmv.x.d %0, ft2" \
  : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); r_; })
#define FS(op, a, b) ({ u64 r_; __asm__ volatile("fmv.w.x ft0, %1\nfmv.w.x ft1, %2\n" op " ft2, ft0, ft1\nfmv.x.w %0, ft2" \
  : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); r_; })
/* integer result of an FP compare/convert on double bits */
#define XD(op, a, b) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\n" op " %0, ft0, ft1" \
  : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1"); r_; })
#define CVT_XD(op, a) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\n" op " %0, ft0" \
  : "=r"(r_) : "r"((u64)(a)) : "ft0"); r_; })
#define CVT_DX(op, a) ({ u64 r_; __asm__ volatile(op " ft0, %1\nfmv.x.d %0, ft0" \
  : "=r"(r_) : "r"((u64)(a)) : "ft0"); r_; })
#define CVT_DD(op, a) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\n" op " ft1, ft0\nfmv.x.d %0, ft1" \
  : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft1"); r_; })

#define ONE 0x3ff0000000000000ull
#define TWO 0x4000000000000000ull
#define THREE 0x4008000000000000ull
#define HALF 0x3fe0000000000000ull
#define PZERO 0x0ull
#define NZERO 0x8000000000000000ull
#define PINF 0x7ff0000000000000ull
#define NINF 0xfff0000000000000ull
#define QNAN 0x7ff8000000000000ull
#define SNAN 0x7ff4000000000000ull
#define DMAX 0x7fefffffffffffffull
#define DMIN 0x0010000000000000ull
#define M1_5 0xbff8000000000000ull
#define P2_5 0x4004000000000000ull
#define S_ONE 0x3f800000ull
#define S_QNAN 0x7fc00000ull

#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

static u64 flags(void) {
  return csr_swap(fflags, 0);
}

int main(void) {
  csr_write(fcsr, 0);
  /* arithmetic */
  CHECK(FD("fadd.d", ONE, TWO) == THREE);
  CHECK(FD("fsub.d", ONE, TWO) == 0xbff0000000000000ull);
  CHECK(FD("fmul.d", P2_5, TWO) == 0x4014000000000000ull);
  CHECK(FD("fdiv.d", THREE, TWO) == 0x3ff8000000000000ull);
  CHECK(flags() == 0);
  CHECK(FD("fdiv.d", ONE, THREE) == 0x3fd5555555555555ull);
  CHECK(flags() == NX);
  CHECK(FD("fdiv.d", ONE, PZERO) == PINF);
  CHECK(flags() == DZ);
  CHECK(FD("fdiv.d", PZERO, PZERO) == QNAN); /* canonical NaN */
  CHECK(flags() == NV);
  CHECK(FD("fmul.d", DMAX, TWO) == PINF);
  CHECK(flags() == (OF | NX));
  CHECK(FD("fmul.d", DMIN, HALF) == 0x0008000000000000ull); /* exact subnormal: no UF */
  CHECK(flags() == 0);
  CHECK(FD("fdiv.d", DMIN, THREE) == 0x0005555555555555ull);
  CHECK(flags() == (UF | NX));
  CHECK(FD("fadd.d", PINF, NINF) == QNAN);
  CHECK(flags() == NV);
  CHECK(FD("fadd.d", SNAN, ONE) == QNAN);
  CHECK(flags() == NV);
  CHECK(FD("fadd.d", NZERO, PZERO) == PZERO);
  CHECK(FD("fsub.d", NZERO, PZERO) == NZERO);
  CHECK(CVT_DD("fsqrt.d", 0x4010000000000000ull) == TWO);
  CHECK(CVT_DD("fsqrt.d", 0xbff0000000000000ull) == QNAN);
  CHECK(flags() == NV);
  CHECK(FS("fadd.s", S_ONE, S_ONE) == 0x40000000ull);
  CHECK(FS("fdiv.s", S_ONE, 0x40400000) == 0x3eaaaaab);
  CHECK(flags() == NX);
  /* fused multiply-add: one rounding */
  u64 r;
  __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\nfmv.d.x ft2, %3\nfmadd.d ft3, ft0, ft1, ft2\nfmv.x.d %0, ft3"
                   : "=r"(r) : "r"(THREE), "r"(TWO), "r"(ONE) : "ft0", "ft1", "ft2", "ft3");
  CHECK(r == 0x401c000000000000ull); /* 7.0 */
  __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\nfmv.d.x ft2, %3\nfnmsub.d ft3, ft0, ft1, ft2\nfmv.x.d %0, ft3"
                   : "=r"(r) : "r"(THREE), "r"(TWO), "r"(ONE) : "ft0", "ft1", "ft2", "ft3");
  CHECK(r == 0xc014000000000000ull); /* -(3*2) + 1 = -5 */
  /* min/max: -0 < +0, one NaN returns the other, signaling NaN sets NV */
  CHECK(FD("fmin.d", PZERO, NZERO) == NZERO);
  CHECK(FD("fmax.d", NZERO, PZERO) == PZERO);
  CHECK(FD("fmin.d", QNAN, TWO) == TWO);
  CHECK(flags() == 0);
  CHECK(FD("fmax.d", SNAN, TWO) == TWO);
  CHECK(flags() == NV);
  CHECK(FD("fmin.d", QNAN, QNAN) == QNAN);
  /* compares: feq quiet, flt/fle signal on any NaN */
  CHECK(XD("feq.d", ONE, ONE) == 1);
  CHECK(XD("feq.d", PZERO, NZERO) == 1);
  CHECK(XD("feq.d", QNAN, QNAN) == 0);
  CHECK(flags() == 0);
  CHECK(XD("flt.d", QNAN, ONE) == 0);
  CHECK(flags() == NV);
  CHECK(XD("fle.d", ONE, ONE) == 1);
  CHECK(XD("flt.d", NINF, DMAX) == 1);
  /* sign injection */
  CHECK(FD("fsgnj.d", ONE, NZERO) == 0xbff0000000000000ull);
  CHECK(FD("fsgnjn.d", ONE, NZERO) == ONE);
  CHECK(FD("fsgnjx.d", 0xbff0000000000000ull, NZERO) == ONE);
  /* fclass */
  CHECK(CVT_XD("fclass.d", NINF) == 1 << 0);
  CHECK(CVT_XD("fclass.d", 0xbff0000000000000ull) == 1 << 1);
  CHECK(CVT_XD("fclass.d", 0x8000000000000001ull) == 1 << 2);
  CHECK(CVT_XD("fclass.d", NZERO) == 1 << 3);
  CHECK(CVT_XD("fclass.d", PZERO) == 1 << 4);
  CHECK(CVT_XD("fclass.d", 1) == 1 << 5);
  CHECK(CVT_XD("fclass.d", ONE) == 1 << 6);
  CHECK(CVT_XD("fclass.d", PINF) == 1 << 7);
  CHECK(CVT_XD("fclass.d", SNAN) == 1 << 8);
  CHECK(CVT_XD("fclass.d", QNAN) == 1 << 9);
  flags();
  /* conversions: saturation, NaN, unsigned negative */
  CHECK(CVT_XD("fcvt.w.d", 0x4202a05f20000000ull) == 0x7fffffff); /* 1e10 */
  CHECK(flags() == NV);
  CHECK(CVT_XD("fcvt.w.d", NINF) == 0xffffffff80000000ull);
  CHECK(CVT_XD("fcvt.w.d", QNAN) == 0x7fffffff);
  CHECK(CVT_XD("fcvt.wu.d", 0xbff0000000000000ull) == 0);
  CHECK(flags() == NV);
  CHECK(CVT_XD("fcvt.wu.d", 0x41efffffffe00000ull) == 0xffffffffffffffffull); /* 4294967295 */
  CHECK(CVT_XD("fcvt.l.d", 0xc3e0000000000000ull) == 0x8000000000000000ull); /* -2^63 exact */
  CHECK(flags() == 0);
  CHECK(CVT_XD("fcvt.lu.d", PINF) == ~0ull);
  flags();
  CHECK(CVT_DX("fcvt.d.w", 0xffffffff) == 0xbff0000000000000ull); /* -1 (low 32 bits) */
  CHECK(CVT_DX("fcvt.d.wu", 0xffffffff) == 0x41efffffffe00000ull);
  CHECK(CVT_DX("fcvt.d.l", 0x8000000000000000ull) == 0xc3e0000000000000ull);
  CHECK(CVT_DX("fcvt.d.lu", ~0ull) == 0x43f0000000000000ull); /* rounds to 2^64 */
  CHECK(flags() == NX);
  CHECK(CVT_DD("fcvt.s.d", 0x3fd5555555555555ull) == 0xffffffff3eaaaaabull); /* NaN-boxed */
  CHECK(flags() == NX);
  CHECK(CVT_DD("fcvt.d.s", 0xffffffff3f800000ull) == ONE);
  /* NaN boxing: a single not properly boxed reads as the canonical NaN */
  CHECK(CVT_DD("fcvt.d.s", 0x000000003f800000ull) == QNAN);
  __asm__ volatile("fmv.d.x ft0, %1\nfadd.s ft1, ft0, ft0\nfmv.x.w %0, ft1" : "=r"(r) : "r"(0x3f800000ull) : "ft0", "ft1");
  CHECK(r == S_QNAN);
  __asm__ volatile("fmv.w.x ft0, %1\nfmv.x.d %0, ft0" : "=r"(r) : "r"(0x12345678ull) : "ft0");
  CHECK(r == 0xffffffff12345678ull);
  __asm__ volatile("fmv.w.x ft0, %1\nfmv.x.w %0, ft0" : "=r"(r) : "r"(0x80000000ull) : "ft0");
  CHECK(r == 0xffffffff80000000ull); /* fmv.x.w sign-extends */
  flags();

  /* rounding modes: static and dynamic (frm) on -1.5 and 2.5 */
  static const struct { u64 frm; i64 m15, p25; } modes[] = {
    {0, -2, 2}, /* RNE */
    {1, -1, 2}, /* RTZ */
    {2, -2, 2}, /* RDN */
    {3, -1, 3}, /* RUP */
    {4, -2, 3}, /* RMM */
  };
  for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    csr_write(frm, modes[i].frm);
    CHECK(CVT_XD("fcvt.l.d", M1_5) == (u64)modes[i].m15);
    CHECK(CVT_XD("fcvt.w.d", P2_5) == (u64)modes[i].p25);
    CHECK(flags() == NX);
  }
  csr_write(frm, 0);
  CHECK(CVT_XD("fcvt.l.d %0, ft0, rtz\n#", M1_5) == (u64)-1);
  CHECK(CVT_XD("fcvt.l.d %0, ft0, rup\n#", P2_5) == 3);
  CHECK(CVT_XD("fcvt.l.d %0, ft0, rdn\n#", M1_5) == (u64)-2);
  /* fcsr layout: frm in 7:5, fflags in 4:0 */
  csr_write(fcsr, 0xff);
  CHECK(csr_read(frm) == 7);
  CHECK(csr_read(fflags) == 0x1f);
  csr_write(fcsr, 0);
  /* an invalid rounding mode in frm makes dynamic-rounding instructions illegal */
  csr_write(frm, 5);
  trap_reset();
  CVT_XD("fcvt.l.d", ONE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  csr_write(frm, 0);

  /* writing FP state marks FS dirty */
  csr_clear(mstatus, MSTATUS_FS);
  csr_set(mstatus, 1ull << 13); /* Initial */
  FD("fadd.d", ONE, ONE);
  CHECK((csr_read(mstatus) & MSTATUS_FS) == MSTATUS_FS);
  CHECK(csr_read(mstatus) >> 63); /* SD */
  /* FS = Off: FP instructions and fcsr are illegal */
  csr_clear(mstatus, MSTATUS_FS);
  trap_reset();
  __asm__ volatile("fadd.d ft0, ft1, ft2");
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  trap_reset();
  (void)csr_read(fcsr);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  trap_reset();
  __asm__ volatile("fld ft0, 0(sp)");
  CHECK(m_trap.count == 1);
  csr_set(mstatus, 1ull << 13);
  return 0;
}
