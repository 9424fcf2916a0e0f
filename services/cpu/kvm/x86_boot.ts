/**
 * The x86-64 boot layout written into guest RAM, as Firecracker does it: GDT at 0x500, IDT
 * at 0x520, zero page at 0x7000, stack below 0x8ff0, identity page tables (1 GiB in 2 MiB
 * pages) at 0x9000, command line at 0x20000, a bzImage's protected-mode code at 1 MiB (or an
 * ELF vmlinux at its segments' physical addresses), initrd at the top of RAM.
 */
import { type BzImage, SETUP_HEADER_OFFSET } from "./bzimage.ts";
import type { ElfVmlinux } from "./elf_vmlinux.ts";

/** A kernel the loader knows: a bzImage (its decompressor runs first) or an ELF vmlinux. */
export type KernelImage = { format: "bzImage"; bz: BzImage } | {
  format: "elf";
  elf: ElfVmlinux;
};

/** Guest-physical addresses of the boot structures. */
export const LAYOUT = {
  gdt: 0x500,
  idt: 0x520,
  zeroPage: 0x7000,
  stack: 0x8ff0,
  pml4: 0x9000,
  pdpte: 0xa000,
  pde: 0xb000,
  cmdline: 0x20000,
  cmdlineMax: 0x10000,
  ebdaStart: 0x9fc00,
  kernel: 0x100000,
} as const;

/** The GDT entries: null, 64-bit code (0x08), data (0x10), TSS (0x18). */
export const GDT = [0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn, 0x008f8b000000ffffn];

/** What the vCPU registers must hold at the 64-bit entry. */
export interface BootEntry {
  rip: number;
  rsp: number;
  rsi: number;
}

/** Copies the kernel into `ram`; returns its entry point and the end of its image. */
function loadKernel(ram: Uint8Array, kernel: KernelImage): { entry: number; end: number } {
  const tooSmall = () => new Error(`guest RAM (${ram.length >> 20} MiB) too small for the kernel`);
  if (kernel.format === "bzImage") {
    const end = LAYOUT.kernel + kernel.bz.kernel.length;
    if (end > ram.length) throw tooSmall();
    ram.set(kernel.bz.kernel, LAYOUT.kernel);
    return { entry: LAYOUT.kernel + 0x200, end }; // startup_64 of the decompressor
  }
  let end = 0;
  for (const seg of kernel.elf.segments) {
    if (seg.paddr < LAYOUT.kernel || seg.paddr + seg.memsz > ram.length) throw tooSmall();
    ram.set(seg.data, seg.paddr);
    ram.fill(0, seg.paddr + seg.data.length, seg.paddr + seg.memsz);
    end = Math.max(end, seg.paddr + seg.memsz);
  }
  return { entry: kernel.elf.entry, end };
}

/** Writes kernel, initrd, command line, zero page, page tables and GDT into `ram`. */
export function writeBootLayout(
  ram: Uint8Array,
  kernel: KernelImage,
  cmdline: string,
  initrd: Uint8Array | undefined,
): BootEntry {
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const memSize = ram.length;
  const loaded = loadKernel(ram, kernel);
  // GDT and an empty IDT.
  GDT.forEach((e, i) => v.setBigUint64(LAYOUT.gdt + i * 8, e, true));
  v.setBigUint64(LAYOUT.idt, 0n, true);
  // Identity map of the first GiB: PML4[0] -> PDPT[0] -> 512 2-MiB pages.
  v.setBigUint64(LAYOUT.pml4, BigInt(LAYOUT.pdpte | 3), true);
  v.setBigUint64(LAYOUT.pdpte, BigInt(LAYOUT.pde | 3), true);
  for (let i = 0; i < 512; i++) {
    v.setBigUint64(LAYOUT.pde + i * 8, (BigInt(i) << 21n) | 0x83n, true);
  }
  // Command line.
  const cl = new TextEncoder().encode(cmdline);
  if (cl.length >= LAYOUT.cmdlineMax) throw new Error("kernel command line too long");
  ram.set(cl, LAYOUT.cmdline);
  ram[LAYOUT.cmdline + cl.length] = 0;
  // Zero page: the image's setup header, then what the loader fills in.
  const zp = LAYOUT.zeroPage;
  ram.fill(0, zp, zp + 4096);
  if (kernel.format === "bzImage") ram.set(kernel.bz.setupHeader, zp + SETUP_HEADER_OFFSET);
  else {
    v.setUint16(zp + 0x206, 0x20f, true); // version: what the kernel may read of the header
    v.setUint32(zp + 0x230, 0x1000000, true); // kernel_alignment
  }
  v.setUint16(zp + 0x1fe, 0xaa55, true); // boot_flag
  v.setUint32(zp + 0x202, 0x53726448, true); // "HdrS"
  ram[zp + 0x210] = 0xff; // type_of_loader: undefined
  ram[zp + 0x211] |= 0x01 | 0x80; // loadflags: LOADED_HIGH | CAN_USE_HEAP
  v.setUint16(zp + 0x224, 0xfe00, true); // heap_end_ptr
  v.setUint32(zp + 0x228, LAYOUT.cmdline, true); // cmd_line_ptr
  v.setUint32(zp + 0x238, cl.length, true); // cmdline_size
  if (initrd) {
    const addrMax = kernel.format === "bzImage" ? kernel.bz.initrdAddrMax : 0x7fffffff;
    const max = Math.min(memSize, addrMax + 1, 0x4000_0000);
    const at = (max - initrd.length) & ~0xfff;
    if (at < loaded.end) {
      throw new Error("guest RAM too small for the initrd");
    }
    ram.set(initrd, at);
    v.setUint32(zp + 0x218, at, true); // ramdisk_image
    v.setUint32(zp + 0x21c, initrd.length, true); // ramdisk_size
  }
  // e820: low RAM below the EBDA, then RAM from 1 MiB to the end.
  const e820 = [[0, LAYOUT.ebdaStart], [LAYOUT.kernel, memSize - LAYOUT.kernel]];
  e820.forEach(([addr, size], i) => {
    const o = zp + 0x2d0 + i * 20;
    v.setBigUint64(o, BigInt(addr), true);
    v.setBigUint64(o + 8, BigInt(size), true);
    v.setUint32(o + 16, 1, true); // E820_RAM
  });
  ram[zp + 0x1e8] = e820.length;
  return { rip: loaded.entry, rsp: LAYOUT.stack, rsi: zp };
}
