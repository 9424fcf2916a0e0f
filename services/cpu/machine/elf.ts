/**
 * ELF64 little-endian RISC-V loader: validates the file, copies PT_LOAD segments to their
 * physical addresses in guest RAM, and exposes the symbol table (for HTIF's tohost/fromhost).
 */
import type { GuestMemory } from "../guest_memory.ts";

/** A file that cannot be loaded; the message is one line meant for the user. */
export class ElfError extends Error {
  override name = "ElfError";
}

const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const ET_EXEC = 2;
const ET_DYN = 3;
const EHDR_BYTES = 64;
const PHDR_BYTES = 56;
const SHDR_BYTES = 64;

/** One loadable segment. */
export interface ElfSegment {
  paddr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

/** A parsed ELF image. */
export interface ElfImage {
  /** Entry point address. */
  entry: number;
  /** PT_LOAD segments with non-zero memory size. */
  segments: ElfSegment[];
  /** Symbol values by name (from .symtab; empty when stripped). */
  symbols: Map<string, number>;
  /** Lowest and highest (exclusive) physical address the segments cover. */
  low: number;
  high: number;
}

/** True when `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Reads a u64 as a JS number; rejects values that do not fit in 53 bits. */
function u64(dv: DataView, off: number, what: string): number {
  const lo = dv.getUint32(off, true), hi = dv.getUint32(off + 4, true);
  if (hi >= 0x20_0000) {
    throw new ElfError(
      `${what} 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is out of range`,
    );
  }
  return hi * 0x1_0000_0000 + lo;
}

/** Parses and validates an ELF64 RISC-V executable. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (!isElf(bytes)) throw new ElfError("not an ELF file (bad magic)");
  if (bytes.length < EHDR_BYTES) throw new ElfError("truncated ELF header");
  if (bytes[4] !== 2) throw new ElfError("not a 64-bit ELF (class " + bytes[4] + ")");
  if (bytes[5] !== 1) throw new ElfError("not a little-endian ELF");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) throw new ElfError(`not a RISC-V ELF (machine ${machine})`);
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new ElfError(`not an executable ELF (type ${type})`);
  }
  const entry = u64(dv, 24, "entry point");
  const phoff = u64(dv, 32, "program header offset");
  const shoff = u64(dv, 40, "section header offset");
  const phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  const shentsize = dv.getUint16(58, true), shnum = dv.getUint16(60, true);
  if (phnum === 0) throw new ElfError("ELF has no program headers");
  if (phentsize !== PHDR_BYTES) throw new ElfError(`bad program header size ${phentsize}`);
  if (phoff + phnum * PHDR_BYTES > bytes.length) {
    throw new ElfError("truncated ELF program headers");
  }

  const segments: ElfSegment[] = [];
  let low = Infinity, high = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * PHDR_BYTES;
    if (dv.getUint32(o, true) !== PT_LOAD) continue;
    const fileOffset = u64(dv, o + 8, "segment offset");
    const paddr = u64(dv, o + 24, "segment address");
    const fileSize = u64(dv, o + 32, "segment size");
    const memSize = u64(dv, o + 40, "segment size");
    if (memSize === 0) continue;
    if (fileSize > memSize) throw new ElfError(`segment ${i} file size exceeds its memory size`);
    if (fileOffset + fileSize > bytes.length) {
      throw new ElfError(`truncated ELF: segment ${i} extends past the end of the file`);
    }
    segments.push({ paddr, fileOffset, fileSize, memSize });
    low = Math.min(low, paddr);
    high = Math.max(high, paddr + memSize);
  }
  if (segments.length === 0) throw new ElfError("ELF has no loadable segments");

  const symbols = new Map<string, number>();
  if (
    shoff !== 0 && shnum !== 0 && shentsize === SHDR_BYTES &&
    shoff + shnum * SHDR_BYTES <= bytes.length
  ) {
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * SHDR_BYTES;
      if (dv.getUint32(o + 4, true) !== SHT_SYMTAB) continue;
      const symOff = u64(dv, o + 24, "symtab offset"), symSize = u64(dv, o + 32, "symtab size");
      const link = dv.getUint32(o + 40, true);
      if (link >= shnum || symOff + symSize > bytes.length) continue;
      const so = shoff + link * SHDR_BYTES;
      const strOff = u64(dv, so + 24, "strtab offset"), strSize = u64(dv, so + 32, "strtab size");
      if (strOff + strSize > bytes.length) continue;
      const dec = new TextDecoder();
      for (let s = symOff; s + 24 <= symOff + symSize; s += 24) {
        const nameOff = dv.getUint32(s, true);
        if (nameOff === 0 || nameOff >= strSize) continue;
        let end = strOff + nameOff;
        while (end < strOff + strSize && bytes[end] !== 0) end++;
        const name = dec.decode(bytes.subarray(strOff + nameOff, end));
        const hi = dv.getUint32(s + 12, true);
        if (hi >= 0x20_0000) continue;
        if (!symbols.has(name)) symbols.set(name, hi * 0x1_0000_0000 + dv.getUint32(s + 8, true));
      }
    }
  }
  return { entry, segments, symbols, low, high };
}

/** Copies an image's segments into guest RAM; every segment must lie inside RAM. */
export function loadElf(
  mem: GuestMemory,
  bytes: Uint8Array,
  image: ElfImage = parseElf(bytes),
): ElfImage {
  for (const s of image.segments) {
    if (!mem.inRam(s.paddr, s.memSize)) {
      throw new ElfError(
        `segment at 0x${s.paddr.toString(16)} (+0x${
          s.memSize.toString(16)
        } bytes) lies outside RAM ` +
          `[0x80000000, 0x${(0x8000_0000 + mem.ramSize).toString(16)})`,
      );
    }
  }
  for (const s of image.segments) {
    mem.writePhys(s.paddr, bytes.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    if (s.memSize > s.fileSize) {
      mem.writePhys(s.paddr + s.fileSize, new Uint8Array(s.memSize - s.fileSize));
    }
  }
  return image;
}
