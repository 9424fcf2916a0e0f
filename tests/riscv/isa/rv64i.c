/*
 * RV64I: ALU, immediates, shifts, W-ops, branches, jumps, loads/stores with sign extension,
 * fence.i after code written at run time.
 */
#include "ops.h"

#define MIN64 0x8000000000000000ull
#define MAX64 0x7fffffffffffffffull
#define ALL1 0xffffffffffffffffull

static void alu(void) {
  CHECK(RR("add", MAX64, 1) == MIN64);
  CHECK(RR("add", ALL1, 1) == 0);
  CHECK(RR("sub", 0, 1) == ALL1);
  CHECK(RR("sub", MIN64, 1) == MAX64);
  CHECK(RR("sll", 1, 63) == MIN64);
  CHECK(RR("sll", 1, 65) == 2); /* shift amount uses rs2[5:0] */
  CHECK(RR("srl", MIN64, 63) == 1);
  CHECK(RR("srl", ALL1, 64) == ALL1);
  CHECK(RR("sra", MIN64, 63) == ALL1);
  CHECK(RR("sra", MIN64, 0x7c) == 0xfffffffffffffff8ull);
  CHECK(RR("slt", ALL1, 0) == 1);
  CHECK(RR("slt", 0, ALL1) == 0);
  CHECK(RR("slt", MIN64, MAX64) == 1);
  CHECK(RR("sltu", ALL1, 0) == 0);
  CHECK(RR("sltu", 0, ALL1) == 1);
  CHECK(RR("sltu", 5, 5) == 0);
  CHECK(RR("xor", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull) == 0xf0f0f0f0f0f0f0f0ull);
  CHECK(RR("or", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull) == 0xfff0fff0fff0fff0ull);
  CHECK(RR("and", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull) == 0x0f000f000f000f00ull);
}

static void immediates(void) {
  CHECK(RI("addi", 0, -2048) == (u64)-2048);
  CHECK(RI("addi", 0, 2047) == 2047);
  CHECK(RI("addi", MAX64, 1) == MIN64);
  CHECK(RI("slti", 0, -1) == 0);
  CHECK(RI("slti", ALL1, 0) == 1);
  CHECK(RI("sltiu", 5, -1) == 1); /* imm sign-extends to all ones, compared unsigned */
  CHECK(RI("sltiu", ALL1, -1) == 0);
  CHECK(RI("sltiu", 0, 1) == 1); /* seqz */
  CHECK(RI("xori", 0x1234, -1) == ~0x1234ull);
  CHECK(RI("ori", 0, -2048) == 0xfffffffffffff800ull);
  CHECK(RI("andi", ALL1, -16) == 0xfffffffffffffff0ull);
  CHECK(RI("andi", ALL1, 0x7ff) == 0x7ff);
  CHECK(RI("slli", 3, 62) == 0xc000000000000000ull);
  CHECK(RI("srli", MIN64, 63) == 1);
  CHECK(RI("srai", MIN64, 63) == ALL1);
  CHECK(RI("srai", 0x4000000000000000ull, 62) == 1);
  u64 v;
  __asm__ volatile("lui %0, 0x80000" : "=r"(v));
  CHECK(v == 0xffffffff80000000ull);
  __asm__ volatile("lui %0, 0x7ffff" : "=r"(v));
  CHECK(v == 0x7ffff000ull);
  u64 pc1, pc2;
  __asm__ volatile(NORVC "1: auipc %0, 0\nla %1, 1b" POPRVC : "=r"(pc1), "=r"(pc2));
  CHECK(pc1 == pc2);
  __asm__ volatile(NORVC "1: auipc %0, 1\nla %1, 1b" POPRVC : "=r"(pc1), "=r"(pc2));
  CHECK(pc1 == pc2 + 0x1000);
  /* x0 ignores writes */
  __asm__ volatile(NORVC "addi x0, x0, 5\nmv %0, x0" POPRVC : "=r"(v));
  CHECK(v == 0);
}

