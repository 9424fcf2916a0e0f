/*
 * Exceptions: illegal instruction (mtval = the bits), ecall from M/S/U, ebreak, misaligned
 * AMO, access faults at an unmapped address, medeleg to S, mret/sret transitions, TSR/TVM/TW,
 * MPRV with a PMP-protected buffer.
 */
#include "ops.h"

#define EXPECT_M(c, tv) do { CHECK(m_trap.count == 1); CHECK(m_trap.cause == (c)); \
  CHECK(m_trap.tval == (u64)(tv)); } while (0)

extern char ill_custom[], ill_unimp32[], ill_c0[], brk[], cbrk[], ecall_m[];

static long do_ecall(long arg) {
  register long a0 __asm__("a0") = arg;
  register long a7 __asm__("a7") = 0;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
  return a0 + 1;
}

static long read_mstatus(long arg) {
  (void)arg;
  return (long)csr_read(mstatus);
}

static long read_sstatus(long arg) {
  (void)arg;
  return (long)csr_read(sstatus);
}

static long do_illegal(long arg) {
  __asm__ volatile(".option push\n.option norvc\n.word 0x0000100b\n.option pop");
  return arg;
}

static long do_sret(long arg) {
  __asm__ volatile("sret");
  return arg;
}

static long do_mret(long arg) {
  __asm__ volatile("mret");
  return arg;
}

static long do_wfi(long arg) {
  __asm__ volatile("wfi");
  return arg;
}

static long do_sfence(long arg) {
  __asm__ volatile("sfence.vma");
  return arg;
}

static long read_satp(long arg) {
  (void)arg;
  return (long)csr_read(satp);
}

static long u_payload(long arg) {
  return arg * 3;
}

/* In S-mode: sret into U-mode at u_payload (whose return ends run_in_mode). */
extern char rim_lower_return[];
static long s_enter_u(long arg) {
  csr_clear(sstatus, MSTATUS_SPP);
  csr_write(sepc, (u64)u_payload);
  register long a0 __asm__("a0") = arg;
  register u64 ra __asm__("ra") = (u64)rim_lower_return;
  __asm__ volatile("sret" : : "r"(a0), "r"(ra) : "memory");
  return -1;
}

static volatile u64 words[4] __attribute__((aligned(16)));

static void illegal(void) {
  trap_reset();
  __asm__ volatile(".option push\n.option norvc\n.globl ill_custom\nill_custom: .word 0x0000100b\n.option pop");
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x100b);
  CHECK(m_trap.epc == (u64)ill_custom);
  CHECK(m_trap.prev_priv == PRV_M);
  trap_reset();
  /* unimp = csrrw x0, cycle, x0: a write to a read-only CSR */
  __asm__ volatile(".option push\n.option norvc\n.globl ill_unimp32\nill_unimp32: unimp\n.option pop");
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0xc0001073);
  CHECK(m_trap.epc == (u64)ill_unimp32);
  trap_reset();
  /* the all-zero 16-bit parcel is defined illegal */
  __asm__ volatile(".globl ill_c0\nill_c0: .half 0");
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0);
  CHECK(m_trap.epc == (u64)ill_c0);
}

static void breakpoints(void) {
  trap_reset();
  __asm__ volatile(".option push\n.option norvc\n.globl brk\nbrk: ebreak\n.option pop");
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_BREAKPOINT);
  CHECK(m_trap.epc == (u64)brk);
  CHECK(m_trap.tval == 0 || m_trap.tval == (u64)brk); /* either is allowed */
  trap_reset();
  __asm__ volatile(".globl cbrk\ncbrk: c.ebreak");
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_BREAKPOINT);
  CHECK(m_trap.epc == (u64)cbrk);
}

