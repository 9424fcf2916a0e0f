/*
 * Interrupt paths through the CLINT: machine timer (mtimecmp vs mtime), machine software
 * interrupt (msip), WFI wake-up with interrupts masked, M interrupts preempting U-mode
 * regardless of mstatus.MIE, and an M-injected STIP delegated to an S-mode handler.
 */
#include "test.h"

#define MIP_MSIP (1ull << IRQ_M_SOFT)
#define MIP_MTIP (1ull << IRQ_M_TIMER)
#define MIP_STIP (1ull << IRQ_S_TIMER)

static volatile int hook_calls;

static int clear_sources(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  if (cause == (CAUSE_INTERRUPT | IRQ_M_SOFT)) *CLINT_MSIP = 0;
  if (cause == (CAUSE_INTERRUPT | IRQ_M_TIMER)) *CLINT_MTIMECMP = ~0ull;
  if (cause == (CAUSE_INTERRUPT | IRQ_S_TIMER)) csr_clear(mip, MIP_STIP);
  hook_calls++;
  return 0; /* the default action also clears the enable bit */
}

static int s_clear_stip(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  hook_calls++;
  /* STIP is set by M; S cannot clear it, so S masks it (default action) */
  return cause != (CAUSE_INTERRUPT | IRQ_S_TIMER);
}

/* Spins (bounded) until the M handler has run. */
static long spin_until_trap(long limit) {
  long n = 0;
  while (m_trap.count == 0 && s_trap.count == 0 && n < limit) n++;
  return n;
}

static long spin(long limit) {
  for (volatile long n = 0; n < limit; n++) {
    if (s_trap.count) return 1;
  }
  return 0;
}

int main(void) {
  m_trap_hook = clear_sources;
  csr_write(mie, 0);
  csr_clear(mstatus, MSTATUS_MIE);

  /* timer pending is visible in mip without being taken while masked */
  *CLINT_MTIMECMP = 0;
  for (volatile int i = 0; i < 100 && !(csr_read(mip) & MIP_MTIP); i++) {
  }
  CHECK(csr_read(mip) & MIP_MTIP);
  *CLINT_MTIMECMP = ~0ull;
  CHECK((csr_read(mip) & MIP_MTIP) == 0);

  /* machine timer interrupt */
  trap_reset();
  *CLINT_MTIMECMP = *CLINT_MTIME + 1000;
  csr_set(mie, MIP_MTIP);
  csr_set(mstatus, MSTATUS_MIE);
  spin_until_trap(1l << 30);
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == (CAUSE_INTERRUPT | IRQ_M_TIMER));
  CHECK(*CLINT_MTIME >= 1000);

  /* machine software interrupt */
  trap_reset();
  *CLINT_MSIP = 1;
  CHECK(*CLINT_MSIP == 1);
  CHECK(csr_read(mip) & MIP_MSIP);
  csr_set(mie, MIP_MSIP);
  csr_set(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == (CAUSE_INTERRUPT | IRQ_M_SOFT));
  CHECK((csr_read(mip) & MIP_MSIP) == 0);

  /* WFI wakes on a pending enabled interrupt even with mstatus.MIE = 0 (no trap) */
  trap_reset();
  *CLINT_MTIMECMP = *CLINT_MTIME + 2000;
  csr_write(mie, MIP_MTIP);
  for (int i = 0; i < 100000 && !(csr_read(mip) & MIP_MTIP); i++) __asm__ volatile("wfi");
  CHECK(csr_read(mip) & MIP_MTIP);
  CHECK(m_trap.count == 0);
  *CLINT_MTIMECMP = ~0ull;
  csr_write(mie, 0);

  /* M interrupts preempt U-mode even with mstatus.MIE = 0 */
  trap_reset();
  csr_write(mie, MIP_MSIP);
  *CLINT_MSIP = 1;
  run_in_mode(PRV_U, spin_until_trap, 1l << 30);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == (CAUSE_INTERRUPT | IRQ_M_SOFT));
  CHECK(m_trap.prev_priv == PRV_U);
  CHECK(*CLINT_MSIP == 0);

  /* STIP written by M, delegated through mideleg, taken by S with sstatus.SIE */
  trap_reset();
  s_trap_hook = s_clear_stip;
  hook_calls = 0;
  csr_write(mideleg, MIP_STIP);
  csr_write(mie, MIP_STIP);
  csr_set(mip, MIP_STIP);
  CHECK(csr_read(mip) & MIP_STIP);
  CHECK(csr_read(sip) & MIP_STIP);
  csr_set(mstatus, MSTATUS_SIE);
  CHECK(run_in_mode(PRV_S, spin, 1l << 24) == 1);
  csr_clear(mstatus, MSTATUS_SIE);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == (CAUSE_INTERRUPT | IRQ_S_TIMER));
  CHECK(s_trap.prev_priv == 1);
  CHECK(m_trap.count == 0);
  CHECK((csr_read(mie) & MIP_STIP) == 0);
  csr_clear(mip, MIP_STIP);
  csr_write(mideleg, 0);
  return 0;
}
