import assert from "node:assert/strict";
import { BootRom } from "./boot_rom.ts";

Deno.test("boot ROM holds QEMU's reset vector, start and FDT addresses, fw_dynamic_info", () => {
  const rom = new BootRom({
    startAddr: 0x8000_0000,
    fdtAddr: 0x87e0_0000,
    nextAddr: 0x8020_0000,
    size: 0xf000,
  });
  const words = Array.from({ length: 6 }, (_, i) => rom.read(i * 4, 4));
  // auipc t0,0; addi a2,t0,40; csrr a0,mhartid; ld a1,32(t0); ld t0,24(t0); jr t0
  assert.deepEqual(words, [0x00000297, 0x02828613, 0xf1402573, 0x0202b583, 0x0182b283, 0x00028067]);
  assert.deepEqual([rom.read(24, 4), rom.read(28, 4)], [0x8000_0000, 0]);
  assert.deepEqual([rom.read(32, 4), rom.read(36, 4)], [0x87e0_0000, 0]);
  assert.equal(rom.read(40, 4), 0x4942534f, "fw_dynamic_info magic");
  assert.equal(rom.read(48, 4), 2, "version");
  assert.equal(rom.read(56, 4), 0x8020_0000, "next_addr");
  assert.equal(rom.read(64, 4), 1, "next_mode = S");
  assert.equal(rom.read(0, 2), 0x0297);
  assert.equal(rom.read(0, 1), 0x97);
  rom.write(0, 4, 0);
  assert.equal(rom.read(0, 4), 0x00000297, "read-only");
  assert.equal(rom.read(0xf000 - 2, 4), 0, "reads past the end are 0");
});