static void words(void) {
  CHECK(RR("addw", 0x7fffffff, 1) == 0xffffffff80000000ull);
  CHECK(RR("addw", 0xffffffff00000001ull, 0x10) == 0x11); /* upper input bits ignored */
  CHECK(RR("subw", 0, 1) == ALL1);
  CHECK(RR("subw", 0x80000000, 1) == 0x7fffffff);
  CHECK(RR("sllw", 1, 31) == 0xffffffff80000000ull);
  CHECK(RR("sllw", 1, 33) == 2); /* shift amount uses rs2[4:0] */
  CHECK(RR("srlw", 0xffffffff80000000ull, 4) == 0x08000000);
  CHECK(RR("srlw", 0x80000000, 0) == 0xffffffff80000000ull); /* result sign-extends */
  CHECK(RR("sraw", 0x80000000, 4) == 0xfffffffff8000000ull);
  CHECK(RR("sraw", 0x123456780000000full, 36) == 0);
  CHECK(RI("addiw", 0x7fffffff, 1) == 0xffffffff80000000ull);
  CHECK(RI("addiw", 0x1ffffffffull, 0) == ALL1); /* sext.w */
  CHECK(RI("slliw", 1, 31) == 0xffffffff80000000ull);
  CHECK(RI("srliw", 0xffffffff80000000ull, 31) == 1);
  CHECK(RI("srliw", 0xfffffffff0000000ull, 0) == 0xfffffffff0000000ull);
  CHECK(RI("sraiw", 0x80000000, 31) == ALL1);
  CHECK(RI("sraiw", 0x7fffffff00000000ull, 1) == 0);
}

static void branches(void) {
  CHECK(BR("beq", 5, 5) == 1);
  CHECK(BR("beq", 5, 6) == 0);
  CHECK(BR("bne", 5, 6) == 1);
  CHECK(BR("bne", ALL1, ALL1) == 0);
  CHECK(BR("blt", ALL1, 0) == 1);
  CHECK(BR("blt", 0, ALL1) == 0);
  CHECK(BR("blt", MIN64, MAX64) == 1);
  CHECK(BR("blt", 3, 3) == 0);
  CHECK(BR("bge", 3, 3) == 1);
  CHECK(BR("bge", 0, ALL1) == 1);
  CHECK(BR("bge", MIN64, 0) == 0);
  CHECK(BR("bltu", 0, ALL1) == 1);
  CHECK(BR("bltu", ALL1, 0) == 0);
  CHECK(BR("bltu", 7, 7) == 0);
  CHECK(BR("bgeu", ALL1, 0) == 1);
  CHECK(BR("bgeu", MIN64, MAX64) == 1);
  CHECK(BR("bgeu", 0, 1) == 0);
}

static void jumps(void) {
  u64 link, target, hit;
  /* jal writes pc+4 and jumps */
  __asm__ volatile(NORVC "li %2, 0\njal %0, 2f\nli %2, 99\n2: la %1, 2b - 4\naddi %2, %2, 1" POPRVC
                   : "=&r"(link), "=&r"(target), "=&r"(hit));
  CHECK(hit == 1);
  CHECK(link == target);
  /* jalr clears bit 0 of the target and links pc+4 */
  __asm__ volatile(NORVC "la t0, 3f\naddi t0, t0, 1\nli %1, 0\n"
                   "jalr %0, 0(t0)\nli %1, 99\n3: la %2, 3b - 4\naddi %1, %1, 1" POPRVC
                   : "=&r"(link), "=&r"(hit), "=&r"(target) :: "t0");
  CHECK(hit == 1);
  CHECK(link == target);
  /* jalr with rd == rs1 uses the old rs1 value */
  __asm__ volatile(NORVC "la %0, 4f\njalr %0, 0(%0)\nli %0, 0\n4: la %1, 4b - 4" POPRVC
                   : "=&r"(link), "=&r"(target));
  CHECK(link == target);
  /* jalr with a negative offset */
  __asm__ volatile(NORVC "la t0, 5f + 8\nli %0, 0\njalr x0, -8(t0)\nli %0, 7\n5: addi %0, %0, 3" POPRVC
                   : "=&r"(hit) :: "t0");
  CHECK(hit == 3);
}

