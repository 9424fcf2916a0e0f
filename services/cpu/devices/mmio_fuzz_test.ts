import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { WallClock } from "../machine/clock.ts";
import type { MmioDevice } from "../machine/mmio.ts";
import { BootRom } from "./boot_rom.ts";
import { Clint } from "./clint.ts";
import { GoldfishRtc } from "./goldfish_rtc.ts";
import { Plic } from "./plic.ts";
import { SifiveTest } from "./sifive_test.ts";
import { Uart16550 } from "./uart16550.ts";

Deno.test("device models survive random MMIO accesses and keep their state serializable", () => {
  const lines = new HartIrqLines(new GuestMemory(4096));
  const clock = new WallClock();
  const plic = new Plic(1, 96, lines);
  const devices: [MmioDevice & { save(): unknown }, number][] = [
    [new Clint(1, clock, lines), 0x1_0000],
    [plic, 0x60_0000],
    [new Uart16550({ onTransmit: () => {}, setIrq: (l) => plic.setIrq(10, l) }), 0x100],
    [new GoldfishRtc(clock, (l) => plic.setIrq(11, l)), 0x1000],
    [new SifiveTest(() => {}), 0x1000],
    [new BootRom({ startAddr: 0x8000_0000, fdtAddr: 0x8000_0000, size: 0xf000 }), 0xf000],
  ];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const sizes = [1, 2, 4] as const;
  for (const [dev, span] of devices) {
    for (let i = 0; i < 20_000; i++) {
      // Half the accesses near the start of the region, where most registers are.
      const offset = rand(2) ? rand(0x100) : rand(span);
      const size = sizes[rand(3)];
      if (rand(2)) {
        const v = dev.read(offset, size);
        assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** (8 * size), `${dev.name} read ${v}`);
      } else {
        dev.write(offset, size, rand(2 ** 32) & (size === 4 ? -1 : (1 << (8 * size)) - 1));
      }
    }
    structuredClone(dev.save());
  }
});
