/*
 * Sv39 paging: 1 GiB / 2 MiB / 4 KiB leaves, page faults with stval, delegation of page
 * faults to S, read-only and no-execute pages, U-bit with SUM, MXR, hardware A/D updates,
 * misaligned superpages, non-canonical addresses, sfence.vma after PTE changes, MPRV with
 * MPP = S.
 */
#include "ops.h"

#define PTE_V 0x1ull
#define PTE_R 0x2ull
#define PTE_W 0x4ull
#define PTE_X 0x8ull
#define PTE_U 0x10ull
#define PTE_A 0x40ull
#define PTE_D 0x80ull
#define RWX (PTE_R | PTE_W | PTE_X)
#define PTE(pa, flags) ((((u64)(pa) >> 12) << 10) | (flags) | PTE_V)
#define SATP_SV39(root) ((8ull << 60) | ((u64)(root) >> 12))

/* Virtual addresses used by the tests (all in the 1 GiB region at VA 0x4000_0000). */
#define VA_4K 0x40001000ull      /* -> page_a, RW */
#define VA_HOLE 0x40002000ull    /* unmapped */
#define VA_RO 0x40003000ull      /* -> page_a, R only */
#define VA_USER 0x40004000ull    /* -> page_a, RW U */
#define VA_XONLY 0x40005000ull   /* -> page_a, X only */
#define VA_NOAD 0x40006000ull    /* -> page_b, RW, A = D = 0 */
#define VA_2M 0x40200000ull      /* -> PA_2M, 2 MiB leaf */
#define VA_BAD2M 0x40400000ull   /* 2 MiB leaf with a misaligned PPN */
#define VA_WONLY 0x40007000ull   /* reserved W without R */
#define PA_2M 0x80400000ull

static u64 root_s[512] __attribute__((aligned(4096)));
static u64 root_u[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));
static volatile u64 page_a[512] __attribute__((aligned(4096)));
static volatile u64 page_b[512] __attribute__((aligned(4096)));

static void build_tables(void) {
  /* 1 GiB identity leaf for RAM (S-only in root_s, user in root_u) */
  root_s[2] = PTE(0x80000000ull, RWX | PTE_A | PTE_D);
  root_u[2] = PTE(0x80000000ull, RWX | PTE_U | PTE_A | PTE_D);
  root_s[1] = PTE(l1, 0);
  root_u[1] = PTE(l1, 0);
  l1[0] = PTE(l0, 0);
  l1[1] = PTE(PA_2M, PTE_R | PTE_W | PTE_A | PTE_D);
  l1[2] = PTE(PA_2M + 0x1000, PTE_R | PTE_A | PTE_D); /* PPN[0] != 0: misaligned */
  l0[1] = PTE(page_a, PTE_R | PTE_W | PTE_A | PTE_D);
  l0[3] = PTE(page_a, PTE_R | PTE_A);
  l0[4] = PTE(page_a, PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
  l0[5] = PTE(page_a, PTE_X | PTE_A);
  l0[6] = PTE(page_b, PTE_R | PTE_W);
  l0[7] = PTE(page_a, PTE_W | PTE_A | PTE_D);
}

static void use_root(u64 *root) {
  csr_write(satp, SATP_SV39(root));
  __asm__ volatile("sfence.vma" ::: "memory");
}

static long s_load(long va) {
  return (long)LD("ld", (void *)va);
}

static long s_store(long va) {
  ST("sd", 0x5a5a, (void *)va);
  return 0;
}

static long s_call(long va) {
  ((void (*)(void))va)();
  return 0;
}

#define EXPECT_M(c, tv) do { CHECK(m_trap.count == 1); CHECK(m_trap.cause == (c)); \
  CHECK(m_trap.tval == (u64)(tv)); } while (0)

