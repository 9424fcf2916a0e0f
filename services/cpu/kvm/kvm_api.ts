/**
 * KVM ioctl numbers, exit reasons and struct layouts (x86-64, <linux/kvm.h>), as plain
 * numbers and byte offsets so the engine can fill structs in Uint8Arrays passed over FFI.
 */

const IO = (nr: number) => (0xae << 8) | nr;
const IOW = (nr: number, size: number) => ((1 << 30) | (size << 16) | (0xae << 8) | nr) >>> 0;
const IOR = (nr: number, size: number) => ((2 << 30) | (size << 16) | (0xae << 8) | nr) >>> 0;
const IOWR = (nr: number, size: number) => ((3 << 30) | (size << 16) | (0xae << 8) | nr) >>> 0;

/** Sizes of the structs passed to the ioctls below. */
export const SIZE = {
  regs: 144,
  sregs: 312,
  fpu: 416,
  userspaceMemoryRegion: 32,
  pitConfig: 64,
  irqLevel: 8,
  cpuidEntry2: 40,
} as const;

/** The ioctl request numbers used by the engine. */
export const KVM = {
  GET_API_VERSION: IO(0x00),
  CREATE_VM: IO(0x01),
  CHECK_EXTENSION: IO(0x03),
  GET_VCPU_MMAP_SIZE: IO(0x04),
  GET_SUPPORTED_CPUID: IOWR(0x05, 8),
  CREATE_VCPU: IO(0x41),
  SET_USER_MEMORY_REGION: IOW(0x46, SIZE.userspaceMemoryRegion),
  SET_TSS_ADDR: IO(0x47),
  SET_IDENTITY_MAP_ADDR: IOW(0x48, 8),
  CREATE_IRQCHIP: IO(0x60),
  IRQ_LINE: IOW(0x61, SIZE.irqLevel),
  CREATE_PIT2: IOW(0x77, SIZE.pitConfig),
  RUN: IO(0x80),
  GET_REGS: IOR(0x81, SIZE.regs),
  SET_REGS: IOW(0x82, SIZE.regs),
  GET_SREGS: IOR(0x83, SIZE.sregs),
  SET_SREGS: IOW(0x84, SIZE.sregs),
  SET_FPU: IOW(0x8d, SIZE.fpu),
  SET_CPUID2: IOW(0x90, 8),
  GET_VCPU_EVENTS: IOR(0x9f, 64),
  SET_VCPU_EVENTS: IOW(0xa0, 64),
} as const;

/** The KVM API version this engine speaks (the only stable one since Linux 2.6.22). */
export const KVM_API_VERSION = 12;

/** KVM_CHECK_EXTENSION capabilities the machine requires. */
export const CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  PIT2: 33,
  IMMEDIATE_EXIT: 136,
} as const;

/** kvm_run.exit_reason values. */
export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

/** Names of exit reasons for error messages. */
export const EXIT_NAME: Record<number, string> = Object.fromEntries(
  Object.entries(EXIT).map(([k, v]) => [v, `KVM_EXIT_${k}`]),
);

/** Byte offsets inside the mmap'ed struct kvm_run. */
export const RUN = {
  immediateExit: 1,
  exitReason: 8,
  /** Union start: io.direction (u8), io.size (u8), io.port (u16), io.count (u32), io.data_offset (u64). */
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  /** mmio.phys_addr (u64), mmio.data[8], mmio.len (u32), mmio.is_write (u8). */
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  /** fail_entry.hardware_entry_failure_reason / internal.suberror / system_event.type. */
  union: 32,
} as const;

/** kvm_run.io.direction. */
export const IO_IN = 0, IO_OUT = 1;

/** kvm_regs field offsets (u64 each). */
export const REGS = {
  rax: 0,
  rbx: 8,
  rcx: 16,
  rdx: 24,
  rsi: 32,
  rdi: 40,
  rsp: 48,
  rbp: 56,
  rip: 128,
  rflags: 136,
} as const;

/** kvm_sregs offsets: eight 24-byte kvm_segment, two 16-byte kvm_dtable, then control regs. */
export const SREGS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
} as const;
