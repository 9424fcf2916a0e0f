/*
 * Zicsr: csrrw/csrrs/csrrc and their immediate forms (old value returned, x0 rules),
 * read-only and unknown CSRs trap as illegal, sstatus/sie are views of mstatus/mie, misa.
 */
#include "test.h"

#define CSRRW(csr, v) ({ u64 o_; __asm__ volatile("csrrw %0, " #csr ", %1" : "=r"(o_) : "r"((u64)(v)) : "memory"); o_; })
#define CSRRS(csr, v) ({ u64 o_; __asm__ volatile("csrrs %0, " #csr ", %1" : "=r"(o_) : "r"((u64)(v)) : "memory"); o_; })
#define CSRRC(csr, v) ({ u64 o_; __asm__ volatile("csrrc %0, " #csr ", %1" : "=r"(o_) : "r"((u64)(v)) : "memory"); o_; })
#define CSRRWI(csr, i) ({ u64 o_; __asm__ volatile("csrrwi %0, " #csr ", " #i : "=r"(o_) :: "memory"); o_; })
#define CSRRSI(csr, i) ({ u64 o_; __asm__ volatile("csrrsi %0, " #csr ", " #i : "=r"(o_) :: "memory"); o_; })
#define CSRRCI(csr, i) ({ u64 o_; __asm__ volatile("csrrci %0, " #csr ", " #i : "=r"(o_) :: "memory"); o_; })

#define expect_illegal() do { CHECK(m_trap.count == 1); \
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION); \
  CHECK(m_trap.tval == *(volatile u32 *)m_trap.epc); } while (0)

static long user_cycle(long arg) {
  (void)arg;
  u64 v;
  __asm__ volatile("rdcycle %0" : "=r"(v));
  return 1;
}

int main(void) {
  /* read-modify-write on the scratch CSRs (they hold the trap stacks: restored below) */
  u64 msave = csr_read(mscratch), ssave = csr_read(sscratch);
  csr_write(mscratch, 0x1234);
  CHECK(CSRRW(mscratch, 0xf0f0) == 0x1234);
  CHECK(CSRRS(mscratch, 0x0f00) == 0xf0f0);
  CHECK(CSRRC(mscratch, 0x00f0) == 0xfff0);
  CHECK(csr_read(mscratch) == 0xff00);
  CHECK(CSRRWI(mscratch, 31) == 0xff00);
  CHECK(CSRRSI(mscratch, 0x20 - 0x20 + 0) == 31); /* uimm 0: no write */
  CHECK(CSRRCI(mscratch, 5) == 31);
  CHECK(CSRRSI(mscratch, 8) == 26);
  CHECK(csr_read(mscratch) == 26);
  CHECK(CSRRW(mscratch, -1) == 26);
  CHECK(csr_read(mscratch) == ~0ull); /* full 64-bit width */
  csr_write(sscratch, 0x55);
  CHECK(CSRRC(sscratch, -1) == 0x55);
  CHECK(csr_read(sscratch) == 0);

  /* csrrw with rd = x0 still writes; csrrs with rs1 = x0 only reads */
  __asm__ volatile("li t0, 77\ncsrrw x0, mscratch, t0" ::: "t0");
  CHECK(csr_read(mscratch) == 77);
  csr_write(mscratch, msave);
  csr_write(sscratch, ssave);

  /* read-only CSRs: reading is fine, any write traps */
  trap_reset();
  u64 hart = csr_read(mhartid);
  u64 vendor = csr_read(mvendorid);
  (void)vendor;
  CHECK(hart == 0);
  CHECK(m_trap.count == 0);
  __asm__ volatile("csrw mhartid, %0" :: "r"(5ull));
  expect_illegal();
  trap_reset();
  __asm__ volatile("li t1, 1\ncsrrs t0, mimpid, t1" ::: "t0", "t1");
  expect_illegal();
  trap_reset();
  __asm__ volatile("csrrsi t0, marchid, 1" ::: "t0");
  expect_illegal();
  trap_reset();
  __asm__ volatile("csrrs t0, cycle, x0\ncsrrsi t0, instret, 0" ::: "t0");
  CHECK(m_trap.count == 0);
  __asm__ volatile("csrw cycle, x0");
  expect_illegal();
  /* an unimplemented CSR number */
  trap_reset();
  __asm__ volatile("csrr t0, 0x8c0" ::: "t0");
  expect_illegal();

  /* misa: RV64 with I, M, A, F, D, C, S, U */
  u64 misa = csr_read(misa);
  CHECK((misa >> 62) == 2);
  const char *want = "IMAFDCSU";
  for (const char *p = want; *p; p++) CHECK(misa & (1ull << (*p - 'A')));

  /* sstatus is a restricted view of mstatus */
  csr_clear(mstatus, MSTATUS_SUM | MSTATUS_MXR);
  csr_set(sstatus, MSTATUS_SUM);
  CHECK(csr_read(mstatus) & MSTATUS_SUM);
  csr_clear(mstatus, MSTATUS_SUM);
  CHECK((csr_read(sstatus) & MSTATUS_SUM) == 0);
  csr_set(sstatus, MSTATUS_MPP | MSTATUS_MIE); /* M-only bits are invisible in sstatus */
  CHECK((csr_read(sstatus) & (MSTATUS_MPP | MSTATUS_MIE)) == 0);
  /* sie shows the S bits of mie (delegated ones); writes to M bits are ignored */
  csr_write(mideleg, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER));
  csr_write(mie, 0);
  csr_write(sie, (1 << IRQ_S_SOFT) | (1 << IRQ_M_TIMER));
  CHECK(csr_read(mie) == (1 << IRQ_S_SOFT));
  CHECK(csr_read(sie) == (1 << IRQ_S_SOFT));
  csr_write(mie, 0);
  /* (xepc bit 0 is WARL zero by the spec, but QEMU 7.2 keeps it: not checked here.) */

  /* counters in U-mode need mcounteren/scounteren */
  csr_write(mcounteren, 0);
  trap_reset();
  run_in_mode(PRV_U, user_cycle, 0);
  expect_illegal();
  csr_write(mcounteren, 7);
  csr_write(scounteren, 7);
  trap_reset();
  CHECK(run_in_mode(PRV_U, user_cycle, 0) == 1);
  CHECK(m_trap.count == 0);
  csr_write(mcounteren, 0);
  csr_write(scounteren, 0);
  return 0;
}
