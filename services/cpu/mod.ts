/**
 * The CPU service's public face: the `virt` machine, its memory map and device tree, the
 * device models, and the image loaders.
 */
export {
  EXIT_STOPPED,
  type HartConfig,
  Machine,
  MachineError,
  type MachineHart,
  type MachineOptions,
  type StopCause,
} from "./machine/machine.ts";
export * from "./machine/memory_map.ts";
export {
  buildDeviceTree,
  deviceTreeBlob,
  type DeviceTreeOptions,
  RISCV_ISA,
} from "./machine/device_tree.ts";
export { type FdtNode, type FdtProp, writeFdt } from "./machine/fdt.ts";
export { ElfError, type ElfImage, isElf, loadElf, parseElf } from "./machine/elf.ts";
export { Htif } from "./machine/htif.ts";
export { MmioBus } from "./machine/physical_bus.ts";
export { HartIrqLines } from "./machine/hart_irq.ts";
export { InstructionClock, TIMEBASE_HZ, type VmClock, WallClock } from "./machine/clock.ts";
export { Irq, type MmioDevice, type PhysicalBus, type Stateful } from "./machine/mmio.ts";
export { DRAM_BASE, GuestMemory, guestPhysical, HartLayout, hostOffset } from "./guest_memory.ts";
export { type EngineSnapshot, type ExecutionEngine, StopReason } from "./engine.ts";
export { Clint } from "./devices/clint.ts";
export { Plic } from "./devices/plic.ts";
export { Uart16550 } from "./devices/uart16550.ts";
export { SifiveTest } from "./devices/sifive_test.ts";
export { GoldfishRtc } from "./devices/goldfish_rtc.ts";
export { BootRom } from "./devices/boot_rom.ts";
