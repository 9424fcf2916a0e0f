/**
 * Differential test of the virt board's CLINT, PLIC, UART, goldfish RTC and SiFive test device
 * against qemu-system-riscv64 7.2 where QEMU is lenient: reset values, writes to read-only or
 * write-only registers, out-of-range values and ids, unimplemented offsets, 64-bit accesses,
 * the UART's FIFO and non-FIFO receive paths. vmesh must print exactly what QEMU prints.
 */
import assert from "node:assert/strict";
import { assertSameAsQemu } from "./qemu_compat_harness.ts";

Deno.test("qemu compat: device registers answer as on qemu-system-riscv64 -M virt", async () => {
  const out = await assertSameAsQemu({ name: "devices", minLines: 75 });
  // The points the differences table is about, spelled out.
  assert.match(out, /^clint mip\.MTIP at reset \(mtimecmp 0\)=0+80$/m);
  assert.match(out, /^plic enable word 0 after all ones \(bit 0 kept\)=0+ffffffff$/m);
  assert.match(out, /^plic claim after completing while disabled=0+a$/m);
  assert.match(out, /^uart mcr at reset=0+8$/m);
  assert.match(out, /^uart nofifo rbr again=0+42$/m);
  assert.match(out, /^uart iir after XFR=0+c2$/m);
  assert.match(out, /^rtc time high after a TIME_HIGH write=0+12345678$/m);
  assert.match(out, /^rtc alarm high=0+abc$/m);
});
