/**
 * Where the x86 KVM machine puts its virtio-mmio windows and how the kernel learns of them:
 * 4 KiB windows from 0xd0000000 (above any guest RAM this machine gives, below the LAPIC and
 * IOAPIC), legacy ISA IRQs the machine has free, described with `virtio_mmio.device=` on the
 * command line (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, set in guest/x86/kernel.config).
 */

/** First window's guest physical address. */
export const VIRTIO_MMIO_BASE = 0xd000_0000;
/** Bytes per window (one virtio-mmio register file). */
export const VIRTIO_MMIO_SIZE = 0x1000;
/** IRQ of window i (ISA lines not used by the UART on 4, the PIT on 0 or the i8042). */
export const VIRTIO_MMIO_IRQS = [5, 6, 7, 10, 11] as const;

/** Guest physical address of window `i`. */
export function virtioMmioBase(i: number): number {
  return VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE;
}

/**
 * The kernel parameters describing `count` windows.
 *
 * @example
 * ```ts
 * virtioMmioCmdline(2); // "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"
 * ```
 */
export function virtioMmioCmdline(count: number): string {
  return Array.from(
    { length: count },
    (_, i) => `virtio_mmio.device=4K@0x${virtioMmioBase(i).toString(16)}:${VIRTIO_MMIO_IRQS[i]}`,
  ).join(" ");
}