static void ecalls(void) {
  trap_reset();
  __asm__ volatile(".globl ecall_m\necall_m: ecall" ::: "memory");
  EXPECT_M(CAUSE_MACHINE_ECALL, 0);
  CHECK(m_trap.epc == (u64)ecall_m);
  CHECK(m_trap.prev_priv == PRV_M);
  trap_reset();
  CHECK(run_in_mode(PRV_S, do_ecall, 41) == 42);
  EXPECT_M(CAUSE_SUPERVISOR_ECALL, 0);
  CHECK(m_trap.prev_priv == PRV_S);
  trap_reset();
  CHECK(run_in_mode(PRV_U, do_ecall, 9) == 10);
  EXPECT_M(CAUSE_USER_ECALL, 0);
  CHECK(m_trap.prev_priv == PRV_U);
  CHECK(s_trap.count == 0);
}

static void privilege(void) {
  /* S can read sstatus but not mstatus; U neither */
  trap_reset();
  run_in_mode(PRV_S, read_sstatus, 0);
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_S, read_mstatus, 0);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, *(volatile u32 *)m_trap.epc);
  CHECK((m_trap.tval & 0xfff0707f) == 0x30002073); /* csrrs rd, mstatus, x0 */
  trap_reset();
  run_in_mode(PRV_U, read_sstatus, 0);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(m_trap.prev_priv == PRV_U);
  /* mret below M, sret in U are illegal */
  trap_reset();
  run_in_mode(PRV_S, do_mret, 0);
  CHECK(m_trap.count == 1);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x30200073);
  trap_reset();
  run_in_mode(PRV_U, do_sret, 0);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x10200073);
  /* TSR traps sret in S; TVM traps sfence.vma and satp in S */
  trap_reset();
  csr_set(mstatus, MSTATUS_TSR);
  run_in_mode(PRV_S, do_sret, 0);
  csr_clear(mstatus, MSTATUS_TSR);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x10200073);
  trap_reset();
  run_in_mode(PRV_S, do_sfence, 0);
  run_in_mode(PRV_S, read_satp, 0);
  CHECK(m_trap.count == 0);
  csr_set(mstatus, MSTATUS_TVM);
  run_in_mode(PRV_S, do_sfence, 0);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x12000073);
  trap_reset();
  run_in_mode(PRV_S, read_satp, 0);
  csr_clear(mstatus, MSTATUS_TVM);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  /* TW traps wfi below M */
  trap_reset();
  csr_set(mstatus, MSTATUS_TW);
  run_in_mode(PRV_S, do_wfi, 0);
  csr_clear(mstatus, MSTATUS_TW);
  EXPECT_M(CAUSE_ILLEGAL_INSTRUCTION, 0x10500073);
  /* sret from S into U */
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_enter_u, 5) == 15);
  CHECK(m_trap.count == 0);
  /* mret stacks MIE <- MPIE, MPIE <- 1, MPP <- U */
  csr_write(mie, 0);
  csr_clear(mstatus, MSTATUS_MIE);
  csr_set(mstatus, MSTATUS_MPIE | MSTATUS_MPP);
  u64 after;
  __asm__ volatile("la t0, 1f\ncsrw mepc, t0\nmret\n1: csrr %0, mstatus" : "=r"(after) :: "t0", "memory");
  CHECK(after & MSTATUS_MIE);
  CHECK(after & MSTATUS_MPIE);
  CHECK((after & MSTATUS_MPP) == 0);
  csr_clear(mstatus, MSTATUS_MIE);
}

static void delegation(void) {
  /* U ecall and illegal instructions delegated to S */
  csr_write(medeleg, (1 << CAUSE_USER_ECALL) | (1 << CAUSE_ILLEGAL_INSTRUCTION));
  CHECK(csr_read(medeleg) & (1 << CAUSE_USER_ECALL));
  trap_reset();
  CHECK(run_in_mode(PRV_U, do_ecall, 1) == 2);
  CHECK(m_trap.count == 0);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == CAUSE_USER_ECALL);
  CHECK(s_trap.prev_priv == 0);
  trap_reset();
  run_in_mode(PRV_S, do_illegal, 0);
  CHECK(m_trap.count == 0);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(s_trap.tval == 0x100b);
  CHECK(s_trap.prev_priv == 1);
  /* S ecall not delegated: goes to M */
  trap_reset();
  run_in_mode(PRV_S, do_ecall, 0);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_SUPERVISOR_ECALL);
  CHECK(s_trap.count == 0);
  /* traps taken in M-mode are never delegated */
  trap_reset();
  do_illegal(0);
  CHECK(m_trap.count == 1);
  CHECK(s_trap.count == 0);
  csr_write(medeleg, 0);
}

