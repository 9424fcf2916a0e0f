import assert from "node:assert/strict";
import { block, BusError, connect, Encoded, type Handlers, Status } from "./mod.ts";
import { requestMux } from "./request_mux.ts";

function handlers(over: Partial<Handlers<typeof block.ops>>): Handlers<typeof block.ops> {
  return {
    info: () => ({ sizeBytes: 4096, sectorSize: 512, readOnly: false, discard: false }),
    read: ({ length }) => ({ data: new Uint8Array(length) }),
    write: ({ data }) => ({ written: data.length }),
    flush: () => ({}),
    discard: () => ({}),
    ...over,
  };
}

Deno.test("readReplyBuffer: the ReadReply codec decodes it to its data, for every length size", () => {
  for (const n of [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 512 * 1024]) {
    const { bytes, data } = block.readReplyBuffer(n);
    assert.equal(data.length, n);
    for (let i = 0; i < n; i += 997) data[i] = (i * 7 + 1) & 0xff;
    const r = block.ops.read.reply.decode(bytes);
    assert.equal(r.status, Status.OK);
    // (An absent bytes field decodes as protobufjs' default, a Buffer: compare plain views.)
    const got = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    assert.deepEqual(got, data, `length ${n}`);
    // The same bytes as the codec makes.
    const enc = block.ops.read.reply.encode({ data: data.slice() });
    assert.deepEqual(bytes, new Uint8Array(enc.buffer, enc.byteOffset, enc.byteLength), `${n}`);
  }
  assert.throws(() => block.readReplyBuffer(-1), RangeError);
});

Deno.test("request mux: requests in flight with different timeouts, a late reply, no responders", async () => {
  const bus = await connect({ name: "mux-test", log: () => {} });
  const releases: (() => void)[] = [];
  const svc = await bus.serve({
    vm: "vmX",
    device: "disk0",
    name: "vmesh-test-disk",
    version: "0.0.1",
    ops: block.ops,
    handlers: handlers({
      // A read of length 1 hangs until released; others answer at once, pre-encoded.
      read: ({ length }) => {
        if (length === 1) {
          return new Promise((r) => releases.push(() => r({ data: new Uint8Array(1) })));
        }
        const { bytes, data } = block.readReplyBuffer(length);
        data.fill(length & 0xff);
        return new Encoded<block.ReadReply>(bytes);
      },
    }),
  });
  try {
    const disk = bus.client({ vm: "vmX", device: "disk0" }, block.ops, { retries: 0 });
    const code = (p: Promise<unknown>) =>
      p.then(() => "ok", (e) => e instanceof BusError ? e.status : `untyped ${e}`);
    // A short deadline among long ones: it times out on its own, the others are answered.
    const t0 = performance.now();
    const long = Array.from(
      { length: 8 },
      (_, i) => disk.call("read", { offset: 0, length: 512 * (i + 1) }, { timeoutMs: 10_000 }),
    );
    const hung = code(disk.call("read", { offset: 0, length: 1 }, { timeoutMs: 150 }));
    const replies = await Promise.all(long);
    replies.forEach((r, i) =>
      assert.deepEqual(r.data, new Uint8Array(512 * (i + 1)).fill((512 * (i + 1)) & 0xff))
    );
    assert.equal(await hung, "DEADLINE_EXCEEDED");
    const took = performance.now() - t0;
    assert.ok(took < 5000, `the 150 ms timeout fired after ${took.toFixed(0)} ms`);
    // Its reply arrives late and is dropped; the mux holds nothing and keeps working.
    releases.forEach((r) => r());
    assert.equal((await disk.call("read", { offset: 0, length: 512 })).data.length, 512);
    assert.equal(requestMux(bus.nc).pending, 0);
    // Nobody serves this device: UNAVAILABLE at once, not a timeout.
    const t1 = performance.now();
    const none = bus.client({ vm: "vmX", device: "nobody" }, block.ops, { retries: 0 });
    assert.equal(await code(none.call("flush", {}, { timeoutMs: 10_000 })), "UNAVAILABLE");
    assert.ok(performance.now() - t1 < 5000);
  } finally {
    await svc.stop();
    await bus.close();
  }
});

Deno.test("request mux: a closed connection fails the requests still pending", async () => {
  const bus = await connect({ name: "mux-close-test", log: () => {} });
  const svc = await bus.serve({
    vm: "vmY",
    device: "disk0",
    name: "vmesh-test-disk",
    version: "0.0.1",
    ops: block.ops,
    handlers: handlers({ flush: () => new Promise(() => {}) }),
  });
  const disk = bus.client({ vm: "vmY", device: "disk0" }, block.ops, { retries: 0 });
  const pending = disk.call("flush", {}, { timeoutMs: 60_000 }).then(
    () => "ok",
    (e) => e instanceof BusError ? e.status : `untyped ${e}`,
  );
  await new Promise((r) => setTimeout(r, 50));
  await svc.stop();
  await bus.nc.close();
  assert.equal(await pending, "UNAVAILABLE");
  await bus.close();
});
