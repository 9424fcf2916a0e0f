/*
 * An xv6-style virtio-blk driver on the modern (version 2) virtio-mmio transport: it writes
 * only the low 32 DriverFeatures bits (never VIRTIO_F_VERSION_1, dropping RO, SCSI,
 * CONFIG_WCE, MQ, ANY_LAYOUT, EVENT_IDX and INDIRECT as xv6 does), expects FEATURES_OK to stick,
 * reads sector 3 before setting DRIVER_OK (QEMU serves it), then reads sector 1, writes sector 2
 * and reads it back, flushes, and sends an unknown request type and a read beyond the disk. The disk (slot 0) holds "sector N" at the start of each sector N; the test compares
 * what QEMU and vmesh print and the disk images they leave behind.
 */
#include "test.h"

#define VIRTIO0 0x10001000ul
#define R(off) ((volatile u32 *)(VIRTIO0 + (off)))
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_RO (1u << 5)
#define F_SCSI (1u << 7)
#define F_CONFIG_WCE (1u << 11)
#define F_MQ (1u << 12)
#define F_ANY_LAYOUT (1u << 27)
#define F_INDIRECT (1u << 28)
#define F_EVENT_IDX (1u << 29)
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define NUM 8

struct desc {
  u64 addr;
  u32 len;
  unsigned short flags, next;
};
struct req {
  u32 type, reserved;
  u64 sector;
};
static struct desc descs[NUM] __attribute__((aligned(16)));
static volatile unsigned short avail[2 + NUM + 1] __attribute__((aligned(2)));
static volatile u32 used[1 + 2 * NUM + 1] __attribute__((aligned(4)));
static struct req hdr;
static unsigned char data[512];
static volatile unsigned char status;
static unsigned short avail_idx, seen_used;

/* One request: header, optional 512-byte data buffer, status byte. Returns the used length. */
static u32 request(u32 type, u64 sector, int with_data, int device_writes_data) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xff;
  descs[0] = (struct desc){(u64)&hdr, sizeof hdr, DESC_F_NEXT, 1};
  unsigned last = 1;
  if (with_data) {
    descs[1] = (struct desc){(u64)data, 512,
                             (unsigned short)(DESC_F_NEXT | (device_writes_data ? DESC_F_WRITE : 0)), 2};
    last = 2;
  }
  descs[last] = (struct desc){(u64)&status, 1, DESC_F_WRITE, 0};
  avail[2 + avail_idx % NUM] = 0;
  __asm__ volatile("fence rw, rw" ::: "memory");
  avail[1] = ++avail_idx;
  __asm__ volatile("fence rw, rw" ::: "memory");
  *R(0x050) = 0;
  for (long n = 0; n < 100000000 && (used[0] >> 16) == seen_used; n++) {
    __asm__ volatile("fence rw, rw" ::: "memory");
  }
  CHECK((used[0] >> 16) != seen_used);
  u32 slot = seen_used % NUM;
  seen_used++;
  CHECK(used[1 + 2 * slot] == 0);
  u32 isr = *R(0x060);
  *R(0x064) = isr;
  CHECK(isr & 1);
  return used[2 + 2 * slot];
}

static void print_text(const char *label, const unsigned char *p, int n) {
  htif_puts(label);
  htif_puts("=\"");
  for (int i = 0; i < n && p[i]; i++) htif_putchar(p[i]);
  htif_puts("\"\n");
}

int main(void) {
  CHECK(*R(0x000) == 0x74726976 && *R(0x004) == 2 && *R(0x008) == 2);
  *R(0x070) = 0;
  *R(0x070) = S_ACK;
  *R(0x070) = S_ACK | S_DRIVER;
  u32 features = *R(0x010);
  features &= ~(F_RO | F_SCSI | F_CONFIG_WCE | F_MQ | F_ANY_LAYOUT | F_EVENT_IDX | F_INDIRECT);
  *R(0x020) = features;
  *R(0x070) = S_ACK | S_DRIVER | S_FEATURES_OK;
  u32 st = *R(0x070);
  print_str_hex("status after FEATURES_OK without VERSION_1", st);
  CHECK(st & S_FEATURES_OK);
  print_str_hex("capacity lo", *R(0x100));
  print_str_hex("capacity hi", *R(0x104));
  print_str_hex("seg_max", *R(0x10c));
  print_str_hex("blk_size", *R(0x114));
  *R(0x030) = 0;
  CHECK(*R(0x044) == 0);
  CHECK(*R(0x034) >= NUM);
  *R(0x038) = NUM;
  *R(0x080) = (u32)(u64)descs;
  *R(0x084) = (u32)((u64)descs >> 32);
  *R(0x090) = (u32)(u64)avail;
  *R(0x094) = (u32)((u64)avail >> 32);
  *R(0x0a0) = (u32)(u64)used;
  *R(0x0a4) = (u32)((u64)used >> 32);
  *R(0x044) = 1;
  /* QEMU's virtio-blk serves a kick before DRIVER_OK (legacy drivers read that early). */
  u32 early = request(0, 3, 1, 1);
  print_str_hex("read before DRIVER_OK: used len", early);
  print_text("read before DRIVER_OK: text", data, 16);
  *R(0x070) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;

  u32 len = request(0, 1, 1, 1); /* VIRTIO_BLK_T_IN, sector 1 */
  print_str_hex("read sector 1: used len", len);
  print_str_hex("read sector 1: status", status);
  print_text("read sector 1: text", data, 16);
  CHECK(status == 0 && data[0] == 's' && data[7] == '1');

  for (int i = 0; i < 512; i++) data[i] = (unsigned char)(i * 7 + 3);
  const char *msg = "written by the guest";
  for (int i = 0; msg[i]; i++) data[i] = (unsigned char)msg[i];
  data[20] = 0;
  len = request(1, 2, 1, 0); /* VIRTIO_BLK_T_OUT, sector 2 */
  print_str_hex("write sector 2: used len", len);
  print_str_hex("write sector 2: status", status);
  for (int i = 0; i < 512; i++) data[i] = 0;
  len = request(0, 2, 1, 1);
  print_str_hex("read back sector 2: status", status);
  print_text("read back sector 2: text", data, 32);
  u32 sum = 0;
  for (int i = 21; i < 512; i++) sum = sum * 31 + data[i];
  print_str_hex("read back sector 2: tail hash", sum);

  len = request(4, 0, 0, 0); /* VIRTIO_BLK_T_FLUSH */
  print_str_hex("flush: status", status);
  len = request(99, 0, 0, 0); /* unknown type */
  print_str_hex("unknown type: status (UNSUPP)", status);
  len = request(0, 1u << 30, 1, 1); /* beyond the disk */
  print_str_hex("read beyond the end: status (IOERR)", status);
  *R(0x070) = 0;
  return 0;
}
