/*
 * Probes all eight virtio-mmio slots of the virt board as a guest that does not read the
 * device tree would: QEMU maps a transport at every slot, so a free slot answers MagicValue,
 * Version and VendorID with DeviceID 0 and ignores writes, where a strict board would fault.
 * Slot 0 holds a virtio-rng device (QEMU: -device virtio-rng-device,bus=virtio-mmio-bus.0 with
 * -global virtio-mmio.force-legacy=false). Prints what it reads; vmesh must print the same.
 */
#include "test.h"

#define SLOT(n) (0x10001000ul + 0x1000ul * (n))
#define R(n, off) (*(volatile u32 *)(SLOT(n) + (off)))

int main(void) {
  int found = 0;
  for (int n = 0; n < 8; n++) {
    trap_reset();
    u32 magic = R(n, 0x000), version = R(n, 0x004), id = R(n, 0x008), vendor = R(n, 0x00c);
    htif_puts("slot ");
    print_dec(n);
    htif_puts(m_trap.count ? " faulted" : "");
    htif_putchar('\n');
    print_str_hex("  magic", magic);
    print_str_hex("  version", version);
    print_str_hex("  device_id", id);
    print_str_hex("  vendor", vendor);
    if (id != 0) found++;
    if (n > 0) {
      /* a free slot takes writes and forgets them */
      R(n, 0x070) = 0x0f;
      R(n, 0x030) = 0;
      print_str_hex("  status after write", R(n, 0x070));
      print_str_hex("  queue_num_max", R(n, 0x034));
      print_str_hex("  config", R(n, 0x100));
      CHECK(m_trap.count == 0);
    }
  }
  print_str_hex("devices found", found);
  CHECK(found == 1);
  return 0;
}
