/** The RISC-V ELF loader (services/cpu/machine/elf.ts): every input loads or throws ElfError. */
import { GuestMemory } from "../services/cpu/guest_memory.ts";
import { ElfError, loadElf, parseElf } from "../services/cpu/machine/elf.ts";
import { mutate } from "./bytes.ts";
import type { Prng } from "./prng.ts";
import { expecting, type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

/**
 * A small valid ELF64 RISC-V executable: one PT_LOAD segment, a symtab and a strtab.
 *
 * @example
 * ```ts
 * parseElf(riscvElfTemplate()).symbols.get("tohost"); // 0x80001000
 * ```
 */
export function riscvElfTemplate(): Uint8Array {
  const b = new Uint8Array(0x220);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setBigUint64(24, 0x8000_0000n, true); // entry
  v.setBigUint64(32, 64n, true); // phoff
  v.setBigUint64(40, 0x160n, true); // shoff
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 3, true);
  // PT_LOAD: 16 bytes of file at 0x100, 32 bytes in memory at DRAM base.
  v.setUint32(64, 1, true);
  v.setBigUint64(64 + 8, 0x100n, true);
  v.setBigUint64(64 + 16, 0x8000_0000n, true);
  v.setBigUint64(64 + 24, 0x8000_0000n, true);
  v.setBigUint64(64 + 32, 16n, true);
  v.setBigUint64(64 + 40, 32n, true);
  b.fill(0x13, 0x100, 0x110);
  // Symbols: null, tohost = 0x80001000.
  v.setUint32(0x110 + 24, 1, true);
  v.setBigUint64(0x110 + 24 + 8, 0x8000_1000n, true);
  b.set(new TextEncoder().encode("\0tohost\0fromhost\0"), 0x140);
  // Sections: null, .symtab (link 2), .strtab.
  v.setUint32(0x1a0 + 4, 2, true);
  v.setBigUint64(0x1a0 + 24, 0x110n, true);
  v.setBigUint64(0x1a0 + 32, 48n, true);
  v.setUint32(0x1a0 + 40, 2, true);
  v.setUint32(0x1e0 + 4, 3, true);
  v.setBigUint64(0x1e0 + 24, 0x140n, true);
  v.setBigUint64(0x1e0 + 32, 17n, true);
  return b;
}

/** Header, program header and section header fields. */
const HOT = [
  4,
  5,
  16,
  18,
  24,
  32,
  40,
  54,
  56,
  58,
  60,
  64,
  72,
  88,
  96,
  104,
  0x1a4,
  0x1b8,
  0x1c0,
  0x1c8,
  0x1e4,
  0x1f8,
  0x200,
];
const TEMPLATE = riscvElfTemplate();
let mem: GuestMemory | undefined;

/**
 * The ELF target.
 *
 * @example
 * ```ts
 * await elfTarget.run(riscvElfTemplate()); // "accepted"
 * ```
 */
export const elfTarget: FuzzTarget = {
  name: "elf",
  description: "parseElf + loadElf into 64 KiB of RAM: loads, or throws ElfError",
  generate(r: Prng): Uint8Array {
    return r.oneIn(16) ? r.bytes(r.below(256)) : mutate(TEMPLATE, r, HOT);
  },
  run(input: Uint8Array): Outcome {
    mem ??= new GuestMemory(64 << 10);
    return expecting([ElfError], () => {
      const image = loadElf(mem!, input, parseElf(input));
      for (const s of image.segments) {
        if (s.fileOffset + s.fileSize > input.length || s.fileSize > s.memSize) {
          throw new InvariantError(`segment ${JSON.stringify(s)} accepted past the file`);
        }
      }
    }) as Outcome;
  },
};
