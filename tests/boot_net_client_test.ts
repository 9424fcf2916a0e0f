/**
 * The CPU service's network backend (`BusNetClient`) against the real net service process:
 * the port joins the switch, a frame sent comes back through an echo switch, and after the
 * switch is restarted (it forgets its ports) the port joins again and frames flow again.
 */
import assert from "node:assert/strict";
import { BusNetClient } from "../services/cpu/backends/bus_net_client.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

function frame(tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 0); // destination
  f.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x57], 6); // source
  f[12] = 0x88;
  f[13] = 0xb5; // local experimental ethertype
  f[14] = tag;
  return f;
}

Deno.test("cpu net client: joins the switch, frames round-trip, rejoins a restarted switch", async () => {
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  const start = async () => {
    const p = await startService("net", ["--switch", "swn", "--mode", "echo"], tb.nats.url);
    procs.push(p);
    return p;
  };
  const client = new BusNetClient(tb.bus, {
    switch: "swn",
    port: "vmN-net0",
    mac: "52:54:00:12:34:57",
    rejoinMs: 100,
  });
  try {
    const first = await start();
    const received: Uint8Array[] = [];
    let wake: () => void = () => {};
    await client.start((f) => {
      received.push(f);
      wake();
    });
    const next = () => new Promise<void>((r) => wake = r);
    while (!client.joined) await new Promise((r) => setTimeout(r, 20));
    assert.equal(client.mtu, 1500);

    let arrived = next();
    client.send(frame(1));
    await arrived;
    assert.deepEqual(received[0], frame(1));

    await first.stop();
    client.joined = false;
    await start();
    // The periodic join brings the port back; keep sending until the echo returns.
    arrived = next();
    let echoed = false;
    arrived.then(() => echoed = true);
    while (!echoed) {
      client.send(frame(2));
      await Promise.race([arrived, new Promise((r) => setTimeout(r, 50))]);
    }
    assert.deepEqual(received.at(-1), frame(2));
    assert.equal(client.joined, true);
  } finally {
    await client.close();
    for (const p of procs) await p.stop();
    await tb.close();
  }
});

Deno.test("cpu net client: a kick's frames and a turn's sends go as batch messages, both ways; batch: false sends one per frame", async () => {
  const tb = await startTestBus();
  const svc = await startService("net", ["--switch", "swb", "--mode", "echo"], tb.nats.url);
  const clients = [true, false].map((batch) =>
    new BusNetClient(tb.bus, {
      switch: "swb",
      port: `vmB${batch ? 1 : 0}-net0`,
      mac: batch ? "52:54:00:12:34:58" : "52:54:00:12:34:59",
      rejoinMs: 0,
      batch,
    })
  );
  try {
    for (const [i, client] of clients.entries()) {
      const received: Uint8Array[] = [];
      let wake: () => void = () => {};
      await client.start((f) => {
        received.push(f);
        if (received.length === 40) wake();
      });
      assert.equal(client.joined, true);
      assert.equal(client.switchBatches, i === 0, "the echo switch says it reads batches");
      const all = new Promise<void>((r) => wake = r);
      const frames = Array.from({ length: 40 }, (_, t) => frame(t));
      client.sendMany(frames.slice(0, 25));
      for (const f of frames.slice(25)) client.send(f);
      await all;
      assert.deepEqual(received, frames, "every frame back, in order");
      const batched = i === 0;
      // Batched: the kick's 25 go at once, the 15 single sends of the turn after it together.
      assert.equal(client.txMessages, batched ? 2 : 40);
      if (batched) assert.ok(client.rxMessages <= 2, `${client.rxMessages} rx messages`);
      else assert.equal(client.rxMessages, 40);
      assert.equal(client.rxFrames, 40);
    }
  } finally {
    for (const c of clients) await c.close();
    await svc.stop();
    await tb.close();
  }
});
