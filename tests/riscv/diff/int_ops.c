/*
 * Differential dump: every RV64IM integer register-register op (and a set of immediate
 * forms), branches, AMOs and loads (aligned, and misaligned with stores) over a table of edge
 * operands; one hash line per op, compared with QEMU.
 */
#include "dump.h"

static const u64 operands[] = {
  0, 1, 2, 31, 32, 63, 64, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
  0x7fffffffffffffffull, 0x8000000000000000ull, 0xffffffffffffffffull, 0xfffffffffffffffeull,
  0x5555555555555555ull, 0xaaaaaaaaaaaaaaaaull, 0x0123456789abcdefull, 0xfedcba9876543210ull,
  0xffffffff80000000ull, 0x00000000fffffffeull, 0x8000000000000001ull, 3, 10, 0xfffffffffffffff6ull,
};
#define N (sizeof operands / sizeof operands[0])

#define RR_OP(name) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) \
    for (unsigned j = 0; j < N; j++) h = fnv(h, RR(name, operands[i], operands[j])); \
  dump_line(name, h); \
} while (0)

#define RI_OP(name, imm) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) h = fnv(h, RI(name, operands[i], imm)); \
  dump_line(name " " #imm, h); \
} while (0)

#define BR_OP(name) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) \
    for (unsigned j = 0; j < N; j++) h = fnv(h, BR(name, operands[i], operands[j])); \
  dump_line(name, h); \
} while (0)

static u64 mem[8] __attribute__((aligned(64)));

#define AMO_OP(name) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) \
    for (unsigned j = 0; j < N; j++) { \
      mem[0] = operands[i]; \
      h = fnv(h, AMO(name, operands[j], mem)); \
      h = fnv(h, mem[0]); \
    } \
  dump_line(name, h); \
} while (0)

/* naturally aligned loads at every offset of a 16-byte window */
#define LOAD_OP(name, width) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) { \
    mem[0] = operands[i]; \
    mem[1] = operands[N - 1 - i]; \
    for (int off = 0; off + (width) <= 16; off += (width)) h = fnv(h, LD(name, (char *)mem + off)); \
  } \
  dump_line(name, h); \
} while (0)

/* misaligned loads and stores at every byte offset (QEMU performs them without trapping) */
#define MISALIGNED_OP(ld, st, width) do { \
  u64 h = FNV_INIT; \
  for (unsigned i = 0; i < N; i++) { \
    for (int off = 1; off + (width) <= 16; off++) { \
      mem[0] = operands[i]; \
      mem[1] = operands[N - 1 - i]; \
      h = fnv(h, LD(ld, (char *)mem + off)); \
      ST(st, operands[(i + off) % N], (char *)mem + off); \
      h = fnv(h, mem[0]); \
      h = fnv(h, mem[1]); \
    } \
  } \
  dump_line("misaligned " ld "/" st, h); \
} while (0)

int main(void) {
  RR_OP("add"); RR_OP("sub"); RR_OP("sll"); RR_OP("srl"); RR_OP("sra");
  RR_OP("slt"); RR_OP("sltu"); RR_OP("xor"); RR_OP("or"); RR_OP("and");
  RR_OP("addw"); RR_OP("subw"); RR_OP("sllw"); RR_OP("srlw"); RR_OP("sraw");
  RR_OP("mul"); RR_OP("mulh"); RR_OP("mulhu"); RR_OP("mulhsu"); RR_OP("mulw");
  RR_OP("div"); RR_OP("divu"); RR_OP("rem"); RR_OP("remu");
  RR_OP("divw"); RR_OP("divuw"); RR_OP("remw"); RR_OP("remuw");
  RI_OP("addi", -2048); RI_OP("addi", 2047); RI_OP("slti", -1); RI_OP("sltiu", -1);
  RI_OP("xori", -1); RI_OP("ori", 0x555); RI_OP("andi", -256);
  RI_OP("slli", 1); RI_OP("slli", 63); RI_OP("srli", 1); RI_OP("srli", 63);
  RI_OP("srai", 1); RI_OP("srai", 63); RI_OP("addiw", 0); RI_OP("addiw", -1);
  RI_OP("slliw", 31); RI_OP("srliw", 31); RI_OP("sraiw", 31); RI_OP("sraiw", 0);
  BR_OP("beq"); BR_OP("bne"); BR_OP("blt"); BR_OP("bge"); BR_OP("bltu"); BR_OP("bgeu");
  AMO_OP("amoswap.d"); AMO_OP("amoadd.d"); AMO_OP("amoxor.d"); AMO_OP("amoand.d");
  AMO_OP("amoor.d"); AMO_OP("amomin.d"); AMO_OP("amomax.d"); AMO_OP("amominu.d"); AMO_OP("amomaxu.d");
  AMO_OP("amoswap.w"); AMO_OP("amoadd.w"); AMO_OP("amoxor.w"); AMO_OP("amoand.w");
  AMO_OP("amoor.w"); AMO_OP("amomin.w"); AMO_OP("amomax.w"); AMO_OP("amominu.w"); AMO_OP("amomaxu.w");
  LOAD_OP("lb", 1); LOAD_OP("lbu", 1); LOAD_OP("lh", 2); LOAD_OP("lhu", 2);
  LOAD_OP("lw", 4); LOAD_OP("lwu", 4); LOAD_OP("ld", 8);
  MISALIGNED_OP("lh", "sh", 2); MISALIGNED_OP("lhu", "sh", 2); MISALIGNED_OP("lw", "sw", 4);
  MISALIGNED_OP("lwu", "sw", 4); MISALIGNED_OP("ld", "sd", 8);
  return 0;
}
