/*
 * A virtio-rng driver for the legacy (Version 1) virtio-mmio transport, QEMU `virt`'s default
 * (no -global virtio-mmio.force-legacy=false): GuestPageSize, QueueNum, QueueAlign and QueuePFN
 * place the rings in one area, DriverFeatures takes word 0 at once, there is no FEATURES_OK,
 * and QueuePFN 0 resets the device. Two rounds: 8 entries aligned to 4096, then 5 entries
 * aligned to 64 (the used ring then follows the available ring closely). Prints what it reads;
 * vmesh with a legacy slot must print the same.
 */
#include "test.h"

#define VIRTIO0 0x10001000ul
#define R(off) ((volatile u32 *)(VIRTIO0 + (off)))
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define DESC_F_WRITE 2

struct desc {
  u64 addr;
  u32 len;
  unsigned short flags, next;
};

/* desc table, available ring and used ring in one page-aligned area */
static unsigned char area[3 * 4096] __attribute__((aligned(4096)));
static unsigned char buf[16];

static void line(const char *label, u64 v) {
  print_str_hex(label, v);
}

/* Sets up queue 0 with `num` entries and alignment `align`, runs `requests` requests. */
static u32 round_trip(u32 num, u32 align, int requests) {
  for (unsigned i = 0; i < sizeof area; i++) area[i] = 0;
  struct desc *descs = (struct desc *)area;
  volatile unsigned short *avail = (volatile unsigned short *)(area + 16 * num);
  u64 used_off = (16 * num + 4 + 2 * num + align - 1) / align * align;
  volatile u32 *used = (volatile u32 *)(area + used_off);

  *R(0x070) = 0;
  *R(0x070) = S_ACK;
  *R(0x070) = S_ACK | S_DRIVER;
  *R(0x024) = 0;
  *R(0x020) = 0; /* no features */
  *R(0x028) = 4096; /* GuestPageSize */
  *R(0x030) = 0;
  line("queue_num_max", *R(0x034));
  line("queue_pfn before", *R(0x040));
  *R(0x038) = num;
  *R(0x03c) = align;
  *R(0x040) = (u32)((u64)area >> 12);
  line("queue_pfn is the area's page", *R(0x040) == (u32)((u64)area >> 12));
  line("QueueReady reads (version 2 only)", *R(0x044));
  *R(0x070) = S_ACK | S_DRIVER | S_DRIVER_OK;
  line("status", *R(0x070));

  u32 total = 0;
  unsigned short idx = 0, seen = 0;
  for (int r = 0; r < requests; r++) {
    for (int i = 0; i < 16; i++) buf[i] = 0xaa;
    unsigned d = (unsigned)r % num;
    descs[d].addr = (u64)buf;
    descs[d].len = 16;
    descs[d].flags = DESC_F_WRITE;
    descs[d].next = 0;
    avail[2 + idx % num] = (unsigned short)d;
    __asm__ volatile("fence rw, rw" ::: "memory");
    avail[1] = ++idx;
    __asm__ volatile("fence rw, rw" ::: "memory");
    *R(0x050) = 0;
    for (long n = 0; n < 50000000 && (used[0] >> 16) == seen; n++) {
      __asm__ volatile("fence rw, rw" ::: "memory");
    }
    CHECK((used[0] >> 16) != seen);
    u32 slot = seen % num;
    seen++;
    CHECK(used[1 + 2 * slot] == d);
    total += used[2 + 2 * slot];
    int changed = 0;
    for (int i = 0; i < 16; i++) changed |= buf[i] != 0xaa;
    CHECK(changed);
    u32 isr = *R(0x060);
    *R(0x064) = isr;
    CHECK(isr & 1);
  }
  return total;
}

int main(void) {
  line("magic", *R(0x000));
  line("version", *R(0x004));
  line("device_id", *R(0x008));
  CHECK(*R(0x004) == 1 && *R(0x008) == 4);
  *R(0x014) = 1;
  line("device features word 1 (none in legacy)", *R(0x010));
  *R(0x014) = 0;
  line("config generation reads (version 2 only)", *R(0x0fc));

  line("8 entries, align 4096: bytes", round_trip(8, 4096, 10));
  line("5 entries, align 64: bytes", round_trip(5, 64, 7));

  /* QueuePFN 0 resets the whole device (QEMU's virtio_mmio_soft_reset) */
  *R(0x030) = 0;
  *R(0x040) = 0;
  line("status after QueuePFN 0", *R(0x070));
  line("queue_pfn after QueuePFN 0", *R(0x040));
  return 0;
}
