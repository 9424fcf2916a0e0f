/**
 * The QEMU `virt` board as one table (as hw/riscv/virt.c's `virt_memmap`): every device's
 * address, size, interrupt line and device tree node come from here and nowhere else.
 */
import { cells, cells64, type FdtNode, flag, node, strings } from "./fdt.ts";

/** Phandles and sizes a region's device tree node may refer to. */
export interface FdtContext {
  /** Number of harts. */
  harts: number;
  /** Phandle of hart `i`'s `riscv,cpu-intc` node. */
  intcPhandle(hart: number): number;
  /** Phandle of the PLIC node. */
  plicPhandle: number;
  /** Phandle of the SiFive test (syscon) node. */
  testPhandle: number;
}

/** One row of the memory map. */
export interface MemoryRegion {
  /** Name of the device model (also the FDT node name stem). */
  readonly name: string;
  /** Guest physical base address. */
  readonly base: number;
  /** Bytes the region spans. */
  readonly size: number;
  /** Device tree `compatible` strings, most specific first (empty: no node). */
  readonly compatible: readonly string[];
  /** PLIC source number, when the device interrupts through the PLIC. */
  readonly irq?: number;
  /** Builds the region's nodes under `/soc` (none when absent). */
  readonly fdt?: (region: MemoryRegion, ctx: FdtContext) => FdtNode[];
}

/** Interrupt sources on the PLIC as on QEMU `virt`. */
export const VirtIrq = {
  VIRTIO0: 1,
  UART0: 10,
  RTC: 11,
} as const;

/** PLIC sources QEMU's `virt` board wires (`riscv,ndev`). */
export const PLIC_NDEV = 96;
/** UART input clock as QEMU declares it (3.6864 MHz). */
export const UART_CLOCK_HZ = 0x384000;
/** Number of virtio-mmio slots. */
export const VIRTIO_SLOTS = 8;

const hex = (v: number) => v.toString(16);

/** `reg` for a region with #address-cells = #size-cells = 2. */
const reg = (r: MemoryRegion) => cells64("reg", r.base, r.size);

/** A plain `/soc` device with an interrupt on the PLIC. */
function plicDevice(
  r: MemoryRegion,
  ctx: FdtContext,
  nodeName: string,
  extra = [] as FdtNode["props"],
) {
  return [
    node(`${nodeName}@${hex(r.base)}`, [
      cells("interrupts", r.irq!),
      cells("interrupt-parent", ctx.plicPhandle),
      ...extra,
      reg(r),
      strings("compatible", ...r.compatible),
    ]),
  ];
}

/** The boot ROM (reset vector at its base). */
export const BOOT_ROM: MemoryRegion = {
  name: "boot_rom",
  base: 0x1000,
  size: 0xf000,
  compatible: [],
};

/** SiFive test finisher plus the syscon poweroff/reboot nodes that point at it. */
export const SIFIVE_TEST: MemoryRegion = {
  name: "test",
  base: 0x10_0000,
  size: 0x1000,
  compatible: ["sifive,test1", "sifive,test0", "syscon"],
  fdt: (r, ctx) => [
    node(`test@${hex(r.base)}`, [
      cells("phandle", ctx.testPhandle),
      reg(r),
      strings("compatible", ...r.compatible),
    ]),
  ],
};

/** Goldfish real-time clock. */
export const GOLDFISH_RTC: MemoryRegion = {
  name: "rtc",
  base: 0x10_1000,
  size: 0x1000,
  compatible: ["google,goldfish-rtc"],
  irq: VirtIrq.RTC,
  fdt: (r, ctx) => plicDevice(r, ctx, "rtc"),
};

/** Core-local interruptor: msip, mtimecmp, mtime. */
export const CLINT: MemoryRegion = {
  name: "clint",
  base: 0x200_0000,
  size: 0x1_0000,
  compatible: ["sifive,clint0", "riscv,clint0"],
  fdt: (r, ctx) => {
    const ext: number[] = [];
    for (let h = 0; h < ctx.harts; h++) ext.push(ctx.intcPhandle(h), 3, ctx.intcPhandle(h), 7);
    return [
      node(`clint@${hex(r.base)}`, [
        cells("interrupts-extended", ...ext),
        reg(r),
        strings("compatible", ...r.compatible),
      ]),
    ];
  },
};

/** Platform-level interrupt controller. */
export const PLIC: MemoryRegion = {
  name: "plic",
  base: 0xc00_0000,
  size: 0x60_0000,
  compatible: ["sifive,plic-1.0.0", "riscv,plic0"],
  fdt: (r, ctx) => {
    const ext: number[] = [];
    for (let h = 0; h < ctx.harts; h++) ext.push(ctx.intcPhandle(h), 11, ctx.intcPhandle(h), 9);
    return [
      node(`plic@${hex(r.base)}`, [
        cells("phandle", ctx.plicPhandle),
        cells("riscv,ndev", PLIC_NDEV),
        reg(r),
        cells("interrupts-extended", ...ext),
        flag("interrupt-controller"),
        strings("compatible", ...r.compatible),
        cells("#address-cells", 0),
        cells("#interrupt-cells", 1),
      ]),
    ];
  },
};

/** NS16550A UART, console. */
export const UART0: MemoryRegion = {
  name: "uart0",
  base: 0x1000_0000,
  size: 0x100,
  compatible: ["ns16550a"],
  irq: VirtIrq.UART0,
  fdt: (r, ctx) => plicDevice(r, ctx, "serial", [cells("clock-frequency", UART_CLOCK_HZ)]),
};

/** virtio-mmio slot `n` (0..7); not mapped until a virtio device occupies it. */
export function virtioSlot(n: number): MemoryRegion {
  if (!Number.isInteger(n) || n < 0 || n >= VIRTIO_SLOTS) {
    throw new RangeError(`no virtio slot ${n}`);
  }
  return {
    name: `virtio${n}`,
    base: 0x1000_1000 + n * 0x1000,
    size: 0x1000,
    compatible: ["virtio,mmio"],
    irq: VirtIrq.VIRTIO0 + n,
    fdt: (r, ctx) => plicDevice(r, ctx, "virtio_mmio"),
  };
}

/** Guest DRAM (its size is the machine's RAM size). */
export const DRAM: MemoryRegion = { name: "dram", base: 0x8000_0000, size: 0, compatible: [] };

/** The MMIO devices of the board, in address order (DRAM and virtio slots apart). */
export const VIRT_DEVICES: readonly MemoryRegion[] = [
  BOOT_ROM,
  SIFIVE_TEST,
  GOLDFISH_RTC,
  CLINT,
  PLIC,
  UART0,
];

/** Where a raw kernel image goes when firmware is present (QEMU: firmware end, 2 MiB aligned). */
export const KERNEL_RAW_BASE = 0x8020_0000;
