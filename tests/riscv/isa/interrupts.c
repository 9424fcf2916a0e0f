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
static int clear_sources(struct trap_frame *f, u64 cause, u64 tval);

/* mtvec vectored mode: interrupt n enters at base + 4n; stubs mark mtval = 16 + n. */
__asm__(".text\n.align 8\n.globl vector_table\nvector_table:\n"
        ".option push\n.option norvc\n"
        "j m_trap_entry\nj vstub1\nj vstub2\nj vstub3\nj vstub4\nj vstub5\nj vstub6\nj vstub7\n"
        ".option pop\n"
        "vstub1: csrwi mtval, 17\nj m_trap_entry\nvstub2: csrwi mtval, 18\nj m_trap_entry\n"
        "vstub3: csrwi mtval, 19\nj m_trap_entry\nvstub4: csrwi mtval, 20\nj m_trap_entry\n"
        "vstub5: csrwi mtval, 21\nj m_trap_entry\nvstub6: csrwi mtval, 22\nj m_trap_entry\n"
        "vstub7: csrwi mtval, 23\nj m_trap_entry\n");
extern char vector_table[];

/* Causes of the traps taken, in order. */
static volatile u64 order[4];
static volatile int order_n;
static int record_order(struct trap_frame *f, u64 cause, u64 tval) {
  if (order_n < 4) order[order_n++] = cause;
  return clear_sources(f, cause, tval);
}

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

static int s_clear_ssip(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  if (cause == (CAUSE_INTERRUPT | IRQ_S_SOFT)) csr_clear(sip, 1 << IRQ_S_SOFT);
  return 1;
}

static long s_raise_ssip(long arg) {
  (void)arg;
  s_trap_hook = s_clear_ssip;
  csr_set(sip, 1 << IRQ_S_SOFT);
  for (volatile long n = 0; n < (1l << 20); n++) {
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

  /* priority: MSI before MTI when both are pending and enabled */
  trap_reset();
  m_trap_hook = record_order;
  order_n = 0;
  *CLINT_MSIP = 1;
  *CLINT_MTIMECMP = 0;
  for (volatile int i = 0; i < 100 && !(csr_read(mip) & MIP_MTIP); i++) {
  }
  csr_write(mie, MIP_MSIP | MIP_MTIP);
  csr_set(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(order_n == 2);
  CHECK(order[0] == (CAUSE_INTERRUPT | IRQ_M_SOFT));
  CHECK(order[1] == (CAUSE_INTERRUPT | IRQ_M_TIMER));

  /* vectored mtvec: interrupts enter at base + 4 * cause, exceptions at base */
  u64 direct = csr_read(mtvec);
  csr_write(mtvec, (u64)vector_table | 1);
  CHECK(csr_read(mtvec) == ((u64)vector_table | 1));
  trap_reset();
  *CLINT_MSIP = 1;
  csr_write(mie, MIP_MSIP);
  csr_set(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == (CAUSE_INTERRUPT | IRQ_M_SOFT));
  CHECK(m_trap.tval == 16 + IRQ_M_SOFT);
  trap_reset();
  *CLINT_MTIMECMP = 0;
  csr_write(mie, MIP_MTIP);
  csr_set(mstatus, MSTATUS_MIE);
  spin_until_trap(1l << 30);
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.tval == 16 + IRQ_M_TIMER);
  trap_reset();
  __asm__ volatile("ebreak");
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_BREAKPOINT);
  csr_write(mtvec, direct);

  /* S software interrupt: S sets its own SSIP through sip, delegated to S */
  m_trap_hook = clear_sources;
  trap_reset();
  csr_write(mideleg, 1 << IRQ_S_SOFT);
  csr_write(mie, 1 << IRQ_S_SOFT);
  csr_set(mstatus, MSTATUS_SIE);
  CHECK(run_in_mode(PRV_S, s_raise_ssip, 0) == 1);
  csr_clear(mstatus, MSTATUS_SIE);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == (CAUSE_INTERRUPT | IRQ_S_SOFT));
  CHECK(m_trap.count == 0);
  CHECK((csr_read(mip) & (1 << IRQ_S_SOFT)) == 0);
  csr_write(mideleg, 0);
  csr_write(mie, 0);
  return 0;
}
