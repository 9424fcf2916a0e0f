/*
 * PMP: S/U accesses checked against TOR, NA4 and NAPOT entries (lowest entry wins over the
 * runtime's allow-all entry 15), M-mode exempt unless the entry is locked.
 */
#include "ops.h"

#define PMP_R 0x01ull
#define PMP_W 0x02ull
#define PMP_X 0x04ull
#define PMP_TOR 0x08ull
#define PMP_NA4 0x10ull
#define PMP_NAPOT 0x18ull
#define PMP_L 0x80ull

static volatile u64 region[1024] __attribute__((aligned(4096)));
static volatile u64 napot[512] __attribute__((aligned(4096)));

static long s_load(long va) {
  return (long)LD("ld", (void *)va);
}
static long s_load_w(long va) {
  return (long)LD("lw", (void *)va);
}
static long s_store(long va) {
  ST("sd", 0x77, (void *)va);
  return 0;
}
static long s_store_w(long va) {
  ST("sw", 0x66, (void *)va);
  return 0;
}
static long s_call(long va) {
  ((void (*)(void))va)();
  return 0;
}

#define EXPECT_FAULT(c, tv) do { CHECK(m_trap.count == 1); CHECK(m_trap.cause == (c)); \
  CHECK(m_trap.tval == (u64)(tv)); trap_reset(); } while (0)
#define EXPECT_OK() do { CHECK(m_trap.count == 0); } while (0)

static void set_cfg(int entry, u64 cfg) {
  u64 all = csr_read(pmpcfg0);
  all &= ~(0xffull << (entry * 8));
  all |= cfg << (entry * 8);
  csr_write(pmpcfg0, all);
}

int main(void) {
  u64 base = (u64)region, top = base + sizeof region;
  region[0] = 10;
  region[1] = 11;
  napot[0] = 20;

  /* S-mode works through the runtime's allow-all entry */
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, (long)&region[0]) == 10);
  EXPECT_OK();

  /* TOR: entry 1 covers [pmpaddr0, pmpaddr1) read-only */
  csr_write(pmpaddr0, base >> 2);
  csr_write(pmpaddr1, top >> 2);
  set_cfg(0, 0);
  set_cfg(1, PMP_TOR | PMP_R);
  CHECK(csr_read(pmpaddr1) == top >> 2);
  CHECK(((csr_read(pmpcfg0) >> 8) & 0xff) == (PMP_TOR | PMP_R));
  CHECK(run_in_mode(PRV_S, s_load, (long)&region[1]) == 11);
  EXPECT_OK();
  run_in_mode(PRV_S, s_store, (long)&region[1]);
  EXPECT_FAULT(CAUSE_STORE_ACCESS, &region[1]);
  CHECK(region[1] == 11);
  run_in_mode(PRV_U, s_store, (long)&region[1023]);
  EXPECT_FAULT(CAUSE_STORE_ACCESS, &region[1023]);
  run_in_mode(PRV_S, s_call, (long)&region[2]); /* not executable */
  EXPECT_FAULT(CAUSE_FETCH_ACCESS, &region[2]);
  run_in_mode(PRV_S, s_store, (long)top); /* just above the top: allowed by entry 15 */
  EXPECT_OK();
  ST("sd", 12, &region[1]); /* M-mode is not checked (entry unlocked) */
  CHECK(region[1] == 12);
  set_cfg(1, 0);

  /* NA4: exactly one 4-byte word denied */
  csr_write(pmpaddr2, ((u64)&region[8]) >> 2);
  set_cfg(2, PMP_NA4);
  run_in_mode(PRV_S, s_load_w, (long)&region[8]);
  EXPECT_FAULT(CAUSE_LOAD_ACCESS, &region[8]);
  run_in_mode(PRV_S, s_store_w, (long)&region[8] + 4);
  EXPECT_OK();
  /* an access matching only part of an entry fails, even in M-mode */
  run_in_mode(PRV_S, s_load, (long)&region[8]);
  EXPECT_FAULT(CAUSE_LOAD_ACCESS, &region[8]);
  LD("ld", &region[8]);
  EXPECT_FAULT(CAUSE_LOAD_ACCESS, &region[8]);
  set_cfg(2, 0);
  CHECK(region[8] == 0x6600000000ull);

  /* NAPOT: a 4 KiB region, no permissions; neighbours are fine */
  csr_write(pmpaddr3, ((u64)napot >> 2) | ((4096 >> 3) - 1));
  set_cfg(3, PMP_NAPOT);
  run_in_mode(PRV_S, s_load, (long)&napot[0]);
  EXPECT_FAULT(CAUSE_LOAD_ACCESS, &napot[0]);
  run_in_mode(PRV_U, s_store, (long)&napot[511]);
  EXPECT_FAULT(CAUSE_STORE_ACCESS, &napot[511]);
  run_in_mode(PRV_S, s_load, (long)&region[1023]);
  EXPECT_OK();
  run_in_mode(PRV_S, s_load, (long)&napot[511] + 8);
  EXPECT_OK();
  /* lower entries win: entry 1 allowing R over the same range does not help entry 3 */
  set_cfg(3, 0);
  set_cfg(0, PMP_NAPOT);
  csr_write(pmpaddr0, ((u64)napot >> 2) | ((4096 >> 3) - 1));
  csr_write(pmpaddr4, ((u64)napot >> 2) | ((4096 >> 3) - 1));
  set_cfg(4, PMP_NAPOT | PMP_R | PMP_W);
  run_in_mode(PRV_S, s_load, (long)&napot[0]);
  EXPECT_FAULT(CAUSE_LOAD_ACCESS, &napot[0]);
  set_cfg(0, 0);
  CHECK(run_in_mode(PRV_S, s_load, (long)&napot[0]) == 20);
  EXPECT_OK();
  set_cfg(4, 0);

  /* a locked entry applies to M-mode too and ignores further writes */
  csr_write(pmpaddr5, ((u64)&region[100]) >> 2);
  set_cfg(5, PMP_NA4 | PMP_R | PMP_L);
  ST("sw", 1, &region[100]);
  EXPECT_FAULT(CAUSE_STORE_ACCESS, &region[100]);
  set_cfg(5, 0);
  CHECK(((csr_read(pmpcfg0) >> 40) & 0xff) == (PMP_NA4 | PMP_R | PMP_L));
  csr_write(pmpaddr5, 0);
  CHECK(csr_read(pmpaddr5) == ((u64)&region[100]) >> 2);
  CHECK(LD("lw", &region[100]) == 0);
  EXPECT_OK();
  return 0;
}
