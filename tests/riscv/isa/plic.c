/*
 * External interrupts on the virt board: the 16550 UART's transmit-empty interrupt
 * (source 10) through the PLIC to M-mode (MEIP) and, for the S context, to a delegated
 * S-mode handler (SEIP); priorities, threshold, claim/complete, and the gateway latching a
 * request after the level-triggered line drops (as QEMU's PLIC does).
 */
#include "test.h"

#define PLIC 0xc000000ul
#define PLIC_PRIORITY(src) ((volatile u32 *)(PLIC + 4 * (src)))
#define PLIC_PENDING ((volatile u32 *)(PLIC + 0x1000))
#define PLIC_ENABLE(ctx) ((volatile u32 *)(PLIC + 0x2000 + 0x80 * (ctx)))
#define PLIC_THRESHOLD(ctx) ((volatile u32 *)(PLIC + 0x200000 + 0x1000 * (ctx)))
#define PLIC_CLAIM(ctx) ((volatile u32 *)(PLIC + 0x200004 + 0x1000 * (ctx)))
#define UART_IER ((volatile unsigned char *)0x10000001ul)
#define UART_IRQ 10
#define CTX_M 0
#define CTX_S 1
#define MIP_MEIP (1ull << 11)
#define MIP_SEIP (1ull << 9)

static volatile u32 claimed;

/* Claims the source, silences the UART, completes. */
static int m_external(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  if (cause != (CAUSE_INTERRUPT | 11)) return 0;
  claimed = *PLIC_CLAIM(CTX_M);
  *UART_IER = 0;
  *PLIC_CLAIM(CTX_M) = claimed;
  return 1;
}

static int s_external(struct trap_frame *f, u64 cause, u64 tval) {
  (void)f;
  (void)tval;
  if (cause != (CAUSE_INTERRUPT | 9)) return 0;
  claimed = *PLIC_CLAIM(CTX_S);
  *UART_IER = 0;
  *PLIC_CLAIM(CTX_S) = claimed;
  return 1;
}

static long s_wait(long limit) {
  for (long n = 0; n < limit; n++) {
    if (s_trap.count) return 1;
  }
  return 0;
}

int main(void) {
  csr_write(mie, 0);
  *UART_IER = 0;
  *PLIC_PRIORITY(UART_IRQ) = 1;
  CHECK(*PLIC_PRIORITY(UART_IRQ) == 1);
  *PLIC_ENABLE(CTX_M) = 1u << UART_IRQ;
  *PLIC_THRESHOLD(CTX_M) = 0;
  *PLIC_ENABLE(CTX_S) = 0;

  /* transmitter empty + ETBEI -> source 10 pending -> MEIP */
  *UART_IER = 0x02;
  for (volatile int i = 0; i < 1000 && !(csr_read(mip) & MIP_MEIP); i++) {
  }
  CHECK(*PLIC_PENDING & (1u << UART_IRQ));
  CHECK(csr_read(mip) & MIP_MEIP);

  /* a threshold at the source's priority masks it */
  *PLIC_THRESHOLD(CTX_M) = 1;
  for (volatile int i = 0; i < 1000 && (csr_read(mip) & MIP_MEIP); i++) {
  }
  CHECK((csr_read(mip) & MIP_MEIP) == 0);
  *PLIC_THRESHOLD(CTX_M) = 0;

  /* taken in M-mode: claim returns the source, complete after silencing the UART */
  m_trap_hook = m_external;
  trap_reset();
  claimed = 0;
  csr_write(mie, MIP_MEIP);
  csr_set(mstatus, MSTATUS_MIE);
  for (volatile int i = 0; i < 100000 && !m_trap.count; i++) {
  }
  csr_clear(mstatus, MSTATUS_MIE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == (CAUSE_INTERRUPT | 11));
  CHECK(claimed == UART_IRQ);
  CHECK((csr_read(mip) & MIP_MEIP) == 0);
  CHECK(*PLIC_CLAIM(CTX_M) == 0); /* nothing left */

  /* the S context: SEIP delegated to the S handler */
  *PLIC_ENABLE(CTX_M) = 0;
  *PLIC_ENABLE(CTX_S) = 1u << UART_IRQ;
  *PLIC_THRESHOLD(CTX_S) = 0;
  s_trap_hook = s_external;
  csr_write(mideleg, MIP_SEIP);
  csr_write(mie, MIP_SEIP);
  trap_reset();
  claimed = 0;
  *UART_IER = 0x02;
  csr_set(mstatus, MSTATUS_SIE);
  CHECK(run_in_mode(PRV_S, s_wait, 1l << 24) == 1);
  csr_clear(mstatus, MSTATUS_SIE);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == (CAUSE_INTERRUPT | 9));
  CHECK(claimed == UART_IRQ);
  CHECK(m_trap.count == 0);
  CHECK((csr_read(mip) & MIP_SEIP) == 0);
  csr_write(mideleg, 0);
  csr_write(mie, 0);
  *PLIC_ENABLE(CTX_S) = 0;

  /* the gateway latches a request: pending stays set after the line drops, until claimed */
  *PLIC_ENABLE(CTX_M) = 1u << UART_IRQ;
  *UART_IER = 0x02;
  for (volatile int i = 0; i < 1000 && !(*PLIC_PENDING & (1u << UART_IRQ)); i++) {
  }
  CHECK(*PLIC_PENDING & (1u << UART_IRQ));
  *UART_IER = 0;
  for (volatile int i = 0; i < 1000; i++) {
  }
  CHECK(*PLIC_PENDING & (1u << UART_IRQ));
  CHECK(csr_read(mip) & MIP_MEIP);
  CHECK(*PLIC_CLAIM(CTX_M) == UART_IRQ);
  CHECK((*PLIC_PENDING & (1u << UART_IRQ)) == 0);
  *PLIC_CLAIM(CTX_M) = UART_IRQ;
  CHECK((csr_read(mip) & MIP_MEIP) == 0);
  *PLIC_ENABLE(CTX_M) = 0;
  return 0;
}
