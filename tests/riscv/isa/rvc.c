/* C extension: every RV64 compressed integer/FP form, written explicitly under .option rvc. */
#include "test.h"

#define RVC ".option push\n.option rvc\n"
#define POP "\n.option pop\n"

static u64 scratch[8] __attribute__((aligned(16)));
static double dscratch[2] __attribute__((aligned(16)));

/* Runs one asm body with a0..a5 in/out (x10..x15, all compressible registers). */
#define C6(body, v) __asm__ volatile(RVC body POP \
  : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5) : "r"(v) : "memory")

int main(void) {
  register u64 a0 __asm__("a0") = 0;
  register u64 a1 __asm__("a1") = 0;
  register u64 a2 __asm__("a2") = 0;
  register u64 a3 __asm__("a3") = 0;
  register u64 a4 __asm__("a4") = 0;
  register u64 a5 __asm__("a5") = 0;

  C6("c.li a0, -32\nc.li a1, 31\nc.lui a2, 0xfffe0\nc.lui a3, 1", 0);
  CHECK(a0 == (u64)-32);
  CHECK(a1 == 31);
  CHECK(a2 == 0xfffffffffffe0000ull);
  CHECK(a3 == 0x1000);
  C6("c.li a0, 5\nc.addi a0, -6\nc.li a1, 1\nc.slli a1, 63\nc.mv a2, a1\nc.srai a2, 3\n"
     "c.mv a3, a1\nc.srli a3, 63\nc.li a4, -1\nc.andi a4, 0x15\nc.nop", 0);
  CHECK(a0 == (u64)-1);
  CHECK(a1 == 0x8000000000000000ull);
  CHECK(a2 == 0xf000000000000000ull);
  CHECK(a3 == 1);
  CHECK(a4 == 0x15);
  /* addiw / addw / subw sign-extend 32-bit results */
  C6("li a0, 0x7fffffff\nc.addiw a0, 1\n"
     "c.li a1, -1\nc.li a2, 1\nc.addw a1, a2\nc.li a3, 0\nc.subw a3, a2\n"
     "c.li a4, -1\nc.addiw a4, 0", 0);
  CHECK(a0 == 0xffffffff80000000ull);
  CHECK(a1 == 0);
  CHECK(a3 == (u64)-1);
  CHECK(a4 == (u64)-1);
  /* register-register ALU */
  C6("c.li a0, 12\nc.li a1, 10\nc.mv a2, a0\nc.and a2, a1\nc.mv a3, a0\nc.or a3, a1\n"
     "c.mv a4, a0\nc.xor a4, a1\nc.mv a5, a0\nc.sub a5, a1\nc.add a0, a1", 0);
  CHECK(a0 == 22);
  CHECK(a2 == 8);
  CHECK(a3 == 14);
  CHECK(a4 == 6);
  CHECK(a5 == 2);
  /* loads/stores through a register base */
  scratch[0] = 0x8000000180000002ull;
  scratch[1] = 0;
  C6("mv a0, %6\nc.lw a1, 0(a0)\nc.lw a2, 4(a0)\nc.ld a3, 0(a0)\nc.sw a1, 8(a0)\nc.sd a3, 16(a0)", scratch);
  CHECK(a1 == 0xffffffff80000002ull);
  CHECK(a2 == 0xffffffff80000001ull);
  CHECK(a3 == 0x8000000180000002ull);
  CHECK(scratch[1] == 0x80000002ull);
  CHECK(scratch[2] == 0x8000000180000002ull);
  /* sp-relative forms, addi16sp and addi4spn */
  C6("mv t0, sp\nc.addi16sp sp, -64\nc.li a0, -7\nc.sdsp a0, 8(sp)\nc.swsp a0, 16(sp)\n"
     "c.ldsp a1, 8(sp)\nc.lwsp a2, 16(sp)\nc.addi4spn a3, sp, 24\nsub a3, a3, sp\n"
     "c.addi16sp sp, 64\nsub a4, t0, sp", 0);
  CHECK(a1 == (u64)-7);
  CHECK(a2 == (u64)-7);
  CHECK(a3 == 24);
  CHECK(a4 == 0);
  /* control flow: c.j, c.beqz, c.bnez, c.jr, c.jalr */
  C6("c.li a0, 0\nc.j 1f\nc.li a0, 9\n1: c.addi a0, 1\n"
     "c.li a1, 0\nc.beqz a1, 2f\nc.li a0, 9\n2: c.bnez a1, 3f\nc.addi a0, 1\n"
     "3: la a2, 4f\nc.jr a2\nc.li a0, 9\n4: c.addi a0, 1\n"
     "la a3, 5f\nmv t1, ra\nc.jalr a3\nc.j 6f\n5: c.mv a4, ra\nc.addi a0, 1\nc.jr ra\n"
     "6: mv ra, t1\nla a5, 5b - 2", 0);
  CHECK(a0 == 4);
  CHECK(a4 == a5); /* c.jalr links pc+2 */
  /* FP loads/stores */
  dscratch[0] = 1.5;
  C6("mv a0, %6\nc.fld fa0, 0(a0)\nc.fsd fa0, 8(a0)\nc.addi16sp sp, -16\nc.fsdsp fa0, 0(sp)\n"
     "c.fldsp fa1, 0(sp)\nc.ldsp a1, 0(sp)\nc.addi16sp sp, 16", dscratch);
  CHECK(dscratch[1] == 1.5);
  CHECK(a1 == 0x3ff8000000000000ull);
  return 0;
}
