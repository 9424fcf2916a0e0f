/*
 * MMIO cost per access (services/cpu/smp_bench.ts): N loads and N stores of the UART scratch
 * register (a device on the main thread: with --smp-threads a load is a mailbox round trip, a
 * store is posted), N loads of the CLINT's mtime and N loads of a PLIC priority register (both
 * served in the hart's own thread), timed by the time CSR (10 MHz).
 * Prints "mmio <what> <picoseconds per access>" lines.
 */
#include "test.h"

#ifndef N
#define N 20000
#endif
#define UART_SCR ((volatile unsigned char *)0x10000007ul)
#define MTIME_LO ((volatile u32 *)(0x2000000ul + 0xbff8))
#define PLIC_PRIO1 ((volatile u32 *)(0xc000000ul + 4))

static void report(const char *what, u64 ticks) {
  htif_puts("mmio ");
  htif_puts(what);
  htif_putchar(' ');
  print_dec((i64)(ticks * 100000 / N)); /* ticks of 100 ns -> ps per access */
  htif_putchar('\n');
}

int main(void) {
  u64 t0 = csr_read(time);
  for (int i = 0; i < N; i++) (void)*UART_SCR;
  u64 t1 = csr_read(time);
  for (int i = 0; i < N; i++) *UART_SCR = (unsigned char)i;
  u64 t2 = csr_read(time);
  for (int i = 0; i < N; i++) (void)*MTIME_LO;
  u64 t3 = csr_read(time);
  for (int i = 0; i < N; i++) __asm__ volatile("" ::: "memory");
  u64 t4 = csr_read(time);
  for (int i = 0; i < N; i++) (void)*PLIC_PRIO1;
  u64 t5 = csr_read(time);
  /* A load after a store waits for the posted store to be served first. */
  for (int i = 0; i < N; i++) {
    *UART_SCR = (unsigned char)i;
    (void)*UART_SCR;
  }
  u64 t6 = csr_read(time);
  report("uart-load", t1 - t0);
  report("uart-store", t2 - t1);
  report("clint-load", t3 - t2);
  report("empty-loop", t4 - t3);
  report("plic-load", t5 - t4);
  report("uart-store-load", t6 - t5);
  return 0;
}