int main(void) {
  build_tables();
  page_a[0] = 0x1111;
  page_b[0] = 0x2222;
  *(volatile u64 *)PA_2M = 0x3333;
  *(volatile u64 *)(PA_2M + 0x1ff000) = 0x4444;
  use_root(root_s);
  CHECK((csr_read(satp) >> 60) == 8);

  /* translation through each leaf size */
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, VA_4K) == 0x1111);
  CHECK(run_in_mode(PRV_S, s_load, VA_2M) == 0x3333);
  CHECK(run_in_mode(PRV_S, s_load, VA_2M + 0x1ff000) == 0x4444);
  CHECK(run_in_mode(PRV_S, s_load, (long)&page_b[0]) == 0x2222); /* 1 GiB identity */
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_S, s_store, VA_4K + 8);
  CHECK(page_a[1] == 0x5a5a);

  /* page faults: unmapped, read-only store, no-execute fetch, reserved W-only */
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_HOLE + 0x18);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_HOLE + 0x18);
  CHECK(m_trap.prev_priv == PRV_S);
  trap_reset();
  run_in_mode(PRV_S, s_store, VA_RO);
  EXPECT_M(CAUSE_STORE_PAGE_FAULT, VA_RO);
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, VA_RO) == 0x1111);
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_S, s_call, VA_4K);
  EXPECT_M(CAUSE_FETCH_PAGE_FAULT, VA_4K);
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_WONLY);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_WONLY);
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_BAD2M);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_BAD2M);
  /* non-canonical: bits 63:39 must equal bit 38 */
  trap_reset();
  run_in_mode(PRV_S, s_load, 0x0000008000001000l);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_PAGE_FAULT);

  /* delegated page faults reach the S handler with scause/stval */
  csr_write(medeleg, (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_STORE_PAGE_FAULT) |
                         (1 << CAUSE_FETCH_PAGE_FAULT));
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_HOLE + 0x20);
  CHECK(m_trap.count == 0);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == CAUSE_LOAD_PAGE_FAULT);
  CHECK(s_trap.tval == VA_HOLE + 0x20);
  trap_reset();
  run_in_mode(PRV_S, s_store, VA_RO + 0x10);
  CHECK(s_trap.count == 1);
  CHECK(s_trap.cause == CAUSE_STORE_PAGE_FAULT);
  CHECK(s_trap.tval == VA_RO + 0x10);
  csr_write(medeleg, 0);

  /* U pages from S: only with SUM; never executable from S */
  trap_reset();
  csr_clear(mstatus, MSTATUS_SUM);
  run_in_mode(PRV_S, s_load, VA_USER);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_USER);
  trap_reset();
  csr_set(mstatus, MSTATUS_SUM);
  CHECK(run_in_mode(PRV_S, s_load, VA_USER) == 0x1111);
  CHECK(m_trap.count == 0);
  csr_clear(mstatus, MSTATUS_SUM);

  /* MXR makes execute-only pages readable */
  trap_reset();
  run_in_mode(PRV_S, s_load, VA_XONLY);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_XONLY);
  trap_reset();
  csr_set(mstatus, MSTATUS_MXR);
  CHECK(run_in_mode(PRV_S, s_load, VA_XONLY) == 0x1111);
  csr_clear(mstatus, MSTATUS_MXR);
  CHECK(m_trap.count == 0);

  /* hardware A/D updates (as QEMU): a load sets A, a store sets D */
  trap_reset();
  CHECK((l0[6] & (PTE_A | PTE_D)) == 0);
  CHECK(run_in_mode(PRV_S, s_load, VA_NOAD) == 0x2222);
  CHECK(l0[6] & PTE_A);
  CHECK((l0[6] & PTE_D) == 0);
  __asm__ volatile("sfence.vma" ::: "memory");
  run_in_mode(PRV_S, s_store, VA_NOAD);
  CHECK(l0[6] & PTE_D);
  CHECK(page_b[0] == 0x5a5a);
  CHECK(m_trap.count == 0);

  /* a changed PTE takes effect after sfence.vma (no stale translation) */
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, VA_4K) == 0x1111);
  l0[1] = PTE(page_b, PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma" ::: "memory");
  CHECK(run_in_mode(PRV_S, s_load, VA_4K) == 0x5a5a);
  l0[1] = 0;
  __asm__ volatile("sfence.vma" ::: "memory");
  run_in_mode(PRV_S, s_load, VA_4K);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_4K);
  l0[1] = PTE(page_a, PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma" ::: "memory");
  trap_reset();
  CHECK(run_in_mode(PRV_S, s_load, VA_4K) == 0x1111);
  /* sfence.vma with an address operand flushes that page */
  l0[1] = PTE(page_b, PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma %0, zero" :: "r"(VA_4K) : "memory");
  CHECK(run_in_mode(PRV_S, s_load, VA_4K) == 0x5a5a);
  l0[1] = PTE(page_a, PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma" ::: "memory");
  CHECK(m_trap.count == 0);

  /* U-mode: user pages yes, supervisor pages no */
  use_root(root_u);
  trap_reset();
  CHECK(run_in_mode(PRV_U, s_load, VA_USER) == 0x1111);
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_U, s_load, VA_4K);
  EXPECT_M(CAUSE_LOAD_PAGE_FAULT, VA_4K);
  CHECK(m_trap.prev_priv == PRV_U);
  use_root(root_s);

  /* MPRV with MPP = S: M-mode loads are translated */
  trap_reset();
  csr_clear(mstatus, MSTATUS_MPP);
  csr_set(mstatus, (u64)PRV_S << 11);
  csr_set(mstatus, MSTATUS_MPRV);
  u64 v = LD("ld", (void *)VA_2M);
  csr_clear(mstatus, MSTATUS_MPRV);
  CHECK(v == 0x3333);
  CHECK(m_trap.count == 0);
  /* M-mode ignores satp without MPRV: VA_2M is not RAM */
  v = LD("ld", (void *)VA_2M);
  CHECK(m_trap.count == 1);
  CHECK(m_trap.cause == CAUSE_LOAD_ACCESS);

  csr_write(satp, 0);
  __asm__ volatile("sfence.vma" ::: "memory");
  return 0;
}
