/**
 * Per-frame cost of the bus path without guests (`deno bench -A services/net/frame_path_bench.ts`):
 * a real nats-server, the net service as its own process and two ports that are the CPU
 * service's own `BusNetClient`, each on its own NATS connection (both in this process). Printed,
 * with batches on and off (off: every frame its own message both ways, as before batching):
 * - ping-pong: A sends a 98-byte frame, B's receiver answers at once; round trip min/median;
 * - stream: A sends N 1514-byte frames in turns of 64 (a busy guest's tx kicks), B counts;
 *   frames per second and MiB/s through client → nats → switch → nats → client.
 * Measured once at module load (like net_bench.ts); nothing asserts on time. Environment:
 * VMESH_BENCH_FRAMES (stream length, default 20000).
 * @module
 */

import { connect } from "@vmesh/bus";
import { BusNetClient } from "../cpu/backends/bus_net_client.ts";
import { startService, startTestBus } from "../../tests/services_harness.ts";

const FRAMES = Number(Deno.env.get("VMESH_BENCH_FRAMES") ?? "20000");
const MAC_A = "52:54:00:7a:00:01", MAC_B = "52:54:00:7a:00:02";

function frame(len: number, dst: string, src: string): Uint8Array {
  const f = new Uint8Array(len);
  const mac = (m: string) => m.split(":").map((h) => parseInt(h, 16));
  f.set([...mac(dst), ...mac(src), 0x08, 0x00], 0);
  return f;
}

async function run(natsUrl: string, batch: boolean): Promise<string> {
  const buses = await Promise.all([0, 1].map(() => connect({ url: natsUrl, log: () => {} })));
  const a = new BusNetClient(buses[0], {
    switch: "fp",
    port: `a${batch ? 1 : 0}`,
    mac: MAC_A,
    rejoinMs: 0,
    batch,
  });
  const b = new BusNetClient(buses[1], {
    switch: "fp",
    port: `b${batch ? 1 : 0}`,
    mac: MAC_B,
    rejoinMs: 0,
    batch,
  });
  let onA: (f: Uint8Array) => void = () => {};
  let onB: (f: Uint8Array) => void = () => {};
  try {
    await a.start((f) => onA(f));
    await b.start((f) => onB(f));
    // Ping-pong.
    const ping = frame(98, MAC_B, MAC_A), pong = frame(98, MAC_A, MAC_B);
    onB = () => b.send(pong);
    const rtts: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await new Promise<void>((r) => {
        onA = () => r();
        a.send(ping);
      });
      rtts.push(performance.now() - t);
    }
    rtts.sort((x, y) => x - y);
    // Stream in turns of 64 frames, with a macrotask between turns as the run loop gives.
    const big = frame(1514, MAC_B, MAC_A);
    let got = 0;
    const all = new Promise<void>((r) => {
      onB = () => {
        if (++got === FRAMES) r();
      };
    });
    const t0 = performance.now();
    for (let sent = 0; sent < FRAMES;) {
      const turn = Math.min(64, FRAMES - sent);
      a.sendMany(Array.from({ length: turn }, () => big));
      sent += turn;
      await new Promise((r) => setTimeout(r, 0));
    }
    const lost = await Promise.race([
      all.then(() => 0),
      new Promise<number>((r) => setTimeout(() => r(FRAMES - got), 30_000)),
    ]);
    const s = (performance.now() - t0) / 1000;
    return `batches ${batch ? "on " : "off"}: ping-pong RTT min ${rtts[0].toFixed(3)} ms, ` +
      `median ${rtts[rtts.length >> 1].toFixed(3)} ms; stream ${FRAMES} x 1514 B in ` +
      `${s.toFixed(2)} s = ${(FRAMES / s).toFixed(0)} frames/s, ` +
      `${(FRAMES * 1514 / s / (1 << 20)).toFixed(1)} MiB/s, messages tx ${a.txMessages} ` +
      `rx ${b.rxMessages}${lost ? `, ${lost} frames lost` : ""}`;
  } finally {
    await a.close();
    await b.close();
    for (const bus of buses) await bus.close();
  }
}

const tb = await startTestBus();
const svc = await startService("net", ["--switch", "fp"], tb.nats.url);
try {
  for (const batch of [false, true]) {
    console.log(`frame_path_bench: ${await run(tb.nats.url, batch)}`);
  }
} finally {
  await svc.stop("SIGTERM");
  await tb.close();
}

Deno.bench("frame_path_bench (measured at load)", () => {});
