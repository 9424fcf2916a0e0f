/* rt_main: PMP allow-all, then main(); prints PASS or FAIL and exits through HTIF. */
#include "test.h"

int main(void);

void pmp_allow_all(void) {
  /* Entry 15, NAPOT over the whole address space, RWX: S/U may touch anything. */
  csr_write(pmpaddr15, ~0ull >> 10);
  u64 cfg = csr_read(pmpcfg2);
  cfg &= ~(0xffull << 56);
  cfg |= 0x1full << 56;
  csr_write(pmpcfg2, cfg);
}

/* Harts other than 0 run this (programs that use several harts define their own). */
__attribute__((weak)) void rt_secondary(u64 hartid) {
  (void)hartid;
  for (;;) __asm__ volatile("wfi");
}

void rt_main(void) {
  pmp_allow_all();
  int r = main();
  if (r == 0) {
    htif_puts("PASS\n");
  } else {
    htif_puts("FAIL ");
    print_dec(r);
    htif_putchar('\n');
  }
  htif_exit(r);
}
