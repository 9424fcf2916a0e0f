/*
 * Guest program of services/disk/blk_random_bench.ts: 4 KiB random reads with O_DIRECT
 * (no guest page cache) from a block device at a queue depth of QD, one thread per request in
 * flight (the guest kernel has no AIO), for SECONDS of wall time. Prints one line:
 *   randread qd=QD ios=N seconds=S iops=I
 * Built static with riscv64-linux-gnu-gcc -O2 -static -pthread.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static int fd;
static uint64_t blocks;
static volatile int stop;

struct worker {
  pthread_t thread;
  uint64_t seed;
  long ios;
  int failed;
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *run(void *arg) {
  struct worker *w = arg;
  void *buf;
  if (posix_memalign(&buf, 4096, 4096) != 0) {
    w->failed = 1;
    return NULL;
  }
  uint64_t x = w->seed;
  while (!stop) {
    /* xorshift64: a different offset sequence per thread */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    off_t off = (off_t)(x % blocks) * 4096;
    if (pread(fd, buf, 4096, off) != 4096) {
      w->failed = 1;
      break;
    }
    w->ios++;
  }
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s DEVICE QD SECONDS\n", argv[0]);
    return 2;
  }
  int qd = atoi(argv[2]);
  double seconds = atof(argv[3]);
  fd = open(argv[1], O_RDONLY | O_DIRECT);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  uint64_t bytes = 0;
  if (ioctl(fd, BLKGETSIZE64, &bytes) != 0 || bytes < 4096 || qd < 1 || qd > 256) {
    fprintf(stderr, "randread: bad device size or QD\n");
    return 1;
  }
  blocks = bytes / 4096;
  struct worker *ws = calloc(qd, sizeof *ws);
  double t0 = now();
  for (int i = 0; i < qd; i++) {
    ws[i].seed = 0x9e3779b97f4a7c15ull * (i + 1);
    pthread_create(&ws[i].thread, NULL, run, &ws[i]);
  }
  while (now() - t0 < seconds) usleep(10000);
  stop = 1;
  long ios = 0;
  int failed = 0;
  for (int i = 0; i < qd; i++) {
    pthread_join(ws[i].thread, NULL);
    ios += ws[i].ios;
    failed |= ws[i].failed;
  }
  double s = now() - t0;
  if (failed) {
    fprintf(stderr, "randread: a read failed\n");
    return 1;
  }
  printf("randread qd=%d ios=%ld seconds=%.3f iops=%.0f\n", qd, ios, s, ios / s);
  return 0;
}
