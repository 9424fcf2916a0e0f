/**
 * Generates the machine's device tree from the memory map, the way QEMU's `virt` board does
 * (hw/riscv/virt.c `create_fdt`), so OpenSBI and Linux find the same nodes.
 */
import { cells, cells64, type FdtNode, flag, node, strings, writeFdt } from "./fdt.ts";
import { DRAM, type FdtContext, type MemoryRegion, UART0 } from "./memory_map.ts";
import { TIMEBASE_HZ } from "./clock.ts";

/** The ISA string in QEMU 7.2's style (base letters, then multi-letter extensions). */
export const RISCV_ISA = "rv64imafdc_zicsr_zifencei_sstc";

/** What the generated tree describes. */
export interface DeviceTreeOptions {
  /** Number of harts. */
  harts: number;
  /** Bytes of DRAM at `DRAM.base`. */
  ramSize: number;
  /** Mapped MMIO regions that get nodes under `/soc`. */
  regions: readonly MemoryRegion[];
  /** Kernel command line (`/chosen/bootargs`). */
  bootargs?: string;
  /** Initrd location in guest physical memory. */
  initrd?: { start: number; end: number };
  /** Seed for `/chosen/rng-seed` (32 bytes), if any. */
  rngSeed?: Uint8Array;
  /** `mmu-type` (QEMU's default `riscv,sv48`). */
  mmuType?: string;
}

/** Builds the tree as nodes. */
export function buildDeviceTree(opts: DeviceTreeOptions): FdtNode {
  // QEMU numbers phandles from the last hart down: cpu@N-1 is 1, its intc 2, cpu@0 2N-1.
  const cpuPhandle = (h: number) => 1 + 2 * (opts.harts - 1 - h);
  const ctx: FdtContext = {
    harts: opts.harts,
    intcPhandle: (h) => cpuPhandle(h) + 1,
    plicPhandle: 1 + 2 * opts.harts,
    testPhandle: 2 + 2 * opts.harts,
  };
  const cpus: FdtNode[] = [];
  const cores: FdtNode[] = [];
  for (let h = 0; h < opts.harts; h++) {
    cpus.push(node(`cpu@${h}`, [
      cells("phandle", cpuPhandle(h)),
      strings("device_type", "cpu"),
      cells("reg", h),
      strings("status", "okay"),
      strings("compatible", "riscv"),
      strings("riscv,isa", RISCV_ISA),
      strings("mmu-type", opts.mmuType ?? "riscv,sv48"),
    ], [
      node("interrupt-controller", [
        cells("#interrupt-cells", 1),
        flag("interrupt-controller"),
        strings("compatible", "riscv,cpu-intc"),
        cells("phandle", ctx.intcPhandle(h)),
      ]),
    ]));
    cores.push(node(`core${h}`, [cells("cpu", cpuPhandle(h))]));
  }
  const soc = node("soc", [
    cells("#address-cells", 2),
    cells("#size-cells", 2),
    strings("compatible", "simple-bus"),
    flag("ranges"),
  ]);
  for (const r of opts.regions) if (r.fdt) soc.children.push(...r.fdt(r, ctx));

  const chosen = node("chosen", [strings("stdout-path", `/soc/serial@${UART0.base.toString(16)}`)]);
  if (opts.bootargs !== undefined) chosen.props.push(strings("bootargs", opts.bootargs));
  if (opts.initrd) {
    chosen.props.push(cells64("linux,initrd-start", opts.initrd.start));
    chosen.props.push(cells64("linux,initrd-end", opts.initrd.end));
  }
  if (opts.rngSeed) chosen.props.push({ name: "rng-seed", value: opts.rngSeed });

  const hasTest = opts.regions.some((r) => r.name === "test");
  const syscon = hasTest
    ? [
      node("poweroff", [
        cells("value", 0x5555),
        cells("offset", 0),
        cells("regmap", ctx.testPhandle),
        strings("compatible", "syscon-poweroff"),
      ]),
      node("reboot", [
        cells("value", 0x7777),
        cells("offset", 0),
        cells("regmap", ctx.testPhandle),
        strings("compatible", "syscon-reboot"),
      ]),
    ]
    : [];

  return node("", [
    cells("#address-cells", 2),
    cells("#size-cells", 2),
    strings("compatible", "riscv-virtio"),
    strings("model", "riscv-virtio,qemu"),
  ], [
    chosen,
    ...syscon,
    node(`memory@${DRAM.base.toString(16)}`, [
      strings("device_type", "memory"),
      cells64("reg", DRAM.base, opts.ramSize),
    ]),
    node("cpus", [
      cells("#address-cells", 1),
      cells("#size-cells", 0),
      cells("timebase-frequency", TIMEBASE_HZ),
    ], [...cpus, node("cpu-map", [], [node("cluster0", [], cores)])]),
    soc,
  ]);
}

/** Builds the tree and serializes it to a DTB. */
export function deviceTreeBlob(opts: DeviceTreeOptions): Uint8Array {
  return writeFdt(buildDeviceTree(opts));
}
