/*
 * Zicntr: cycle/instret count up (and are writable through mcycle/minstret), time follows
 * the CLINT's mtime. Built for the virt board: QEMU provides the time CSR only there.
 */
#include "test.h"

int main(void) {
  u64 c0, c1, i0, i1, mc, mi;
  __asm__ volatile("rdcycle %0\nrdinstret %1" : "=r"(c0), "=r"(i0));
  for (volatile int k = 0; k < 1000; k++) {
  }
  __asm__ volatile("rdcycle %0\nrdinstret %1" : "=r"(c1), "=r"(i1));
  CHECK(c1 > c0);
  CHECK(i1 > i0);
  mc = csr_read(mcycle);
  mi = csr_read(minstret);
  CHECK(mc >= c1);
  CHECK(mi >= i1);
  /* writable in M-mode */
  csr_write(minstret, 0x100000000000ull);
  CHECK(csr_read(minstret) >= 0x100000000000ull);
  csr_write(mcycle, 0x200000000000ull);
  CHECK(csr_read(mcycle) >= 0x200000000000ull);

  /* time is mtime */
  u64 t0, m, t1;
  __asm__ volatile("rdtime %0" : "=r"(t0));
  m = *CLINT_MTIME;
  __asm__ volatile("rdtime %0" : "=r"(t1));
  CHECK(t0 <= m && m <= t1);
  u64 spins = 0;
  do {
    __asm__ volatile("rdtime %0" : "=r"(t1));
  } while (t1 == t0 && ++spins < (1ull << 28));
  CHECK(t1 > t0);
  return 0;
}
