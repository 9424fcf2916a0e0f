/**
 * The ELF vmlinux loader: the uncompressed x86-64 kernel, loaded segment by segment at the
 * physical addresses of its PT_LOAD headers and entered at e_entry (startup_64, a physical
 * address) with the 64-bit boot protocol, as Firecracker boots. Skips the bzImage decompressor.
 */

/** One PT_LOAD segment. */
export interface ElfSegment {
  /** Guest-physical load address (p_paddr). */
  paddr: number;
  /** The file bytes (p_filesz). */
  data: Uint8Array;
  /** Size in memory (p_memsz): the rest after data is zeroed. */
  memsz: number;
}

/** A parsed ELF vmlinux. */
export interface ElfVmlinux {
  /** Physical entry point (startup_64). */
  entry: number;
  segments: ElfSegment[];
}

const PT_LOAD = 1, EM_X86_64 = 62;

/** True when `image` starts with the ELF magic. */
export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c &&
    image[3] === 0x46;
}

/**
 * Parses an x86-64 ELF vmlinux; throws a clear error for 32-bit, other machines or no segments.
 *
 * @example
 * ```ts
 * const elf = parseVmlinux(await Deno.readFile("vmlinux"));
 * console.log(elf.entry.toString(16)); // 1000000
 * ```
 */
export function parseVmlinux(image: Uint8Array): ElfVmlinux {
  if (!isElf(image)) throw new Error("not an ELF file (no \\x7fELF magic)");
  if (image.length < 64) {
    throw new Error(
      `ELF vmlinux truncated: ${image.length} bytes, shorter than its 64-byte header`,
    );
  }
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image[4] !== 2 || image[5] !== 1) {
    throw new Error("ELF vmlinux is not 64-bit little-endian: pass an x86-64 kernel");
  }
  const machine = v.getUint16(0x12, true);
  if (machine !== EM_X86_64) {
    throw new Error(`ELF vmlinux is for machine ${machine}, not x86-64 (${EM_X86_64})`);
  }
  const entry = Number(v.getBigUint64(0x18, true));
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true), phnum = v.getUint16(0x38, true);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 56 > image.length) throw new Error("ELF vmlinux truncated: program headers cut off");
    if (v.getUint32(o, true) !== PT_LOAD) continue;
    const offset = Number(v.getBigUint64(o + 8, true));
    const paddr = Number(v.getBigUint64(o + 24, true));
    const filesz = Number(v.getBigUint64(o + 32, true));
    const memsz = Number(v.getBigUint64(o + 40, true));
    if (offset + filesz > image.length) {
      throw new Error(`ELF vmlinux truncated: segment ${i} ends past the file`);
    }
    segments.push({ paddr, data: image.subarray(offset, offset + filesz), memsz });
  }
  if (segments.length === 0) throw new Error("ELF vmlinux has no PT_LOAD segment");
  return { entry, segments };
}
