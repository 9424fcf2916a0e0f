/*
 * A data race between a timer interrupt and a loop, for record/replay with gdb: the loop adds 1
 * to `hits` with a plain load, add and store (bump), the timer handler adds 1000 to it. An
 * interrupt that lands between bump's load and its store loses the handler's 1000, and main
 * ends in race_lost. Whether one lands there depends on the loop's phase against the timer,
 * which comes from the RTC: a recording fails or passes depending on when it was made.
 */
#include "test.h"

/* The goldfish RTC of QEMU virt (and vmesh): TIME_LOW, nanoseconds. */
#define RTC_TIME_LOW ((volatile u32 *)0x101000ul)
/* mtime ticks between timer interrupts. */
#define PERIOD 8000
#define LOOPS 60000

volatile u64 hits;
volatile u64 ticks;
/* Where the last timer interrupt found the loop (the interrupted pc). */
volatile u64 last_epc;

/* Each timer interrupt passes here with the pc it interrupted (a place for a breakpoint). */
void __attribute__((noinline)) timer_seen(u64 epc) { last_epc = epc; }

static int on_timer(struct trap_frame *f, u64 cause, u64 tval) {
  (void)tval;
  if (cause != (CAUSE_INTERRUPT | IRQ_M_TIMER)) return 0;
  timer_seen(f->epc);
  hits += 1000;
  ticks++;
  *CLINT_MTIMECMP = *CLINT_MTIME + PERIOD;
  return 1;
}

/* hits = hits + 1 as a plain load, add and store, with labels between them. */
void bump(void);
__asm__(".text\n.globl bump\nbump:\n"
        "  la a4, hits\n  ld a5, 0(a4)\n"
        ".globl bump_add\nbump_add:\n  addi a5, a5, 1\n"
        ".globl bump_store\nbump_store:\n  sd a5, 0(a4)\n  ret\n");

void __attribute__((noinline)) race_lost(u64 got, u64 want) {
  htif_puts("race lost: hits ");
  print_dec((i64)got);
  htif_puts(", want ");
  print_dec((i64)want);
  htif_putchar('\n');
}

int main(void) {
  /* The loop's phase against the timer: from the time of day (milliseconds). */
  u32 skew = (*RTC_TIME_LOW / 1000000u) % 97u;
  for (volatile u32 i = 0; i < skew; i++) {
  }
  m_trap_hook = on_timer;
  *CLINT_MTIMECMP = *CLINT_MTIME + PERIOD;
  csr_set(mie, 1u << IRQ_M_TIMER);
  csr_set(mstatus, MSTATUS_MIE);
  for (long i = 0; i < LOOPS; i++) bump();
  csr_clear(mstatus, MSTATUS_MIE);
  u64 want = LOOPS + 1000 * ticks;
  htif_puts("ticks ");
  print_dec((i64)ticks);
  htif_putchar('\n');
  if (hits != want) {
    race_lost(hits, want);
    return 1;
  }
  return 0;
}
