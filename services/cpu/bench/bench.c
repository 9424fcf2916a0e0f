/*
 * CPU benchmark workload (bare metal, RV64GC): quicksort, an open-addressing hash table,
 * bitwise CRC32, integer matrix multiply and branchy number crunching, ROUNDS times.
 * Prints a checksum, the instructions retired (minstret) and the CLINT mtime ticks elapsed.
 */
#include "test.h"

#ifndef ROUNDS
#define ROUNDS 40
#endif

#define SORT_N 4096
#define HASH_SLOTS 8192
#define HASH_KEYS 5000
#define CRC_BYTES 8192
#define MAT 24

static u32 sort_buf[SORT_N];
static u64 hash_keys[HASH_SLOTS];
static u32 hash_vals[HASH_SLOTS];
static unsigned char crc_buf[CRC_BYTES];
static u32 ma[MAT][MAT], mb[MAT][MAT], mc[MAT][MAT];

static u64 rng = 0x243f6a8885a308d3ull;
static u64 next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void quicksort(u32 *a, long lo, long hi) {
  while (lo < hi) {
    u32 pivot = a[lo + (hi - lo) / 2];
    long i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        u32 t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (j - lo < hi - i) {
      quicksort(a, lo, j);
      lo = i;
    } else {
      quicksort(a, i, hi);
      hi = j;
    }
  }
}

static u64 sort_round(void) {
  for (int i = 0; i < SORT_N; i++) sort_buf[i] = (u32)next();
  quicksort(sort_buf, 0, SORT_N - 1);
  u64 h = 0;
  for (int i = 1; i < SORT_N; i++) {
    if (sort_buf[i - 1] > sort_buf[i]) return ~0ull; /* not sorted: poison the checksum */
    h = h * 31 + sort_buf[i];
  }
  return h;
}

static u64 hash_round(void) {
  for (int i = 0; i < HASH_SLOTS; i++) hash_keys[i] = 0;
  u64 seed = next();
  for (int i = 0; i < HASH_KEYS; i++) {
    u64 k = (seed + (u64)i * 0x9e3779b97f4a7c15ull) | 1;
    u64 s = (k * 0xff51afd7ed558ccdull) >> 51;
    while (hash_keys[s] != 0 && hash_keys[s] != k) s = (s + 1) & (HASH_SLOTS - 1);
    hash_keys[s] = k;
    hash_vals[s] = (u32)i;
  }
  u64 hits = 0, sum = 0;
  for (int i = 0; i < 2 * HASH_KEYS; i++) {
    u64 k = (seed + (u64)i * 0x9e3779b97f4a7c15ull) | 1;
    u64 s = (k * 0xff51afd7ed558ccdull) >> 51;
    while (hash_keys[s] != 0) {
      if (hash_keys[s] == k) {
        hits++;
        sum += hash_vals[s];
        break;
      }
      s = (s + 1) & (HASH_SLOTS - 1);
    }
  }
  return hits * 1000003 + sum;
}

static u64 crc_round(void) {
  for (int i = 0; i < CRC_BYTES; i++) crc_buf[i] = (unsigned char)next();
  u32 crc = 0xffffffff;
  for (int i = 0; i < CRC_BYTES; i++) {
    crc ^= crc_buf[i];
    for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
  }
  return ~crc;
}

static u64 matmul_round(void) {
  for (int i = 0; i < MAT; i++)
    for (int j = 0; j < MAT; j++) {
      ma[i][j] = (u32)next() & 0xffff;
      mb[i][j] = (u32)next() & 0xffff;
    }
  for (int i = 0; i < MAT; i++)
    for (int j = 0; j < MAT; j++) {
      u32 s = 0;
      for (int k = 0; k < MAT; k++) s += ma[i][k] * mb[k][j];
      mc[i][j] = s;
    }
  u64 h = 0;
  for (int i = 0; i < MAT; i++) h ^= (u64)mc[i][i] << (i & 31);
  return h;
}

static u64 branchy_round(void) {
  u64 total = 0;
  for (u64 n = 1; n < 3000; n++) {
    u64 x = n + (next() & 0xff), steps = 0;
    while (x != 1 && steps < 500) {
      x = (x & 1) ? 3 * x + 1 : x >> 1;
      steps++;
    }
    u64 a = n * 7919, b = (next() & 0xffff) + 1;
    while (b) {
      u64 t = a % b;
      a = b;
      b = t;
    }
    total += steps + a;
  }
  return total;
}

int main(void) {
  u64 t0 = *CLINT_MTIME;
  u64 i0 = csr_read(minstret);
  u64 sum = 0;
  for (int r = 0; r < ROUNDS; r++) {
    sum = sum * 0x100000001b3ull ^ sort_round();
    sum = sum * 0x100000001b3ull ^ hash_round();
    sum = sum * 0x100000001b3ull ^ crc_round();
    sum = sum * 0x100000001b3ull ^ matmul_round();
    sum = sum * 0x100000001b3ull ^ branchy_round();
  }
  u64 i1 = csr_read(minstret);
  u64 t1 = *CLINT_MTIME;
  htif_puts("bench checksum ");
  print_hex(sum);
  htif_puts("\nbench instret ");
  print_dec((i64)(i1 - i0));
  htif_puts("\nbench mtime_ticks ");
  print_dec((i64)(t1 - t0));
  htif_putchar('\n');
  return 0;
}
