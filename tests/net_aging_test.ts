/**
 * Port aging in the real net service process: a port that stops re-joining (its
 * heartbeat) and sending is removed after the aging time; a port that keeps re-joining
 * stays.
 */
import assert from "node:assert/strict";
import { net } from "@vmesh/bus";
import type { SwitchStats } from "../services/net/mod.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

async function stats(tb: Awaited<ReturnType<typeof startTestBus>>): Promise<SwitchStats> {
  const msg = await tb.bus.nc.request("$SRV.STATS.vmesh-net", new Uint8Array(), {
    timeout: 10_000,
  });
  return msg.json<{ endpoints: { data: SwitchStats }[] }>().endpoints[0].data;
}

Deno.test("net aging: a silent port is removed, a heartbeating port stays", async () => {
  const tb = await startTestBus();
  let svc: ServiceProcess | undefined;
  let beat: ReturnType<typeof setInterval> | undefined;
  try {
    svc = await startService("net", ["--switch", "age0", "--aging", "3"], tb.nats.url);
    const client = tb.bus.client({ prefix: "vmesh.net.age0" }, net.ops);
    const join = (portId: string, mac: string) =>
      client.call("join", { switch: "age0", mac, portId });
    const r = await join("idle", "52:54:00:00:00:01");
    assert.equal(r.agingMs, 3000);
    await join("live", "52:54:00:00:00:02");
    // The heartbeat: re-join well within the aging time, as the CPU side does.
    beat = setInterval(() => void join("live", "52:54:00:00:00:02").catch(() => {}), 250);
    // Wait (bounded) for the service to report that idle aged out.
    for (let i = 0; i < 200 && !svc.log.some((l) => l.includes("port idle aged out")); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(svc.log.some((l) => l.includes("port idle aged out")), svc.log.join("\n"));
    const s = await stats(tb);
    assert.deepEqual(s.portStats.map((p) => p.id), ["live"]);
    assert.ok(!svc.log.some((l) => l.includes("port live aged out")), svc.log.join("\n"));
    clearInterval(beat);
    assert.equal(await svc.stop("SIGTERM"), 0);
  } finally {
    clearInterval(beat);
    await svc?.stop("SIGKILL");
    await tb.close();
  }
});
