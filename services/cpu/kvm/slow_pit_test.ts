import assert from "node:assert/strict";
import { PIT_HZ, SlowPit } from "./slow_pit.ts";

/** Programs channel 0 as Linux's i8253 clockevent does: mode 2, lobyte/hibyte, `count`. */
function periodic(pit: SlowPit, count: number): void {
  pit.write(0x43, 0x34);
  pit.write(0x40, count & 0xff);
  pit.write(0x40, count >> 8);
}

Deno.test("SlowPit: channel 0 in mode 2 pulses IRQ 0 `slowdown` times less often", async () => {
  // 2 ms programmed (2386 counts) x 10 = one pulse per 20 ms.
  let pulses = 0;
  const pit = new SlowPit(10, () => pulses++);
  try {
    periodic(pit, Math.round(PIT_HZ / 500));
    await new Promise((r) => setTimeout(r, 210));
  } finally {
    pit.close();
  }
  // Unslowed it would be ~105; timers on a loaded host may fire late, never early.
  assert.ok(pulses >= 3 && pulses <= 11, `${pulses} pulses in 210 ms`);
  assert.equal(pit.ticks, pulses);
});

Deno.test("SlowPit: reprogramming to mode 0 with no count stops the periodic pulses", async () => {
  let pulses = 0;
  const pit = new SlowPit(1, () => pulses++);
  try {
    periodic(pit, Math.round(PIT_HZ / 1000));
    pit.write(0x43, 0x30); // channel 0, lobyte/hibyte, mode 0: i8253's shutdown
    const before = pulses;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pulses, before);
  } finally {
    pit.close();
  }
});

Deno.test("SlowPit: a latched counter reads back low then high byte, counting down", () => {
  const pit = new SlowPit(1, () => {});
  try {
    pit.write(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0
    pit.write(0x42, 0xff);
    pit.write(0x42, 0xff);
    pit.write(0x43, 0x80); // latch channel 2
    const v = pit.read(0x42) | (pit.read(0x42) << 8);
    assert.ok(v > 0 && v <= 0xffff, `count ${v}`);
    assert.equal(pit.read(0x61) & 0x20, 0, "OUT2 low while the one-shot count runs");
  } finally {
    pit.close();
  }
});

Deno.test("SlowPit: a slowdown below 1 is refused", () => {
  assert.throws(() => new SlowPit(0.5, () => {}), /slowdown must be >= 1/);
});
