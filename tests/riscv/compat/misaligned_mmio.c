/*
 * Misaligned loads and stores to device registers, which QEMU 7.2 completes instead of
 * faulting: a misaligned N-byte load is two aligned N-byte loads combined (little-endian), a
 * misaligned store is a sequence of byte stores. Only accesses whose parts are valid on QEMU
 * are made (PLIC/CLINT take 4-byte parts; the UART any size within its 8 bytes; the virtio
 * transport any size). Needs the virtio-rng device in slot 0 (see virtio_legacy_rng.c).
 */
#include "test.h"

static inline u64 lw(u64 a) {
  u64 v;
  __asm__ volatile("lwu %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
  return v;
}
static inline u64 lh(u64 a) {
  u64 v;
  __asm__ volatile("lhu %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
  return v;
}
static inline u64 ld(u64 a) {
  u64 v;
  __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
  return v;
}
static inline void sh(u64 a, u64 v) {
  __asm__ volatile("sh %0, 0(%1)" ::"r"(v), "r"(a) : "memory");
}

static void show(const char *label, u64 v) {
  htif_puts(label);
  htif_putchar('=');
  if (m_trap.count) {
    htif_puts("fault cause ");
    print_hex(m_trap.cause);
  } else {
    print_hex(v);
  }
  htif_putchar('\n');
}

/* Shows a load's value (or its fault) and CHECKs it equals what QEMU 7.2 returns. */
#define LOAD(label, expr, want)                                                              \
  do {                                                                                       \
    trap_reset();                                                                            \
    u64 v_ = (expr);                                                                         \
    show(label, v_);                                                                         \
    CHECK(m_trap.count == 0 && v_ == (want));                                                \
  } while (0)

int main(void) {
  /* PLIC: priorities of sources 1 and 2, read across their boundary */
  *(volatile u32 *)0xc000004ul = 5;
  *(volatile u32 *)0xc000008ul = 3;
  LOAD("plic lw +2 across priorities 1|2", lw(0xc000006ul), 0x30000);
  LOAD("plic lw +1", lw(0xc000005ul), 0x3000000);
  /* CLINT: mtimecmp halves */
  *(volatile u64 *)0x2004000ul = 0x1122334455667788ull;
  LOAD("clint lw mtimecmp+2", lw(0x2004002ul), 0x33445566);
  LOAD("clint ld mtimecmp+4", ld(0x2004004ul) & 0xffffffffull, 0x11223344);
  *(volatile u64 *)0x2004000ul = ~0ull;
  /* UART: scratch and line control */
  *(volatile unsigned char *)0x10000007ul = 0x5a;
  *(volatile unsigned char *)0x10000003ul = 0x03;
  LOAD("uart lh +3 (IIR>>8 | MCR<<8)", lh(0x10000003ul), 0x800);
  LOAD("uart lw +1", lw(0x10000001ul), 0x8000000);
  LOAD("uart lw +2", lw(0x10000002ul), 0x80000);
  /* virtio slot 0: magic and version */
  LOAD("virtio lw +1", lw(0x10001001ul), 0x2747269);
  LOAD("virtio lw +2", lw(0x10001002ul), 0x27472);
  LOAD("virtio lh +3", lh(0x10001003ul), 0);
  LOAD("virtio ld +4", ld(0x10001004ul), 0x400000002ull);
  /* a misaligned store becomes byte stores: LCR and MCR from one halfword */
  trap_reset();
  sh(0x10000003ul, 0x0b13);
  show("uart sh +3 trap", 0);
  CHECK(m_trap.count == 0);
  LOAD("uart lcr after", *(volatile unsigned char *)0x10000003ul, 0x13);
  LOAD("uart mcr after", *(volatile unsigned char *)0x10000004ul, 0x0b);
  *(volatile unsigned char *)0x10000003ul = 0x03;
  *(volatile unsigned char *)0x10000004ul = 0x08;
  return 0;
}
