/* Helpers for differential dump programs: a 64-bit FNV-1a hash of results and line output. */
#ifndef VMESH_DUMP_H
#define VMESH_DUMP_H

#include "ops.h"

static inline u64 fnv(u64 h, u64 v) {
  for (int i = 0; i < 8; i++) {
    h ^= (v >> (i * 8)) & 0xff;
    h *= 0x100000001b3ull;
  }
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* "name hash\n" */
static inline void dump_line(const char *name, u64 hash) {
  htif_puts(name);
  htif_putchar(' ');
  print_hex(hash);
  htif_putchar('\n');
}

#endif
