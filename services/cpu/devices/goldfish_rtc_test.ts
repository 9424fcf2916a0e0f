import assert from "node:assert/strict";
import type { VmClock } from "../machine/clock.ts";
import { GoldfishRtc } from "./goldfish_rtc.ts";

class ManualClock implements VmClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

const EPOCH_NS = 1_700_000_000 * 1e9;

Deno.test("goldfish RTC: time is host epoch plus VM clock, high half latched by the low read", () => {
  const clock = new ManualClock();
  const rtc = new GoldfishRtc(clock, () => {}, EPOCH_NS);
  clock.t = 10_000_000; // one second at 10 MHz
  const lo = rtc.read(0x00, 4);
  clock.t += 1e9; // time moves on between the two reads
  const hi = rtc.read(0x04, 4);
  assert.equal(hi * 2 ** 32 + lo, EPOCH_NS + 1e9);
});

Deno.test("goldfish RTC: the alarm raises the interrupt when enabled and due, and clears", () => {
  const clock = new ManualClock();
  const irq = { level: false };
  const rtc = new GoldfishRtc(clock, (l) => (irq.level = l), EPOCH_NS);
  const alarm = EPOCH_NS + 5e6; // 5 ms later
  rtc.write(0x10, 4, 1); // IRQ_ENABLED
  rtc.write(0x0c, 4, Math.floor(alarm / 2 ** 32));
  rtc.write(0x08, 4, alarm % 2 ** 32);
  assert.equal(rtc.read(0x18, 4), 1, "alarm running");
  rtc.tick();
  assert.equal(irq.level, false);
  clock.t = 50_000; // 5 ms
  rtc.tick();
  assert.equal(irq.level, true);
  assert.equal(rtc.read(0x18, 4), 0);
  rtc.write(0x1c, 4, 1); // CLEAR_INTERRUPT
  assert.equal(irq.level, false);
});

Deno.test("goldfish RTC: TIME_HIGH and ALARM_HIGH take effect at once, halves exact (QEMU)", () => {
  const clock = new ManualClock();
  const rtc = new GoldfishRtc(clock, () => {}, EPOCH_NS);
  rtc.write(0x04, 4, 0x12345678); // TIME_HIGH alone sets the high half
  rtc.read(0x00, 4);
  assert.equal(rtc.read(0x04, 4), 0x12345678);
  rtc.write(0x00, 4, 0x1000); // then TIME_LOW: either order works
  assert.equal(rtc.read(0x00, 4), 0x1000);
  assert.equal(rtc.read(0x04, 4), 0x12345678);
  rtc.write(0x0c, 4, 0xabc);
  assert.equal(rtc.read(0x0c, 4), 0xabc, "ALARM_HIGH reads back before ALARM_LOW");
  assert.equal(rtc.read(0x18, 4), 0, "not armed yet");
  rtc.write(0x08, 4, 0x12345671);
  assert.equal(rtc.read(0x08, 4), 0x12345671, "exact low half (no double rounding)");
  const saved = rtc.save();
  assert.deepEqual({ hi: saved.alarmHigh, lo: saved.alarmLow }, { hi: 0xabc, lo: 0x12345671 });
  // A state saved before the halves were split loads too.
  const legacy = { ...saved, alarmNs: 5 * 2 ** 32 + 9, alarmHighLatch: 0 } as Record<
    string,
    unknown
  >;
  delete legacy.alarmHigh;
  delete legacy.alarmLow;
  const other = new GoldfishRtc(clock, () => {}, EPOCH_NS);
  other.load(legacy as unknown as typeof saved);
  assert.equal(other.read(0x0c, 4), 5);
  assert.equal(other.read(0x08, 4), 9);
});
