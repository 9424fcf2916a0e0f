/* Default M/S trap handlers: record cause/tval/epc, skip the faulting instruction. */
#include "test.h"

volatile struct trap_record m_trap;
volatile struct trap_record s_trap;
trap_hook_t m_trap_hook;
trap_hook_t s_trap_hook;

extern char rim_resume[];

void trap_reset(void) {
  m_trap.count = m_trap.cause = m_trap.tval = m_trap.epc = m_trap.prev_priv = 0;
  s_trap.count = s_trap.cause = s_trap.tval = s_trap.epc = s_trap.prev_priv = 0;
}

/* Length of the instruction at epc (identity-mapped code only). */
static u64 insn_length(u64 epc) {
  u32 low = *(volatile unsigned short *)epc;
  return (low & 3) == 3 ? 4 : 2;
}

static void default_action(struct trap_frame *f, u64 cause, int machine) {
  if (cause & CAUSE_INTERRUPT) {
    u64 bit = 1ull << (cause & 63);
    if (machine) csr_clear(mie, bit);
    else csr_clear(sie, bit);
    return;
  }
  if (cause == CAUSE_MISALIGNED_FETCH || cause == CAUSE_FETCH_ACCESS ||
      cause == CAUSE_FETCH_PAGE_FAULT) {
    f->epc = f->x[1]; /* faulting jump target: return to the caller */
    return;
  }
  f->epc += insn_length(f->epc);
}

void m_trap_handler(struct trap_frame *f) {
  u64 cause = csr_read(mcause);
  u64 tval = csr_read(mtval);
  u64 is_ecall = cause == CAUSE_USER_ECALL || cause == CAUSE_SUPERVISOR_ECALL ||
                 cause == CAUSE_MACHINE_ECALL;
  if (is_ecall && f->x[17] == RIM_MAGIC) {
    /* End of run_in_mode(): continue in M-mode at rim_resume, a0 = fn's result. */
    csr_set(mstatus, MSTATUS_MPP);
    csr_clear(mstatus, MSTATUS_MPRV);
    f->epc = (u64)rim_resume;
    return;
  }
  m_trap.count++;
  m_trap.cause = cause;
  m_trap.tval = tval;
  m_trap.epc = f->epc;
  m_trap.prev_priv = (csr_read(mstatus) >> 11) & 3;
  if (m_trap_hook && m_trap_hook(f, cause, tval)) return;
  default_action(f, cause, 1);
}

void s_trap_handler(struct trap_frame *f) {
  u64 cause = csr_read(scause);
  u64 tval = csr_read(stval);
  if (cause == CAUSE_USER_ECALL && f->x[17] == RIM_MAGIC) {
    /* run_in_mode() ending in U-mode with U ecalls delegated: forward to M. */
    register u64 a0 __asm__("a0") = f->x[10];
    register u64 a7 __asm__("a7") = RIM_MAGIC;
    __asm__ volatile("ecall" : : "r"(a0), "r"(a7) : "memory");
  }
  s_trap.count++;
  s_trap.cause = cause;
  s_trap.tval = tval;
  s_trap.epc = f->epc;
  s_trap.prev_priv = (csr_read(sstatus) >> 8) & 1;
  if (s_trap_hook && s_trap_hook(f, cause, tval)) return;
  default_action(f, cause, 0);
}
