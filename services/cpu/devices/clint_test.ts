import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { Irq } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import { Clint } from "./clint.ts";

/** A clock the test sets by hand. */
class ManualClock implements VmClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

function setup() {
  const clock = new ManualClock();
  const lines = new HartIrqLines(new GuestMemory(4096));
  return { clock, lines, clint: new Clint(1, clock, lines) };
}

Deno.test("CLINT: mtime follows the clock and 64-bit reads are consistent", () => {
  const { clock, clint } = setup();
  clock.t = 0x1_2345_6789;
  assert.equal(clint.read(0xbff8, 4), 0x2345_6789);
  clock.t = 0x2_0000_0000; // carry between the two halves of one 64-bit read
  assert.equal(clint.read(0xbffc, 4), 1, "high half comes from the latched value");
  clint.write(0xbff8, 4, 0x10);
  clint.write(0xbffc, 4, 0);
  assert.equal(clint.read(0xbff8, 4), 0x10, "mtime writes move the offset");
  clock.t += 5;
  assert.equal(clint.read(0xbff8, 4), 0x15);
});

Deno.test("CLINT: MTIP follows mtimecmp on write and on tick", () => {
  const { clock, clint, lines } = setup();
  assert.equal(lines.get(0) & Irq.MTIP, Irq.MTIP, "mtimecmp resets to 0: MTIP at power-on (QEMU)");
  assert.equal(clint.read(0x4000, 4), 0);
  assert.equal(clint.read(0x4004, 4), 0);
  clock.t = 100;
  clint.write(0x4004, 4, 0);
  clint.write(0x4000, 4, 150);
  clint.write(0x4004, 4, 0);
  assert.equal(clint.read(0x4000, 4), 150);
  assert.equal(lines.get(0) & Irq.MTIP, 0);
  clock.t = 150;
  clint.tick();
  assert.equal(lines.get(0) & Irq.MTIP, Irq.MTIP);
  assert.equal(clint.nextDeadline(), 150);
  clint.write(0x4000, 4, 0xffff_ffff);
  clint.write(0x4004, 4, 0xffff_ffff);
  assert.equal(lines.get(0) & Irq.MTIP, 0, "writing a later mtimecmp clears MTIP at once");
});

Deno.test("CLINT: msip drives MSIP", () => {
  const { clint, lines } = setup();
  clint.write(0, 4, 1);
  assert.equal(lines.get(0) & Irq.MSIP, Irq.MSIP);
  assert.equal(clint.read(0, 4), 1);
  clint.write(0, 4, 0);
  assert.equal(lines.get(0) & Irq.MSIP, 0);
});
