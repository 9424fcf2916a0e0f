import assert from "node:assert/strict";
import { DRAM_BASE, GuestMemory, hostOffset } from "../guest_memory.ts";
import { ElfError, loadElf, parseElf } from "./elf.ts";
import { assemble } from "./asm_test_support.ts";

const PROGRAM = `
  .option norvc
  .text
  .globl _start
_start:
  li a0, 1
  j _start
  .data
  .globl tohost
  .balign 8
tohost: .dword 0x1122334455667788
  .bss
  .globl zeros
zeros: .space 64
`;

Deno.test("ELF loader places segments, zeroes bss and finds symbols", async () => {
  const bytes = await assemble(PROGRAM, { textBase: "0x80001000", packed: false });
  const img = parseElf(bytes);
  assert.equal(img.entry, 0x8000_1000);
  const tohost = img.symbols.get("tohost")!;
  const zeros = img.symbols.get("zeros")!;
  assert.ok(tohost > 0x8000_1000);
  const mem = new GuestMemory(1024 * 1024);
  mem.writePhys(zeros, new Uint8Array(64).fill(0xaa));
  loadElf(mem, bytes);
  assert.deepEqual([...mem.readPhys(DRAM_BASE + 0x1000, 4)], [0x13, 0x05, 0x10, 0x00]); // li a0, 1
  assert.equal(mem.view.getBigUint64(hostOffset(tohost), true), 0x1122334455667788n);
  assert.ok(mem.readPhys(zeros, 64).every((b) => b === 0), "bss zeroed");

  const small = new GuestMemory(4096);
  assert.throws(() => loadElf(small, bytes), ElfError);
  assert.throws(() => parseElf(bytes.slice(0, 63)), /truncated ELF header/);
});

Deno.test("ELF loader: corrupted files give an ElfError or load, never another exception", async () => {
  const good = await assemble(PROGRAM, { textBase: "0x80001000", packed: false });
  // A deterministic xorshift generator: the same corruptions on every run.
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const mem = new GuestMemory(1024 * 1024);
  let rejected = 0;
  for (let i = 0; i < 2000; i++) {
    const b = i % 10 === 0 ? good.slice(0, rand(good.length)) : good.slice();
    for (let k = 0, n = 1 + rand(8); k < n; k++) {
      // Mostly hit the headers, where the structure is.
      const at = rand(4) === 0 ? rand(b.length) : rand(Math.min(b.length, 128));
      b[at] = rand(256);
    }
    b.set([0x7f, 0x45, 0x4c, 0x46].slice(0, b.length));
    try {
      loadElf(mem, b);
    } catch (e) {
      assert.ok(e instanceof ElfError, `iteration ${i}: ${e}`);
      rejected++;
    }
  }
  assert.ok(rejected > 100, `only ${rejected} of 2000 corrupted files were rejected`);
});