/* Spec: store/AMO misaligned (6) or access fault (7); QEMU 7.2 reports load misaligned (4). */
static int amo_misaligned_cause(u64 cause) {
  return cause == CAUSE_MISALIGNED_STORE || cause == CAUSE_STORE_ACCESS ||
         cause == CAUSE_MISALIGNED_LOAD;
}

static void misaligned_and_faults(void) {
  trap_reset();
  u64 v = AMO("amoadd.w", 1, (char *)words + 1);
  (void)v;
  CHECK(m_trap.count == 1);
  CHECK(amo_misaligned_cause(m_trap.cause));
  CHECK(m_trap.tval == (u64)words + 1);
  trap_reset();
  v = AMO("amoswap.d", 1, (char *)words + 4);
  CHECK(m_trap.count == 1);
  CHECK(amo_misaligned_cause(m_trap.cause));
  CHECK(m_trap.tval == (u64)words + 4);
  CHECK(words[0] == 0 && words[1] == 0);
  /* nothing is mapped at physical address 0 */
  trap_reset();
  v = LD("ld", (void *)0);
  EXPECT_M(CAUSE_LOAD_ACCESS, 0);
  trap_reset();
  v = LD("lbu", (void *)8);
  EXPECT_M(CAUSE_LOAD_ACCESS, 8);
  trap_reset();
  ST("sw", 5, (void *)16);
  EXPECT_M(CAUSE_STORE_ACCESS, 16);
  trap_reset();
  v = AMO("amoor.d", 1, (void *)0);
  CHECK(m_trap.count == 1);
  /* Spec: store/AMO access fault (7); QEMU 7.2 reports a load access fault (5). */
  CHECK(m_trap.cause == CAUSE_STORE_ACCESS || m_trap.cause == CAUSE_LOAD_ACCESS);
  CHECK(m_trap.tval == 0);
  /* fetch from 0: the handler returns to the caller */
  trap_reset();
  ((void (*)(void))0)();
  EXPECT_M(CAUSE_FETCH_ACCESS, 0);
  CHECK(m_trap.epc == 0);
}

/* PMP entry 0 denies everything in `words` to S/U; MPRV makes M loads use MPP's rights. */
static void mprv(void) {
  words[0] = 77;
  csr_write(pmpaddr0, ((u64)words >> 2) | 1); /* NAPOT 16 bytes */
  csr_write(pmpcfg0, 0x18);                   /* A = NAPOT, no R/W/X */
  trap_reset();
  CHECK(LD("ld", words) == 77);
  CHECK(m_trap.count == 0);
  csr_clear(mstatus, MSTATUS_MPP); /* MPP = U */
  csr_set(mstatus, MSTATUS_MPRV);
  u64 v = LD("ld", words);
  csr_clear(mstatus, MSTATUS_MPRV);
  (void)v;
  EXPECT_M(CAUSE_LOAD_ACCESS, (u64)words);
  trap_reset();
  csr_set(mstatus, MSTATUS_MPP | MSTATUS_MPRV); /* MPP = M: own rights */
  CHECK(LD("ld", words) == 77);
  csr_clear(mstatus, MSTATUS_MPRV);
  CHECK(m_trap.count == 0);
  csr_write(pmpcfg0, 0);
}

int main(void) {
  illegal();
  breakpoints();
  ecalls();
  privilege();
  delegation();
  misaligned_and_faults();
  mprv();
  return 0;
}
