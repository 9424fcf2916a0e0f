/*
 * Differential FP dump: F and D operations over edge operands (zeros, subnormals, limits,
 * infinities, quiet and signaling NaNs) in every rounding mode; each line hashes the result
 * bits and the fflags raised by every single operation. Compared with QEMU.
 */
#include "dump.h"

static const u64 dops[] = {
  0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
  0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff4000000000001ull,
  0x0000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull, 0x7fefffffffffffffull,
  0x3fd5555555555555ull, 0x4340000000000000ull, 0xc1e0000000000000ull, 0x3ff8000000000000ull,
  0x4004000000000000ull, 0xc3e0000000000000ull, 0x43f0000000000000ull, 0x41efffffffe00000ull,
};
static const u32 sops[] = {
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000,
  0x7fa00001, 0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0x3eaaaaab, 0x4b800000,
  0xcf000000, 0x3fc00000, 0x40200000, 0xdf000000, 0x5f800000, 0x4f800000,
};
#define ND (sizeof dops / sizeof dops[0])
#define NS (sizeof sops / sizeof sops[0])
#define BOX(s) (0xffffffff00000000ull | (s))

static const char *const rm_names[] = {"rne", "rtz", "rdn", "rup", "rmm"};

/* fflags since the last call (cleared) */
static inline u64 take_flags(void) {
  return csr_swap(fflags, 0);
}

#define D2(op) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\n" op " ft2, ft0, ft1\nfmv.x.d %0, ft2" \
  : "=r"(r_) : "r"(a), "r"(b) : "ft0", "ft1", "ft2"); r_; })
#define D3(op) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\nfmv.d.x ft2, %3\n" op " ft3, ft0, ft1, ft2\nfmv.x.d %0, ft3" \
  : "=r"(r_) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "ft3"); r_; })
#define D1(op) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\n" op " ft1, ft0\nfmv.x.d %0, ft1" \
  : "=r"(r_) : "r"(a) : "ft0", "ft1"); r_; })
#define XD2(op) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\n" op " %0, ft0, ft1" \
  : "=r"(r_) : "r"(a), "r"(b) : "ft0", "ft1"); r_; })
#define XD1(op) ({ u64 r_; __asm__ volatile("fmv.d.x ft0, %1\n" op " %0, ft0" \
  : "=r"(r_) : "r"(a) : "ft0"); r_; })
#define DX1(op) ({ u64 r_; __asm__ volatile(op " ft0, %1\nfmv.x.d %0, ft0" \
  : "=r"(r_) : "r"(a) : "ft0"); r_; })

#define BIN(op, ops, n, box) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < (n); i++) for (unsigned j = 0; j < (n); j++) { \
    u64 a = box(ops[i]), b = box(ops[j]); \
    h = fnv(h, D2(op)); h = fnv(h, take_flags()); \
  } \
  line(op, h); \
} while (0)
#define TER(op, ops, n, box) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < (n); i++) for (unsigned j = 0; j < (n); j++) for (unsigned k = 0; k < (n); k += 3) { \
    u64 a = box(ops[i]), b = box(ops[j]), c = box(ops[k]); \
    h = fnv(h, D3(op)); h = fnv(h, take_flags()); \
  } \
  line(op, h); \
} while (0)
#define CMP(op, ops, n, box) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < (n); i++) for (unsigned j = 0; j < (n); j++) { \
    u64 a = box(ops[i]), b = box(ops[j]); \
    h = fnv(h, XD2(op)); h = fnv(h, take_flags()); \
  } \
  line(op, h); \
} while (0)
#define UN(kind, op, ops, n, box) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < (n); i++) { \
    u64 a = box(ops[i]); \
    h = fnv(h, kind(op)); h = fnv(h, take_flags()); \
  } \
  line(op, h); \
} while (0)
#define ID(x) (x)

static const u64 ints[] = {
  0, 1, 0xffffffffffffffffull, 0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffffull,
  0x8000000000000000ull, 0x0020000000000001ull, 0xfffffffffffffff7ull, 0x123456789abcdefull,
  0x00000000ffffff81ull, 0x1000001,
};
#define NI (sizeof ints / sizeof ints[0])

static unsigned cur_rm;
static void line(const char *op, u64 h) {
  htif_puts(rm_names[cur_rm]);
  htif_putchar(' ');
  dump_line(op, h);
}

int main(void) {
  for (cur_rm = 0; cur_rm < 5; cur_rm++) {
    csr_write(frm, cur_rm);
    take_flags();
    BIN("fadd.d", dops, ND, ID); BIN("fsub.d", dops, ND, ID); BIN("fmul.d", dops, ND, ID);
    BIN("fdiv.d", dops, ND, ID);
    BIN("fadd.s", sops, NS, BOX); BIN("fsub.s", sops, NS, BOX); BIN("fmul.s", sops, NS, BOX);
    BIN("fdiv.s", sops, NS, BOX);
    TER("fmadd.d", dops, ND, ID); TER("fmsub.d", dops, ND, ID); TER("fnmadd.d", dops, ND, ID);
    TER("fnmsub.d", dops, ND, ID);
    TER("fmadd.s", sops, NS, BOX); TER("fnmsub.s", sops, NS, BOX);
    UN(D1, "fsqrt.d", dops, ND, ID); UN(D1, "fsqrt.s", sops, NS, BOX);
    UN(D1, "fcvt.s.d", dops, ND, ID); UN(D1, "fcvt.d.s", sops, NS, BOX);
    UN(XD1, "fcvt.w.d", dops, ND, ID); UN(XD1, "fcvt.wu.d", dops, ND, ID);
    UN(XD1, "fcvt.l.d", dops, ND, ID); UN(XD1, "fcvt.lu.d", dops, ND, ID);
    UN(XD1, "fcvt.w.s", sops, NS, BOX); UN(XD1, "fcvt.lu.s", sops, NS, BOX);
    UN(DX1, "fcvt.d.w", ints, NI, ID); UN(DX1, "fcvt.d.lu", ints, NI, ID);
    UN(DX1, "fcvt.s.l", ints, NI, ID); UN(DX1, "fcvt.s.wu", ints, NI, ID);
    if (cur_rm != 0) continue;
    /* rounding-independent operations once */
    BIN("fmin.d", dops, ND, ID); BIN("fmax.d", dops, ND, ID);
    BIN("fmin.s", sops, NS, BOX); BIN("fmax.s", sops, NS, BOX);
    BIN("fsgnj.d", dops, ND, ID); BIN("fsgnjn.d", dops, ND, ID); BIN("fsgnjx.d", dops, ND, ID);
    BIN("fsgnjx.s", sops, NS, BOX);
    CMP("feq.d", dops, ND, ID); CMP("flt.d", dops, ND, ID); CMP("fle.d", dops, ND, ID);
    CMP("feq.s", sops, NS, BOX); CMP("flt.s", sops, NS, BOX); CMP("fle.s", sops, NS, BOX);
    UN(XD1, "fclass.d", dops, ND, ID); UN(XD1, "fclass.s", sops, NS, BOX);
    UN(XD1, "fmv.x.w", sops, NS, BOX);
  }
  return 0;
}
