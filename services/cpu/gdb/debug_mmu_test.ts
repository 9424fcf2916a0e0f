import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { debugTranslate } from "./debug_mmu.ts";

const ROOT = 0x8020_0000, MID = 0x8020_1000, LEAF = 0x8020_2000;
const V = 1n, R = 2n, W = 4n, X = 8n, A = 64n, D = 128n;

function pageTables(): { mem: GuestMemory; read64: (pa: number) => bigint | null } {
  const mem = new GuestMemory(4 << 20);
  const put = (pa: number, v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    mem.writePhys(pa, b);
  };
  const pte = (pa: number, flags: bigint) => (BigInt(pa) >> 12n << 10n) | flags;
  // 0xffffffff80000000: a 1 GiB leaf at VPN2 0x1fe onto 0x80000000 (a kernel's direct map).
  put(ROOT + 0x1fe * 8, pte(0x8000_0000, V | R | W | X | A | D));
  // 0x1000: a 4 KiB page through two pointers onto 0x80300000.
  put(ROOT + 0 * 8, pte(MID, V));
  put(MID + 0 * 8, pte(LEAF, V));
  put(LEAF + 1 * 8, pte(0x8030_0000, V | R | A));
  // VPN2 1 (0x40000000): a gigapage whose PPN is not 1 GiB aligned.
  put(ROOT + 1 * 8, pte(0x8020_0000, V | R));
  const read64 = (pa: number) => {
    if (!mem.inRam(pa, 8)) return null;
    const b = mem.readPhys(pa, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  };
  return { mem, read64 };
}

const SV39 = (8n << 60n) | BigInt(ROOT / 4096);

Deno.test("debug mmu: Sv39 leaves at 1 GiB and 4 KiB, read-only walk", () => {
  const { mem, read64 } = pageTables();
  const before = mem.readPhys(ROOT, 0x3000);
  assert.equal(debugTranslate(SV39, 0xffffffff80001234n, read64), 0x8000_1234);
  assert.equal(debugTranslate(SV39, BigInt.asIntN(64, 0xffffffff80001234n), read64), 0x8000_1234);
  assert.equal(debugTranslate(SV39, 0x1abcn, read64), 0x8030_0abc);
  assert.deepEqual(mem.readPhys(ROOT, 0x3000), before, "no A/D bits written");
});

Deno.test("debug mmu: unmapped, non-canonical and misaligned superpages do not translate", () => {
  const { read64 } = pageTables();
  assert.equal(debugTranslate(SV39, 0x2000n, read64), null, "invalid leaf entry");
  assert.equal(debugTranslate(SV39, 0x0000_0040_0000_0000n, read64), null, "bit 38 not copied up");
  assert.equal(debugTranslate(SV39, 0x4000_0000n, read64), null, "misaligned gigapage");
  assert.equal(debugTranslate(7n << 60n, 0x1000n, read64), null, "reserved mode");
  assert.equal(debugTranslate(0n, 0x8000_0010n, read64), 0x8000_0010, "Bare: physical");
});
