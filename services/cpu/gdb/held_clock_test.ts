import assert from "node:assert/strict";
import { HeldClock } from "./held_clock.ts";
import { ManualClock } from "../hart/test_support.ts";

Deno.test("held clock: frozen while held, continues from the frozen value", () => {
  const inner = new ManualClock();
  const clock = new HeldClock(inner);
  inner.ticks = 100;
  assert.equal(clock.now(), 100);
  clock.hold();
  inner.ticks = 5000;
  assert.equal(clock.now(), 100, "no time passes while held");
  assert.ok(clock.held);
  clock.release();
  assert.equal(clock.now(), 100);
  inner.ticks = 5010;
  assert.equal(clock.now(), 110, "then it runs at the inner clock's rate");
  clock.hold();
  clock.hold(); // idempotent
  inner.ticks = 9000;
  clock.release();
  clock.release();
  assert.equal(clock.now(), 110);
});
