/*
 * A virtio-rng driver of the kind QEMU `virt` guests such as xv6 use on the modern (version 2)
 * virtio-mmio transport: it writes only the low 32 DriverFeatures bits and never sets
 * VIRTIO_F_VERSION_1, then expects FEATURES_OK to stick and the device to work. Then the
 * other leniencies QEMU 7.2 shows such drivers: DRIVER_OK without FEATURES_OK, a queue size
 * that is no power of two, a feature the device did not offer, any nonzero feature select,
 * QueueNum 0 or above 1024 ignored, reads outside config space. The device sits in slot 0
 * (QEMU: -global virtio-mmio.force-legacy=false -device virtio-rng-device,bus=virtio-mmio-bus.0).
 * Prints what it reads; vmesh must print the same bytes.
 */
#include "test.h"

#define VIRTIO0 0x10001000ul
#define R(off) ((volatile u32 *)(VIRTIO0 + (off)))
#define MAGIC 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define VENDOR_ID 0x00c
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070
#define QUEUE_DESC_LOW 0x080
#define QUEUE_DESC_HIGH 0x084
#define QUEUE_DRIVER_LOW 0x090
#define QUEUE_DRIVER_HIGH 0x094
#define QUEUE_DEVICE_LOW 0x0a0
#define QUEUE_DEVICE_HIGH 0x0a4
#define CONFIG_GENERATION 0x0fc
#define CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_INDIRECT (1u << 28)
#define F_EVENT_IDX (1u << 29)
#define F_VERSION_1_HI 1u /* bit 32 */
#define DESC_F_WRITE 2

#define QMAX 16
struct desc {
  u64 addr;
  u32 len;
  unsigned short flags, next;
};
static struct desc descs[QMAX] __attribute__((aligned(16)));
static volatile unsigned short avail[2 + QMAX + 1] __attribute__((aligned(2)));
static volatile u32 used[1 + 2 * QMAX + 1] __attribute__((aligned(4)));
static unsigned char bufs[QMAX][16];
static unsigned short avail_idx, seen_used;

static void line(const char *label, u64 v) {
  print_str_hex(label, v);
}

static inline void sd64(u64 a, u64 v) {
  __asm__ volatile("sd %0, 0(%1)" ::"r"(v), "r"(a) : "memory");
}
static inline u64 ld64(u64 a) {
  u64 v;
  __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
  return v;
}
static int wide_addresses; /* program the ring addresses with 64-bit stores */

/* Programs queue 0 over the static rings (QueueNum = size when write_num) and enables it. */
static void setup_queue(u32 size, int write_num) {
  for (unsigned i = 0; i < sizeof avail / sizeof avail[0]; i++) avail[i] = 0;
  for (unsigned i = 0; i < sizeof used / sizeof used[0]; i++) used[i] = 0;
  avail_idx = seen_used = 0;
  *R(QUEUE_SEL) = 0;
  if (write_num) *R(QUEUE_NUM) = size;
  if (wide_addresses) {
    /* one 64-bit store per address: QEMU splits it into the low and high registers */
    sd64(VIRTIO0 + QUEUE_DESC_LOW, (u64)descs);
    sd64(VIRTIO0 + QUEUE_DRIVER_LOW, (u64)avail);
    sd64(VIRTIO0 + QUEUE_DEVICE_LOW, (u64)used);
    *R(QUEUE_READY) = 1;
    return;
  }
  *R(QUEUE_DESC_LOW) = (u32)(u64)descs;
  *R(QUEUE_DESC_HIGH) = (u32)((u64)descs >> 32);
  *R(QUEUE_DRIVER_LOW) = (u32)(u64)avail;
  *R(QUEUE_DRIVER_HIGH) = (u32)((u64)avail >> 32);
  *R(QUEUE_DEVICE_LOW) = (u32)(u64)used;
  *R(QUEUE_DEVICE_HIGH) = (u32)((u64)used >> 32);
  *R(QUEUE_READY) = 1;
}

/*
 * Posts descriptor `d` (16 writable bytes pre-filled with 0xaa) at ring slot avail_idx % size,
 * notifies, waits for the used element. Returns its length, or 0xdead on a time-out. Checks
 * the device overwrote the buffer.
 */
static u32 request(u32 size, unsigned d) {
  for (int i = 0; i < 16; i++) bufs[d][i] = 0xaa;
  descs[d].addr = (u64)bufs[d];
  descs[d].len = 16;
  descs[d].flags = DESC_F_WRITE;
  descs[d].next = 0;
  avail[2 + avail_idx % size] = (unsigned short)d;
  __asm__ volatile("fence rw, rw" ::: "memory");
  avail_idx++;
  avail[1] = avail_idx;
  __asm__ volatile("fence rw, rw" ::: "memory");
  *R(QUEUE_NOTIFY) = 0;
  for (long n = 0; n < 50000000; n++) {
    __asm__ volatile("fence rw, rw" ::: "memory");
    if ((used[0] >> 16) != seen_used) break;
  }
  if ((used[0] >> 16) == seen_used) return 0xdead;
  u32 slot = seen_used % size;
  u32 id = used[1 + 2 * slot], len = used[2 + 2 * slot];
  seen_used++;
  CHECK(id == d);
  int changed = 0;
  for (int i = 0; i < 16; i++) changed |= bufs[d][i] != 0xaa;
  CHECK(changed); /* 16 random bytes all 0xaa: 2^-128 */
  return len;
}

static u32 ack_interrupt(void) {
  u32 isr = *R(INTERRUPT_STATUS);
  *R(INTERRUPT_ACK) = isr;
  return isr;
}

