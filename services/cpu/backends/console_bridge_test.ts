/**
 * The console bridge on a real nats-server: byte-at-a-time UART output becomes a few
 * ordered ByteBatches with contiguous sequence numbers; console input reaches the callback.
 */
import assert from "node:assert/strict";
import { connect, consoleMsgs, consoleSubject, startEmbeddedNats } from "@vmesh/bus";
import { ConsoleBridge } from "./console_bridge.ts";

Deno.test("console bridge: batches output in order, delivers input", async () => {
  const nats = await startEmbeddedNats({ jetstream: false });
  const cpuBus = await connect({ url: nats.url, name: "test-cpu", log: () => {} });
  const consoleBus = await connect({ url: nats.url, name: "test-console", log: () => {} });
  try {
    const N = 10_000;
    const batches: { seq: number; data: Uint8Array }[] = [];
    let got = 0;
    let allIn: () => void = () => {};
    const all = new Promise<void>((r) => allIn = r);
    consoleBus.subscribe(consoleMsgs.byteBatch, consoleSubject("vmA", "out"), (b) => {
      batches.push(b);
      got += b.data.length;
      if (got >= N) allIn();
    });
    await consoleBus.flush();

    const bridge = new ConsoleBridge(cpuBus, { vm: "vmA", maxBatch: 1024, flushMs: 5 });
    const want = Uint8Array.from({ length: N }, (_, i) => (i * 31 + (i >> 7)) & 0xff);
    // One byte per call, as a UART transmits; the last partial batch goes out on the timer.
    for (let i = 0; i < N; i++) bridge.write(want.subarray(i, i + 1));
    await all;

    assert.ok(batches.length <= Math.ceil(N / 1024) + 1, `${batches.length} messages`);
    assert.ok(batches.length >= Math.ceil(N / 1024), `${batches.length} messages`);
    let pos = 0;
    const joined = new Uint8Array(N);
    for (const b of batches) {
      assert.equal(b.seq, pos, "seq is the stream offset of the batch's first byte");
      joined.set(b.data, pos);
      pos += b.data.length;
    }
    assert.deepEqual(joined, want);
    assert.equal(bridge.seq, N);

    // Input: a batch on console.in reaches the UART callback unchanged.
    const input: Uint8Array[] = [];
    let typed: () => void = () => {};
    const arrived = new Promise<void>((r) => typed = r);
    bridge.listen((bytes) => {
      input.push(bytes);
      typed();
    });
    await cpuBus.flush();
    consoleBus.publish(consoleMsgs.byteBatch, consoleSubject("vmA", "in"), {
      seq: 0,
      data: new TextEncoder().encode("ls\r"),
    });
    await arrived;
    assert.equal(new TextDecoder().decode(input[0]), "ls\r");
    await bridge.close();
  } finally {
    await cpuBus.close();
    await consoleBus.close();
    await nats.stop();
  }
});
