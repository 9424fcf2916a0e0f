/*
 * Sstc: with menvcfg.STCE, stimecmp drives mip.STIP and S-mode takes its timer interrupt
 * from its own stimecmp writes; without STCE, S-mode access to stimecmp is illegal.
 * Built for the virt board (QEMU provides time/Sstc only there).
 */
#include "test.h"

#define MENVCFG 0x30a
#define STIMECMP 0x14d
#define MENVCFG_STCE (1ull << 63)
#define MIP_STIP (1ull << IRQ_S_TIMER)

static int s_timer_hook(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  if (cause == (CAUSE_INTERRUPT | IRQ_S_TIMER)) csr_write(STIMECMP, ~0ull);
  return 0;
}

/* In S-mode: arm stimecmp a little ahead and wait (bounded) for the interrupt. */
static long s_arm_and_wait(long delta) {
  u64 now;
  __asm__ volatile("rdtime %0" : "=r"(now));
  csr_write(STIMECMP, now + (u64)delta);
  csr_set(sie, MIP_STIP);
  csr_set(sstatus, MSTATUS_SIE);
  for (long n = 0; n < (1l << 30); n++) {
    if (s_trap.count) break;
  }
  csr_clear(sstatus, MSTATUS_SIE);
  return (long)s_trap.count;
}

static long s_read_stimecmp(long arg) {
  (void)arg;
  return (long)csr_read(STIMECMP);
}

int main(void) {
  csr_write(mie, 0);
  csr_write(mcounteren, 2); /* TM: S may read time */
  csr_set(MENVCFG, MENVCFG_STCE);
  CHECK(csr_read(MENVCFG) & MENVCFG_STCE);

  /* STIP follows time >= stimecmp and cannot be written directly */
  csr_write(STIMECMP, 0);
  CHECK(csr_read(mip) & MIP_STIP);
  csr_write(STIMECMP, ~0ull);
  CHECK((csr_read(mip) & MIP_STIP) == 0);
  csr_set(mip, MIP_STIP);
  CHECK((csr_read(mip) & MIP_STIP) == 0);

  /* S-mode timer from stimecmp, delegated */
  s_trap_hook = s_timer_hook;
  csr_write(mideleg, MIP_STIP);
  csr_write(mie, MIP_STIP);
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_arm_and_wait, 1000) == 1);
  CHECK(s_trap.cause == (CAUSE_INTERRUPT | IRQ_S_TIMER));
  CHECK(m_trap.count == 0);
  CHECK(csr_read(STIMECMP) == ~0ull);
  CHECK((csr_read(mip) & MIP_STIP) == 0);

  /* without STCE, stimecmp is not accessible from S */
  csr_clear(MENVCFG, MENVCFG_STCE);
  trap_reset();
  run_in_mode(PRV_S, s_read_stimecmp, 0);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);
  csr_write(mideleg, 0);
  csr_write(mie, 0);
  return 0;
}
