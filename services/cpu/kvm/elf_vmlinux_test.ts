import assert from "node:assert/strict";
import { isElf, parseVmlinux } from "./elf_vmlinux.ts";

/** An ELF64 x86-64 header with the given program headers [type, offset, paddr, filesz, memsz]. */
function elf(phdrs: number[][], machine = 62, size = 0x400): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(0x12, machine, true);
  v.setBigUint64(0x18, 0x1000000n, true);
  v.setBigUint64(0x20, 0x40n, true);
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, phdrs.length, true);
  phdrs.forEach(([type, offset, paddr, filesz, memsz], i) => {
    const o = 0x40 + i * 56;
    v.setUint32(o, type, true);
    v.setBigUint64(o + 8, BigInt(offset), true);
    v.setBigUint64(o + 16, BigInt(paddr) | 0xffffffff80000000n, true); // vaddr: kernel text
    v.setBigUint64(o + 24, BigInt(paddr), true);
    v.setBigUint64(o + 32, BigInt(filesz), true);
    v.setBigUint64(o + 40, BigInt(memsz), true);
  });
  return b;
}

Deno.test("parseVmlinux: PT_LOAD segments at their physical addresses, notes skipped", () => {
  const image = elf([[1, 0x200, 0x1000000, 0x100, 0x100], [4, 0x300, 0, 0x10, 0x10], [
    1,
    0x300,
    0x2000000,
    0x80,
    0x1000,
  ]]);
  image[0x200] = 0xaa;
  image[0x300] = 0xbb;
  assert.ok(isElf(image));
  const k = parseVmlinux(image);
  assert.equal(k.entry, 0x1000000);
  assert.deepEqual(k.segments.map((s) => [s.paddr, s.data.length, s.memsz, s.data[0]]), [
    [0x1000000, 0x100, 0x100, 0xaa],
    [0x2000000, 0x80, 0x1000, 0xbb],
  ]);
});

Deno.test("parseVmlinux: clear errors for other machines, 32-bit, truncation, no segment", () => {
  assert.throws(() => parseVmlinux(elf([[1, 0x200, 0x1000000, 0x10, 0x10]], 243)), /machine 243/);
  const e32 = elf([[1, 0x200, 0x1000000, 0x10, 0x10]]);
  e32[4] = 1;
  assert.throws(() => parseVmlinux(e32), /64-bit/);
  assert.throws(() => parseVmlinux(elf([[1, 0x200, 0x1000000, 0x1000, 0x1000]])), /truncated/);
  assert.throws(() => parseVmlinux(elf([[4, 0x200, 0, 0x10, 0x10]])), /no PT_LOAD/);
  assert.throws(() => parseVmlinux(new Uint8Array(64)), /not an ELF/);
});
