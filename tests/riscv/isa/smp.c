/*
 * SMP: four harts hammer one AMO counter, one LR/SC counter and a ticket lock guarding a plain
 * counter (exact totals checked), pass messages (data, fence, flag: the reader must see the
 * data), and each secondary sleeps in WFI until hart 0 wakes it with a CLINT msip IPI.
 * Run with -smp 4 (QEMU) / --smp 4 (vmesh).
 */
#include "test.h"

/* Overridable (-DNHARTS=2 -DITERS=...): tests/smp_threads_test.ts runs 2 and 4 harts. */
#ifndef NHARTS
#define NHARTS 4
#endif
#ifndef ITERS
#define ITERS 3000
#endif
#define LOCK_ITERS 300
#define CLINT_MSIP(h) ((volatile u32 *)(0x2000000ul + 4 * (h)))
#define MIP_MSIP (1ull << 3)

/* In .data, not .bss: secondaries read it before hart 0 has zeroed .bss. */
volatile u64 smp_go __attribute__((section(".data"))) = 0;

static volatile u64 arrived, done, woken;
static volatile u64 amo_counter, lrsc_counter, locked_counter;
static volatile u32 ticket_next, ticket_serving;
static volatile u64 mp_data[NHARTS], mp_flag[NHARTS];
static volatile u64 ipi_seen[NHARTS];

static void lrsc_add(volatile u64 *p, u64 v) {
  u64 old, fail;
  __asm__ volatile(
      "1: lr.d %0, (%2)\n"
      "   add %0, %0, %3\n"
      "   sc.d %1, %0, (%2)\n"
      "   bnez %1, 1b\n"
      : "=&r"(old), "=&r"(fail)
      : "r"(p), "r"(v)
      : "memory");
}

static void ticket_lock(void) {
  u32 t = __atomic_fetch_add(&ticket_next, 1, __ATOMIC_ACQUIRE);
  while (__atomic_load_n(&ticket_serving, __ATOMIC_ACQUIRE) != t) {
  }
}

static void ticket_unlock(void) {
  __atomic_store_n(&ticket_serving, ticket_serving + 1, __ATOMIC_RELEASE);
}

static void work(u64 hart) {
  for (int i = 0; i < ITERS; i++) {
    __atomic_fetch_add(&amo_counter, 1, __ATOMIC_RELAXED);
    lrsc_add(&lrsc_counter, 1);
  }
  for (int i = 0; i < LOCK_ITERS; i++) {
    ticket_lock();
    locked_counter = locked_counter + 1; /* a plain load and store, under the lock */
    ticket_unlock();
  }
  mp_data[hart] = 0x1000 + hart;
  __asm__ volatile("fence w, w" ::: "memory");
  mp_flag[hart] = 1;
}

void rt_secondary(u64 hart) {
  if (hart >= NHARTS) {
    for (;;) __asm__ volatile("wfi");
  }
  while (smp_go != 1) {
  }
  __atomic_fetch_add(&arrived, 1, __ATOMIC_SEQ_CST);
  work(hart);
  csr_set(mie, MIP_MSIP); /* WFI wakes on it even with mstatus.MIE clear */
  __atomic_fetch_add(&done, 1, __ATOMIC_SEQ_CST);
  while (!(csr_read(mip) & MIP_MSIP)) __asm__ volatile("wfi");
  *CLINT_MSIP(hart) = 0;
  ipi_seen[hart] = 1;
  __atomic_fetch_add(&woken, 1, __ATOMIC_SEQ_CST);
  for (;;) __asm__ volatile("wfi");
}

int main(void) {
  CHECK(csr_read(mhartid) == 0);
  __atomic_store_n(&smp_go, 1, __ATOMIC_RELEASE);
  while (arrived != NHARTS - 1) {
  }
  work(0);
  while (done != NHARTS - 1) {
  }
  CHECK(amo_counter == (u64)NHARTS * ITERS);
  CHECK(lrsc_counter == (u64)NHARTS * ITERS);
  CHECK(locked_counter == (u64)NHARTS * LOCK_ITERS);
  CHECK(ticket_next == NHARTS * LOCK_ITERS && ticket_serving == NHARTS * LOCK_ITERS);
  for (u64 h = 1; h < NHARTS; h++) {
    while (!mp_flag[h]) {
    }
    __asm__ volatile("fence r, r" ::: "memory");
    CHECK(mp_data[h] == 0x1000 + h);
  }
  for (u64 h = 1; h < NHARTS; h++) {
    CHECK(ipi_seen[h] == 0);
    *CLINT_MSIP(h) = 1;
    while (!ipi_seen[h]) {
    }
  }
  while (woken != NHARTS - 1) {
  }
  CHECK(*CLINT_MSIP(1) == 0);
  return 0;
}
