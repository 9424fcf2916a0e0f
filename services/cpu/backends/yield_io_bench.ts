/**
 * What a bus client on the CPU's main thread gets while the guest runs (`deno bench -A
 * services/cpu/backends/yield_io_bench.ts`): the thread alternates 1 ms busy batches (as
 * `Machine.run` runs instruction batches) with a yield of each kind, while a loopback TCP echo
 * (as a NATS socket) counts its round trips. Printed per yield kind: yields, the mean cost of
 * one, and echo round trips in VMESH_BENCH_YIELD_MS (default 1000) ms. A yield that does not
 * let the runtime poll sockets starves every device reply until the guest idles (WFI).
 * Measured once at module load; nothing asserts on time.
 * @module
 */

import { setImmediate } from "node:timers";
import { startLoopbackEcho } from "./loopback_echo_test_support.ts";

const RUN_MS = Number(Deno.env.get("VMESH_BENCH_YIELD_MS") ?? "1000");

/** Ways the run loop could give the event loop a turn. */
const YIELDS: Record<string, () => Promise<unknown>> = {
  "setImmediate (node:timers)": () => new Promise<void>((r) => setImmediate(r)),
  "setTimeout 0": () => new Promise<void>((r) => setTimeout(r, 0)),
  "an async op (Deno.lstat)": () => Deno.lstat("/"),
};

async function measure(): Promise<void> {
  const echoConn = await startLoopbackEcho();
  for (const [label, yieldOnce] of Object.entries(YIELDS)) {
    let stop = false, trips = 0;
    const echo = (async () => {
      while (!stop) {
        await echoConn.roundTrip();
        trips++;
      }
    })();
    const end = performance.now() + RUN_MS;
    let yields = 0, busy = 0;
    while (performance.now() < end) {
      const t = performance.now();
      while (performance.now() - t < 1) { /* a batch of guest instructions */ }
      busy += performance.now() - t;
      yields++;
      await yieldOnce();
    }
    stop = true;
    await echo;
    console.log(
      `yield_io_bench: ${label.padEnd(28)} ${yields} yields, ` +
        `${((RUN_MS - busy) / yields).toFixed(3)} ms each, ${trips} echo round trips`,
    );
  }
  await echoConn.close();
}

await measure();

Deno.bench("yield_io_bench (measured at load)", () => {});
