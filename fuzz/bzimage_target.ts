/**
 * The x86 kernel parsers (services/cpu/kvm/bzimage.ts, elf_vmlinux.ts): every input parses or
 * throws their documented error, a plain Error naming the problem (a TypeError or RangeError
 * from inside is a bug).
 */
import { parseBzImage } from "../services/cpu/kvm/bzimage.ts";
import { parseVmlinux } from "../services/cpu/kvm/elf_vmlinux.ts";
import { mutate } from "./bytes.ts";
import type { Prng } from "./prng.ts";
import { expecting, type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

/**
 * A minimal bzImage: setup header at 0x1f1 (protocol 2.15, 64-bit entry), one setup sector.
 *
 * @example
 * ```ts
 * parseBzImage(bzImageTemplate()).protocol; // 0x20f
 * ```
 */
export function bzImageTemplate(): Uint8Array {
  const b = new Uint8Array(0x800);
  const v = new DataView(b.buffer);
  b[0x1f1] = 1; // setup_sects
  b[0x200] = 0xeb;
  b[0x201] = 0x6a; // the jump: header ends at 0x26c
  v.setUint32(0x202, 0x53726448, true); // "HdrS"
  v.setUint16(0x206, 0x20f, true);
  v.setUint32(0x22c, 0x7fff_ffff, true);
  v.setUint16(0x236, 1, true); // XLF_KERNEL_64
  b.fill(0x90, 0x400);
  return b;
}

/**
 * A minimal x86-64 ELF vmlinux with one PT_LOAD segment.
 *
 * @example
 * ```ts
 * parseVmlinux(vmlinuxTemplate()).entry; // 0x1000000
 * ```
 */
export function vmlinuxTemplate(): Uint8Array {
  const b = new Uint8Array(0x200);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(0x12, 62, true);
  v.setBigUint64(0x18, 0x100_0000n, true);
  v.setBigUint64(0x20, 64n, true);
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, 1, true);
  v.setUint32(64, 1, true);
  v.setBigUint64(64 + 8, 0x100n, true);
  v.setBigUint64(64 + 24, 0x100_0000n, true);
  v.setBigUint64(64 + 32, 0x100n, true);
  v.setBigUint64(64 + 40, 0x200n, true);
  return b;
}

const BZ = bzImageTemplate(), ELF = vmlinuxTemplate();
const BZ_HOT = [0x1f1, 0x201, 0x202, 0x206, 0x22c, 0x236, 0, 0x38];
const ELF_HOT = [4, 5, 0x12, 0x18, 0x20, 0x36, 0x38, 64, 72, 88, 96, 104];

/** The documented refusal: a plain Error (not one of its built-in subclasses). */
const plainError = (e: unknown) => e instanceof Error && e.constructor === Error;

/**
 * The bzImage/vmlinux target.
 *
 * @example
 * ```ts
 * await bzImageTarget.run(bzImageTemplate()); // "accepted"
 * ```
 */
export const bzImageTarget: FuzzTarget = {
  name: "bzimage",
  description: "parseBzImage and parseVmlinux: parse, or throw a plain Error",
  generate(r: Prng): Uint8Array {
    if (r.oneIn(16)) return r.bytes(r.below(0x400));
    return r.below(2) ? mutate(BZ, r, BZ_HOT) : mutate(ELF, r, ELF_HOT);
  },
  run(input: Uint8Array): Outcome {
    const bz = expecting(plainError, () => {
      const k = parseBzImage(input);
      if (k.kernel.length === 0 || k.kernel.length > input.length) {
        throw new InvariantError(`bzImage kernel of ${k.kernel.length} bytes accepted`);
      }
    });
    const elf = expecting(plainError, () => {
      for (const s of parseVmlinux(input).segments) {
        if (s.data.byteOffset + s.data.length > input.byteOffset + input.length) {
          throw new InvariantError("vmlinux segment past the file accepted");
        }
      }
    });
    return bz === "accepted" || elf === "accepted" ? "accepted" : "rejected";
  },
};
