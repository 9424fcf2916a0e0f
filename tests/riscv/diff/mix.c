/*
 * Differential instruction mix: an xorshift generator picks ALU, M, shift, compare, branch,
 * load/store and AMO operations on a small register file and memory; a running checksum is
 * printed every STRIDE steps, and memory is hashed at the end. Compared with QEMU.
 *
 * Built with -DPAGED the same loop runs in S-mode under Sv39: all code and data through
 * 4 KiB pages, and the memory array through an alias whose pages are mapped in reverse
 * order, so the output must equal the unpaged build's (and QEMU's) exactly.
 */
#include "dump.h"

#define STEPS 200000
#define STRIDE 8192
#define WORDS 4096 /* 32 KiB: 8 pages */

static u64 regs[16];
static u64 mem[WORDS] __attribute__((aligned(4096)));
static u64 *memv = mem; /* the array as the loop sees it */

#ifdef PAGED
#define PTE_V 0x1ull
#define PTE_RWX 0xeull
#define PTE_AD 0xc0ull
#define PTE(pa, flags) ((((u64)(pa) >> 12) << 10) | (flags) | PTE_V)
#define ALIAS_VA 0x40000000ull
static u64 root[512] __attribute__((aligned(4096)));
static u64 l1_ram[512] __attribute__((aligned(4096)));
static u64 l0_ram[512] __attribute__((aligned(4096)));
static u64 l1_alias[512] __attribute__((aligned(4096)));
static u64 l0_alias[512] __attribute__((aligned(4096)));
extern char __end[];

static void enable_paging(void) {
  root[0] = PTE(0, PTE_RWX | PTE_AD); /* devices: 1 GiB identity */
  root[2] = PTE(l1_ram, 0);
  l1_ram[0] = PTE(l0_ram, 0);
  CHECK((u64)__end <= 0x80200000ull);
  for (u64 i = 0; i < 512; i++) l0_ram[i] = PTE(0x80000000ull + i * 4096, PTE_RWX | PTE_AD);
  root[1] = PTE(l1_alias, 0);
  l1_alias[0] = PTE(l0_alias, 0);
  const u64 pages = sizeof mem / 4096;
  for (u64 i = 0; i < pages; i++) l0_alias[i] = PTE((u64)mem + (pages - 1 - i) * 4096, 0x6 | PTE_AD);
  memv = (u64 *)ALIAS_VA;
  csr_write(satp, (8ull << 60) | ((u64)root >> 12));
  __asm__ volatile("sfence.vma" ::: "memory");
}
#endif

static u64 rng = 0x9e3779b97f4a7c15ull;
static inline u64 next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static inline u64 rotl(u64 v, int s) {
  return (v << s) | (v >> (64 - s));
}

static long run_mix(long arg) {
  (void)arg;
  u64 *mem = memv;
  for (int i = 0; i < 16; i++) regs[i] = next();
  for (int i = 0; i < WORDS; i++) mem[i] = next();
  u64 sum = FNV_INIT;
  for (u32 step = 1; step <= STEPS; step++) {
    u64 r = next();
    u64 a = regs[(r >> 8) & 15], b = regs[(r >> 12) & 15], v;
    unsigned d = (r >> 16) & 15;
    u64 *p = &mem[(a >> 5) % WORDS];
    switch ((r >> 20) % 40) {
      case 0: v = a + b; break;
      case 1: v = a - b; break;
      case 2: v = a << (b & 63); break;
      case 3: v = a >> (b & 63); break;
      case 4: v = (u64)((i64)a >> (b & 63)); break;
      case 5: v = (i64)a < (i64)b; break;
      case 6: v = a < b; break;
      case 7: v = a ^ b; break;
      case 8: v = a | b; break;
      case 9: v = a & b; break;
      case 10: v = (u64)(i64)(i32)((u32)a + (u32)b); break;
      case 11: v = RR("subw", a, b); break;
      case 12: v = RR("sllw", a, b); break;
      case 13: v = RR("srlw", a, b); break;
      case 14: v = RR("sraw", a, b); break;
      case 15: v = a * b; break;
      case 16: v = RR("mulh", a, b); break;
      case 17: v = RR("mulhu", a, b); break;
      case 18: v = RR("mulhsu", a, b); break;
      case 19: v = RR("mulw", a, b); break;
      case 20: v = RR("div", a, (r & 1) ? b >> (r & 63) : b); break;
      case 21: v = RR("divu", a, (r & 1) ? b >> (r & 63) : b); break;
      case 22: v = RR("rem", a, (r & 1) ? b >> (r & 63) : b); break;
      case 23: v = RR("remu", a, b & 0xffff); break;
      case 24: v = RR("divw", a, b >> (r & 31)); break;
      case 25: v = RR("remuw", a, b >> (r & 31)); break;
      case 26: v = (u64)(i64)(signed char)(*(unsigned char *)((char *)p + (b & 7))); break;
      case 27: v = *(unsigned short *)((char *)p + (b & 6)); break;
      case 28: v = (u64)(i64)*(i32 *)((char *)p + (b & 4)); break;
      case 29: v = *p; break;
      case 30: *((unsigned char *)p + (b & 7)) = (unsigned char)a; v = *p; break;
      case 31: *(unsigned short *)((char *)p + (b & 6)) = (unsigned short)a; v = *p; break;
      case 32: *(u32 *)((char *)p + (b & 4)) = (u32)a; v = *p; break;
      case 33: *p = a ^ b; v = a; break;
      case 34: v = AMO("amoadd.d", b, p); break;
      case 35: v = AMO("amomaxu.d", b, p); break;
      case 36: v = AMO("amoxor.w", b, (u32 *)p + (a & 1)); break;
      case 37: v = AMO("amomin.w", b, (u32 *)p + (b & 1)); break;
      case 38: { /* data-dependent branches */
        v = 0;
        for (u64 x = a & 0xff; x; x >>= 1) v += (x & 1) ? rotl(b, (int)(x & 31) + 1) : x;
        break;
      }
      default: v = rotl(a, (int)(b & 63) | 1) + (b >> 3); break;
    }
    regs[d] = v;
    sum = fnv(sum, v);
    if (step % STRIDE == 0) {
      htif_puts("step ");
      print_dec(step);
      htif_putchar(' ');
      print_hex(sum);
      htif_putchar('\n');
    }
  }
  u64 h = FNV_INIT;
  for (int i = 0; i < WORDS; i++) h = fnv(h, mem[i]);
  for (int i = 0; i < 16; i++) h = fnv(h, regs[i]);
  dump_line("final", h);
  return 0;
}

int main(void) {
#ifdef PAGED
  enable_paging();
  return (int)run_in_mode(PRV_S, run_mix, 0);
#else
  return (int)run_mix(0);
#endif
}
