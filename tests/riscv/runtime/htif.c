/*
 * Console and exit. Default: HTIF console (device 1, command 1) and exit
 * (tohost = code << 1 | 1), as Spike and QEMU's spike board. Built with -DVMESH_VIRT:
 * the virt board's 16550 UART and SiFive test finisher (for programs that need the
 * `time` CSR or Sstc, which QEMU provides only on virt).
 */
#include "test.h"

extern volatile u64 tohost;
extern volatile u64 fromhost;

#ifdef VMESH_VIRT
#define UART_THR ((volatile unsigned char *)0x10000000ul)
#define UART_LSR ((volatile unsigned char *)0x10000005ul)
#define FINISHER ((volatile u32 *)0x100000ul)

void htif_putchar(int c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *UART_THR = (unsigned char)c;
}
#else
static void htif_cmd(u64 cmd) {
  tohost = cmd;
  /* The host answers every console write through fromhost; acknowledge it. */
  while (fromhost == 0) {
  }
  fromhost = 0;
}

void htif_putchar(int c) {
  htif_cmd((1ull << 56) | (1ull << 48) | (u64)(unsigned char)c);
}
#endif

void htif_puts(const char *s) {
  while (*s) htif_putchar(*s++);
}

void print_hex(u64 v) {
  for (int i = 60; i >= 0; i -= 4) htif_putchar("0123456789abcdef"[(v >> i) & 15]);
}

void print_dec(i64 v) {
  char buf[24];
  int n = 0;
  u64 u = v < 0 ? -(u64)v : (u64)v;
  if (v < 0) htif_putchar('-');
  do {
    buf[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  while (n) htif_putchar(buf[--n]);
}

void print_str_hex(const char *label, u64 v) {
  htif_puts(label);
  htif_putchar('=');
  print_hex(v);
  htif_putchar('\n');
}

void htif_exit(int code) {
#ifdef VMESH_VIRT
  /* 0x5555 = pass; (code << 16) | 0x3333 = fail with code */
  *FINISHER = code == 0 ? 0x5555 : (((u32)code & 0xffff) << 16) | 0x3333;
#endif
  tohost = ((u64)(u32)code << 1) | 1;
  for (;;) {
  }
}

void fail_check(int line, const char *expr) {
  htif_puts("FAIL line ");
  print_dec(line);
  htif_puts(": ");
  htif_puts(expr);
  htif_putchar('\n');
  htif_exit(line % 255 + 1);
}