int main(void) {
  line("magic", *R(MAGIC));
  line("version", *R(VERSION));
  line("device_id", *R(DEVICE_ID));
  line("vendor", *R(VENDOR_ID));
  CHECK(*R(MAGIC) == 0x74726976 && *R(VERSION) == 2 && *R(DEVICE_ID) == 4);

  /* 1. xv6's sequence: low feature word only, no VERSION_1. */
  *R(STATUS) = 0;
  *R(STATUS) = S_ACK;
  *R(STATUS) = S_ACK | S_DRIVER;
  *R(DEVICE_FEATURES_SEL) = 0;
  u32 lo = *R(DEVICE_FEATURES);
  line("offers indirect,event_idx", lo & (F_INDIRECT | F_EVENT_IDX));
  *R(DRIVER_FEATURES) = lo & ~(F_INDIRECT | F_EVENT_IDX);
  *R(STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK;
  u32 status = *R(STATUS);
  line("status after FEATURES_OK without VERSION_1", status);
  CHECK(status & S_FEATURES_OK);
  *R(QUEUE_SEL) = 0;
  line("queue_ready before setup", *R(QUEUE_READY));
  line("queue_num_max", *R(QUEUE_NUM_MAX));
  *R(QUEUE_SEL) = 1;
  line("queue 1 num_max", *R(QUEUE_NUM_MAX));
  setup_queue(8, 1);
  line("queue_ready", *R(QUEUE_READY));
  *R(STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
  line("status", *R(STATUS));
  line("used len", request(8, 0));
  line("interrupt status", ack_interrupt());
  line("interrupt status after ack", *R(INTERRUPT_STATUS));
  line("used len again", request(8, 1));
  line("interrupt status", ack_interrupt());

  /* 2. Reset, then DRIVER_OK without ever writing FEATURES_OK; a queue of 5 entries. */
  *R(STATUS) = 0;
  line("status after reset", *R(STATUS));
  line("queue_ready after reset", *R(QUEUE_READY));
  *R(STATUS) = S_ACK | S_DRIVER;
  setup_queue(5, 1);
  *R(STATUS) = S_ACK | S_DRIVER | S_DRIVER_OK;
  line("status without FEATURES_OK", *R(STATUS));
  u32 total = 0;
  for (unsigned i = 0; i < 7; i++) total += request(5, i % 5); /* wraps the 5-entry ring */
  line("7 requests on a 5-entry ring, bytes", total);
  ack_interrupt();

  /* 3. Reset; a feature the device did not offer (bit 0), selects written as 5 and 9. */
  *R(STATUS) = 0;
  *R(STATUS) = S_ACK | S_DRIVER;
  *R(DEVICE_FEATURES_SEL) = 5;
  line("device features word 1 has VERSION_1", *R(DEVICE_FEATURES) & F_VERSION_1_HI);
  *R(DRIVER_FEATURES_SEL) = 9;
  *R(DRIVER_FEATURES) = F_VERSION_1_HI;
  *R(DRIVER_FEATURES_SEL) = 0;
  *R(DRIVER_FEATURES) = 1;
  *R(STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK;
  line("status with an unoffered feature", *R(STATUS));
  /* QueueNum 0 and 2048 are ignored: the 16 written before them stays. */
  *R(QUEUE_SEL) = 0;
  *R(QUEUE_NUM) = 16;
  *R(QUEUE_NUM) = 0;
  *R(QUEUE_NUM) = 2048;
  wide_addresses = 1;
  setup_queue(16, 0);
  wide_addresses = 0;
  *R(STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
  line("used len (VERSION_1)", request(16, 3));
  ack_interrupt();

  /* 4. Read-only registers ignore writes; a 64-bit read is two 32-bit registers. */
  u32 isr_before = *R(INTERRUPT_STATUS);
  *R(MAGIC) = 0;
  *R(VERSION) = 1;
  *R(DEVICE_ID) = 9;
  *R(VENDOR_ID) = 0;
  *R(QUEUE_NUM_MAX) = 1;
  *R(INTERRUPT_STATUS) = 0xffffffff;
  *R(CONFIG_GENERATION) = 5;
  *R(DEVICE_FEATURES) = 0;
  line("after writes to read-only registers: magic", *R(MAGIC));
  line("  version", *R(VERSION));
  line("  device_id", *R(DEVICE_ID));
  line("  vendor", *R(VENDOR_ID));
  line("  queue_num_max", *R(QUEUE_NUM_MAX));
  line("  interrupt status unchanged", *R(INTERRUPT_STATUS) == isr_before);
  line("  config generation", *R(CONFIG_GENERATION));
  *R(DEVICE_FEATURES_SEL) = 1;
  line("  device features word 1 VERSION_1", *R(DEVICE_FEATURES) & F_VERSION_1_HI);
  line("64-bit read of MagicValue|Version", ld64(VIRTIO0 + MAGIC));
  line("64-bit read of DeviceID|VendorID", ld64(VIRTIO0 + DEVICE_ID));

  /* 5. Outside config space (virtio-rng has none), write-only and unknown registers. */
  line("config 32-bit", *R(CONFIG));
  line("config 8-bit", *(volatile unsigned char *)(VIRTIO0 + CONFIG + 1));
  line("config 16-bit", *(volatile unsigned short *)(VIRTIO0 + CONFIG + 2));
  line("config generation", *R(CONFIG_GENERATION));
  line("write-only QueueNotify reads", *R(QUEUE_NOTIFY));
  line("unknown 0x0f0 reads", *R(0x0f0));
  line("8-bit MagicValue read", *(volatile unsigned char *)(VIRTIO0 + MAGIC));
  *R(STATUS) = 0;
  return 0;
}
