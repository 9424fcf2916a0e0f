/*
 * A virtio-net driver without VIRTIO_F_VERSION_1 on the modern (version 2) transport: it
 * negotiates MAC and STATUS only (low feature word), so QEMU uses the legacy 10-byte
 * virtio_net_hdr in both directions. It sends an ARP request for the gateway 10.0.2.2 behind a
 * 10-byte header and checks that the reply arrives with its Ethernet frame at offset 10 of the
 * receive buffer. QEMU: -netdev user (slirp answers for 10.0.2.2); vmesh: a virtual switch whose
 * gateway answers (10.0.2.2). The two gateways' MACs differ, so only what does not depend on
 * them is printed.
 */
#include "test.h"

#define VIRTIO0 0x10001000ul
#define R(off) ((volatile u32 *)(VIRTIO0 + (off)))
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_MAC (1u << 5)
#define F_STATUS (1u << 16)
#define DESC_F_WRITE 2
#define NUM 8
#define HDR 10

struct desc {
  u64 addr;
  u32 len;
  unsigned short flags, next;
};
struct queue {
  struct desc descs[NUM] __attribute__((aligned(16)));
  volatile unsigned short avail[2 + NUM + 1] __attribute__((aligned(2)));
  volatile u32 used[1 + 2 * NUM + 1] __attribute__((aligned(4)));
  unsigned short avail_idx, seen_used;
};
static struct queue rxq, txq;
static unsigned char rxbuf[4][2048];
static unsigned char txbuf[HDR + 42];
static unsigned char mac[6];

static void setup(unsigned sel, struct queue *q) {
  *R(0x030) = sel;
  CHECK(*R(0x034) >= NUM);
  *R(0x038) = NUM;
  *R(0x080) = (u32)(u64)q->descs;
  *R(0x084) = (u32)((u64)q->descs >> 32);
  *R(0x090) = (u32)(u64)q->avail;
  *R(0x094) = (u32)((u64)q->avail >> 32);
  *R(0x0a0) = (u32)(u64)q->used;
  *R(0x0a4) = (u32)((u64)q->used >> 32);
  *R(0x044) = 1;
}

static void post(struct queue *q, unsigned d, void *buf, u32 len, int writable) {
  q->descs[d] = (struct desc){(u64)buf, len, (unsigned short)(writable ? DESC_F_WRITE : 0), 0};
  q->avail[2 + q->avail_idx % NUM] = (unsigned short)d;
  __asm__ volatile("fence rw, rw" ::: "memory");
  q->avail[1] = ++q->avail_idx;
  __asm__ volatile("fence rw, rw" ::: "memory");
}

/* Waits for the next used element; returns its id and length. */
static int take(struct queue *q, u32 *id, u32 *len) {
  for (long n = 0; n < 200000000 && (q->used[0] >> 16) == q->seen_used; n++) {
    __asm__ volatile("fence rw, rw" ::: "memory");
  }
  if ((q->used[0] >> 16) == q->seen_used) return 0;
  u32 slot = q->seen_used % NUM;
  q->seen_used++;
  *id = q->used[1 + 2 * slot];
  *len = q->used[2 + 2 * slot];
  return 1;
}

static unsigned be16(const unsigned char *p) {
  return (unsigned)p[0] << 8 | p[1];
}

int main(void) {
  CHECK(*R(0x000) == 0x74726976 && *R(0x004) == 2 && *R(0x008) == 1);
  *R(0x070) = 0;
  *R(0x070) = S_ACK | S_DRIVER;
  u32 lo = *R(0x010);
  *R(0x020) = lo & (F_MAC | F_STATUS);
  *R(0x070) = S_ACK | S_DRIVER | S_FEATURES_OK;
  u32 st = *R(0x070);
  print_str_hex("status after FEATURES_OK without VERSION_1", st);
  CHECK(st & S_FEATURES_OK);
  for (int i = 0; i < 6; i++) mac[i] = *(volatile unsigned char *)(VIRTIO0 + 0x100 + i);
  print_str_hex("mac", (u64)mac[0] << 40 | (u64)mac[1] << 32 | (u64)mac[2] << 24 |
                           (u64)mac[3] << 16 | (u64)mac[4] << 8 | mac[5]);
  print_str_hex("link status", *(volatile unsigned short *)(VIRTIO0 + 0x106));
  setup(0, &rxq);
  setup(1, &txq);
  *R(0x070) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
  for (unsigned d = 0; d < 4; d++) post(&rxq, d, rxbuf[d], sizeof rxbuf[d], 1);
  *R(0x050) = 0;

  /* ARP request: who has 10.0.2.2? tell 10.0.2.15 */
  unsigned char *f = txbuf + HDR;
  for (int i = 0; i < HDR; i++) txbuf[i] = 0;
  for (int i = 0; i < 6; i++) f[i] = 0xff, f[6 + i] = mac[i], f[22 + i] = mac[i], f[32 + i] = 0;
  f[12] = 0x08, f[13] = 0x06;                   /* ARP */
  f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0; /* Ethernet, IPv4 */
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;    /* request */
  f[28] = 10, f[29] = 0, f[30] = 2, f[31] = 15;  /* sender 10.0.2.15 */
  f[38] = 10, f[39] = 0, f[40] = 2, f[41] = 2;   /* target 10.0.2.2 */
  post(&txq, 0, txbuf, sizeof txbuf, 0);
  *R(0x050) = 1;
  u32 id, len;
  CHECK(take(&txq, &id, &len));
  print_str_hex("tx used len", len);

  /* The reply, possibly after other frames (slirp may send none; skip non-ARP ones). */
  int found = 0;
  for (int tries = 0; tries < 4 && !found; tries++) {
    if (!take(&rxq, &id, &len)) break;
    const unsigned char *e = rxbuf[id] + HDR; /* legacy header: 10 bytes */
    if (be16(e + 12) != 0x0806) continue;
    found = 1;
    int to_us = 1;
    for (int i = 0; i < 6; i++) to_us &= e[i] == mac[i];
    print_str_hex("reply frame starts at offset 10 (addressed to us)", to_us);
    print_str_hex("reply is an ARP reply", be16(e + 20) == 2);
    print_str_hex("sender ip", (u64)e[28] << 24 | e[29] << 16 | e[30] << 8 | e[31]);
    print_str_hex("target ip", (u64)e[38] << 24 | e[39] << 16 | e[40] << 8 | e[41]);
    print_str_hex("used len covers header and frame", len >= HDR + 42);
    int zero_hdr = 1;
    for (int i = 0; i < HDR; i++) zero_hdr &= rxbuf[id][i] == 0;
    print_str_hex("header bytes all zero", zero_hdr);
  }
  CHECK(found);
  *R(0x070) = 0;
  return 0;
}
