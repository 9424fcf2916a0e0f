/*
 * Code that changes under a running hart, the translator's hard cases: code rewritten and run
 * again with and without FENCE.I (QEMU notices the store either way), a page remapped under the
 * same virtual address (sfence.vma) in S-mode, and a trap in the middle of a hot loop. (A store
 * into the straight line it is part of is not here: QEMU's RISC-V target has no precise SMC, so
 * it runs the old instruction; translator_test.ts checks vmesh against its interpreter.)
 */
#include "ops.h"

#define PTE_V 0x1ull
#define PTE_R 0x2ull
#define PTE_W 0x4ull
#define PTE_X 0x8ull
#define PTE_A 0x40ull
#define PTE_D 0x80ull
#define RWX (PTE_R | PTE_W | PTE_X)
#define PTE(pa, flags) ((((u64)(pa) >> 12) << 10) | (flags) | PTE_V)
#define SATP_SV39(root) ((8ull << 60) | ((u64)(root) >> 12))
#define VA_CODE 0x40001000ull

/* `addi a0, zero, k` and `ret`. */
#define LI_A0(k) (0x00000513u | ((u32)(k) << 20))
#define RET 0x00008067u

static u32 code[1024] __attribute__((aligned(4096)));
static u32 page_a[1024] __attribute__((aligned(4096)));
static u32 page_b[1024] __attribute__((aligned(4096)));
static u64 root[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));

typedef long (*fn0)(void);

static void fence_i(void) {
  __asm__ volatile("fence.i" ::: "memory");
}

/* Calls code[] `n` times; returns the sum of its results. */
static long call_many(long n) {
  long sum = 0;
  for (long i = 0; i < n; i++) sum += ((fn0)code)();
  return sum;
}

static long s_call(long va) {
  return ((fn0)va)();
}

/* A loop of 2000 loads; the 1500th address has no RAM behind it (access fault). */
static long fault_loop(void) {
  static volatile u64 data[4];
  long sum = 0;
  for (long i = 0; i < 2000; i++) {
    volatile u64 *p = i == 1500 ? (volatile u64 *)0x1000000ull : &data[i & 3];
    sum += *p;
  }
  return sum;
}

int main(void) {
  /* 1. Rewrite a hot function without FENCE.I, then with it. */
  code[0] = LI_A0(1);
  code[1] = RET;
  fence_i();
  CHECK(call_many(1000) == 1000);
  code[0] = LI_A0(2);
  CHECK(call_many(1000) == 2000);
  code[0] = LI_A0(3);
  fence_i();
  CHECK(call_many(1000) == 3000);

  /* 2. The same virtual page mapped to other code (S-mode, Sv39, sfence.vma). */
  page_a[0] = LI_A0(11);
  page_a[1] = RET;
  page_b[0] = LI_A0(22);
  page_b[1] = RET;
  fence_i();
  root[2] = PTE(0x80000000ull, RWX | PTE_A | PTE_D);
  root[1] = PTE(l1, 0);
  l1[0] = PTE(l0, 0);
  l0[1] = PTE(page_a, PTE_R | PTE_X | PTE_A);
  csr_write(satp, SATP_SV39(root));
  __asm__ volatile("sfence.vma" ::: "memory");
  long sum = 0;
  for (int i = 0; i < 500; i++) sum += run_in_mode(PRV_S, s_call, VA_CODE);
  CHECK(sum == 500 * 11);
  l0[1] = PTE(page_b, PTE_R | PTE_X | PTE_A);
  __asm__ volatile("sfence.vma" ::: "memory");
  sum = 0;
  for (int i = 0; i < 500; i++) sum += run_in_mode(PRV_S, s_call, VA_CODE);
  CHECK(sum == 500 * 22);
  csr_write(satp, 0);
  __asm__ volatile("sfence.vma" ::: "memory");

  /* 3. A trap in the middle of a hot loop: exact cause, tval, and resumption after it. */
  trap_reset();
  fault_loop();
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_ACCESS);
  CHECK(m_trap.tval == 0x1000000ull);
  CHECK(m_trap.epc >= (u64)fault_loop && m_trap.epc < (u64)main);
  return 0;
}