static unsigned char buf[32] __attribute__((aligned(16)));

static void memory(void) {
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(0x80 + i * 9);
  /* buf[0..7] = 80 89 92 9b a4 ad b6 bf */
  CHECK(LD("lb", buf) == 0xffffffffffffff80ull);
  CHECK(LD("lbu", buf) == 0x80);
  CHECK(LD("lh", buf) == 0xffffffffffff8980ull);
  CHECK(LD("lhu", buf) == 0x8980);
  CHECK(LD("lw", buf) == 0xffffffff9b928980ull);
  CHECK(LD("lwu", buf) == 0x9b928980ull);
  CHECK(LD("ld", buf) == 0xbfb6ada49b928980ull);
  buf[8] = 0x7f;
  buf[9] = 0x7f;
  CHECK(LD("lb", buf + 8) == 0x7f);
  CHECK(LD("lh", buf + 8) == 0x7f7f);
  ST("sd", 0x0102030405060708ull, buf + 16);
  ST("sb", 0xaaaaaaaaaaaaaaffull, buf + 16);
  CHECK(LD("ld", buf + 16) == 0x01020304050607ffull);
  ST("sh", 0xbbbbbbbbbbbb8001ull, buf + 18);
  CHECK(LD("ld", buf + 16) == 0x01020304800107ffull);
  ST("sw", 0xccccccccdeadbeefull, buf + 20);
  CHECK(LD("ld", buf + 16) == 0xdeadbeef800107ffull);
  CHECK(LD("lhu", buf + 22) == 0xdead);
  CHECK(LD("lh", buf + 22) == 0xffffffffffffdeadull);
  /* negative and positive offsets */
  u64 v;
  __asm__ volatile(NORVC "ld %0, -8(%1)" POPRVC : "=r"(v) : "r"(buf + 24) : "memory");
  CHECK(v == 0xdeadbeef800107ffull);
  __asm__ volatile(NORVC "lbu %0, 2047(%1)" POPRVC : "=r"(v) : "r"((u64)buf - 2044) : "memory");
  CHECK(v == 0x9b);
  __asm__ volatile("fence\nfence.i\nfence rw, rw" ::: "memory");
}

/* Code written at run time becomes visible to fetch after fence.i (self-modifying code). */
static u32 code[16] __attribute__((aligned(64)));

static u32 addi_a0(int imm) {
  return ((u32)(imm & 0xfff) << 20) | (10 << 7) | 0x13; /* addi a0, x0, imm */
}

static void self_modifying(void) {
  long (*fn)(void) = (long (*)(void))(void *)code;
  for (int round = 0; round < 3; round++) {
    code[0] = addi_a0(100 + round);
    code[1] = 0x00008067; /* ret */
    __asm__ volatile("fence.i" ::: "memory");
    CHECK(fn() == 100 + round);
  }
  /* patch one instruction in the middle of an already executed sequence */
  code[0] = addi_a0(1);
  code[1] = 0x00150513; /* addi a0, a0, 1 */
  code[2] = 0x00150513;
  code[3] = 0x00008067;
  __asm__ volatile("fence.i" ::: "memory");
  CHECK(fn() == 3);
  code[2] = 0x00a50513; /* addi a0, a0, 10 */
  __asm__ volatile("fence.i" ::: "memory");
  CHECK(fn() == 12);
}

int main(void) {
  alu();
  immediates();
  words();
  branches();
  jumps();
  memory();
  self_modifying();
  return 0;
}
