/**
 * kick() from another thread: a Worker sharing the guest memory stops a hart that is busy
 * in a long run() of an endless loop (the run returns Halted long before its budget).
 */
import assert from "node:assert/strict";
import { StopReason } from "../engine.ts";
import { GuestMemory } from "../guest_memory.ts";
import { assemble, makeMachine } from "./test_support.ts";

Deno.test("kick: a Worker stops a running hart through the shared EXIT_REQUEST word", async () => {
  const m = makeMachine(await assemble(".globl _start\n_start:\n1: addi a0, a0, 1\n  j 1b\n"));
  const worker = new Worker(new URL("./kick_worker.ts", import.meta.url).href, {
    type: "module",
  });
  try {
    const ready = new Promise((resolve) => worker.onmessage = resolve);
    worker.postMessage({ memory: m.mem.memory, ramSize: m.mem.ramSize, delayMs: 200 });
    await ready;
    const budget = 2_000_000_000; // tens of seconds of guest time: the kick must end it
    const reason = m.hart.run(budget);
    assert.equal(reason, StopReason.Halted);
    assert.ok(m.hart.instret > 0 && m.hart.instret < budget, `instret ${m.hart.instret}`);
    assert.equal(m.hart.getReg(10) > 0n, true, "the loop ran");
    // Wrapping a memory checks that it is the size the RAM needs.
    assert.throws(() => new GuestMemory(8 << 20, m.mem.memory), RangeError);
  } finally {
    worker.terminate();
  }
});
