/*
 * Sv48 paging: four-level walk with a 512 GiB-range root, 1 GiB and 4 KiB leaves, a page
 * fault on an unmapped address above the Sv39 range, and canonical-address checking.
 */
#include "ops.h"

#define PTE_V 0x1ull
#define PTE_R 0x2ull
#define PTE_W 0x4ull
#define PTE_X 0x8ull
#define PTE_A 0x40ull
#define PTE_D 0x80ull
#define PTE(pa, flags) ((((u64)(pa) >> 12) << 10) | (flags) | PTE_V)

/* VA 0x0000_0100_4000_1000: level-3 index 2, level-2 index 1, level-1 index 0, level-0 index 1 */
#define VA_HIGH 0x0000010040001000ull
#define VA_HIGH_HOLE 0x0000010040002000ull
#define VA_UNMAPPED_ROOT 0x0000028000000000ull /* level-3 index 5: no entry */

static u64 l3[512] __attribute__((aligned(4096)));
static u64 l2a[512] __attribute__((aligned(4096)));
static u64 l2b[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));
static volatile u64 page[512] __attribute__((aligned(4096)));

static long s_load(long va) {
  return (long)LD("ld", (void *)va);
}

int main(void) {
  /* identity 1 GiB leaf for RAM: VA 0x8000_0000 -> l3[0] -> l2a[2] */
  l3[0] = PTE(l2a, 0);
  l2a[2] = PTE(0x80000000ull, PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
  l3[2] = PTE(l2b, 0);
  l2b[1] = PTE(l1, 0);
  l1[0] = PTE(l0, 0);
  l0[1] = PTE(page, PTE_R | PTE_W | PTE_A | PTE_D);
  page[3] = 0xfeedface;

  csr_write(satp, (9ull << 60) | ((u64)l3 >> 12));
  if ((csr_read(satp) >> 60) != 9) {
    htif_puts("sv48 not supported by this hart\n");
    return 1;
  }
  __asm__ volatile("sfence.vma" ::: "memory");
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, VA_HIGH + 24) == 0xfeedface);
  CHECK(run_in_mode(PRV_S, s_load, (long)&page[3]) == 0xfeedface); /* 1 GiB identity */
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_S, s_load, VA_HIGH_HOLE);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_PAGE_FAULT);
  CHECK(m_trap.tval == VA_HIGH_HOLE);
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_UNMAPPED_ROOT);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_PAGE_FAULT);
  CHECK(m_trap.tval == VA_UNMAPPED_ROOT);
  /* bits 63:48 must equal bit 47 */
  trap_reset();
  run_in_mode(PRV_S, s_load, 0x0001000040001000l);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_PAGE_FAULT);
  csr_write(satp, 0);
  __asm__ volatile("sfence.vma" ::: "memory");
  return 0;
}
