/**
 * The MMIO mailbox with two hart Workers: a store posted before a flag in shared memory is
 * served before the load of a hart that saw the flag (the order a lock hand-over needs), over
 * many more requests than the queue holds, with the main thread serving only every millisecond.
 */
import assert from "node:assert/strict";
import { MailboxServer } from "./mailbox.ts";
import type { MailboxWorkerStart } from "./mailbox_test_worker.ts";
import type { PhysicalBus } from "../machine/mmio.ts";

Deno.test("mailbox: a posted store is served before a load that another hart ordered after it", async () => {
  const n = 500, addr = 0x1000_0000;
  let reg = 0;
  const served: string[] = [];
  const device: PhysicalBus = {
    load: () => (served.push("load"), reg),
    store: (_pa, _size, v) => (served.push("store"), reg = v, true),
  };
  // The reader is hart 0: a server taking hart 0's request first would answer it too early.
  const server = new MailboxServer(2);
  const flags = new SharedArrayBuffer(16);
  const start = (role: "writer" | "reader", hart: number) => {
    const w = new Worker(new URL("./mailbox_test_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const done = new Promise<number[]>((r) => (w.onmessage = (e) => r(e.data)));
    const msg: MailboxWorkerStart = { role, hart, mailbox: server.shared, flags, n, addr };
    w.postMessage(msg);
    return { w, done };
  };
  const reader = start("reader", 0), writer = start("writer", 1);
  let finished = false;
  const all = Promise.all([reader.done, writer.done]).finally(() => (finished = true));
  const deadline = performance.now() + 60_000;
  while (!finished) {
    assert.ok(performance.now() < deadline, `served ${served.length} of ${2 * n}`);
    server.serve(device);
    // A main thread busy elsewhere: requests of both harts pile up between serves.
    await new Promise((r) => setTimeout(r, 1));
  }
  server.serve(device);
  const [seen] = await all;
  for (const { w } of [reader, writer]) w.terminate();
  assert.equal(served.length, 2 * n);
  // The i-th load came after the writer's i-th store and before its next one.
  for (let i = 0; i < n; i++) assert.equal(seen[i], i + 1, `load ${i + 1}`);
  assert.equal(reg, n);
});
