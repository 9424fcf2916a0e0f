/**
 * The boot ROM at 0x1000 with QEMU `virt`'s reset vector (hw/riscv/boot.c
 * `riscv_setup_rom_reset_vec`): a0 = mhartid, a1 = FDT address, a2 = &fw_dynamic_info, then
 * jump to the start address. The `fw_dynamic_info` record follows the code, for fw_dynamic.
 */
import type { MmioDevice, Stateful } from "../machine/mmio.ts";

/** The reset vector's instructions (RV64). */
const RESET_VEC = [
  0x00000297, // 1: auipc  t0, %pcrel_hi(fw_dyn)
  0x02828613, //    addi   a2, t0, %pcrel_lo(1b)
  0xf1402573, //    csrr   a0, mhartid
  0x0202b583, //    ld     a1, 32(t0)
  0x0182b283, //    ld     t0, 24(t0)
  0x00028067, //    jr     t0
];
/** `fw_dynamic_info` magic ("OSBI"). */
const FW_DYNAMIC_INFO_MAGIC = 0x4942534f;
const FW_DYNAMIC_INFO_VERSION = 2;
/** Next-stage privilege mode for fw_dynamic: S-mode. */
const NEXT_MODE_S = 1;

/** Where to go after reset. */
export interface BootRomOptions {
  /** Address the reset vector jumps to (firmware or bare-metal program entry). */
  startAddr: number;
  /** Guest physical address of the device tree blob (passed in a1). */
  fdtAddr: number;
  /** Where fw_dynamic continues (the kernel entry); defaults to 0. */
  nextAddr?: number;
  /** Size of the ROM region in bytes. */
  size: number;
}

/** A read-only memory holding the reset vector. */
export class BootRom implements MmioDevice, Stateful<{ bytes: Uint8Array }> {
  readonly name = "boot_rom";
  #bytes: Uint8Array;

  constructor(opts: BootRomOptions) {
    this.#bytes = new Uint8Array(opts.size);
    const dv = new DataView(this.#bytes.buffer);
    RESET_VEC.forEach((insn, i) => dv.setUint32(i * 4, insn, true));
    const u64 = (off: number, v: number) => {
      dv.setUint32(off, v >>> 0, true);
      dv.setUint32(off + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
    };
    u64(24, opts.startAddr);
    u64(32, opts.fdtAddr);
    // fw_dynamic_info at 40: magic, version, next_addr, next_mode, options, boot_hart.
    u64(40, FW_DYNAMIC_INFO_MAGIC);
    u64(48, FW_DYNAMIC_INFO_VERSION);
    u64(56, opts.nextAddr ?? 0);
    u64(64, NEXT_MODE_S);
    u64(72, 0);
    u64(80, 0);
  }

  /** The ROM contents. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    const b = this.#bytes;
    if (offset + size > b.length) return 0;
    if (size === 1) return b[offset];
    if (size === 2) return b[offset] | (b[offset + 1] << 8);
    return (b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24)) >>> 0;
  }

  write(_offset: number, _size: 1 | 2 | 4, _value: number): void {
    // ROM: writes are ignored.
  }

  save(): { bytes: Uint8Array } {
    return { bytes: this.#bytes.slice() };
  }

  load(state: { bytes: Uint8Array }): void {
    this.#bytes = state.bytes.slice();
  }
}
