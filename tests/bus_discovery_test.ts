// Discovery: a running device service answers $SRV.PING/INFO/STATS with its name,
// version and endpoints.
import assert from "node:assert/strict";
import { Svcm } from "@nats-io/services";
import { block, connect, startEmbeddedNats } from "../bus/mod.ts";
import { ServiceProcess } from "../bus/testdata/service_process.ts";

const ECHO = new URL("../bus/testdata/echo_service.ts", import.meta.url);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

Deno.test("bus: $SRV.INFO/PING/STATS list a running service", async () => {
  const nats = await startEmbeddedNats();
  const svc = ServiceProcess.start(ECHO, { NATS_URL: nats.url, VM: "vmD", DEVICE: "disk3" });
  const bus = await connect({ url: nats.url, name: "discovery-client" });
  try {
    const ready = await svc.waitFor((e) => e.event === "ready");
    const client = new Svcm(bus.nc as unknown as ConstructorParameters<typeof Svcm>[0]).client();

    const infos = await collect(await client.info("vmesh-echo"));
    assert.equal(infos.length, 1);
    const info = infos[0];
    assert.equal(info.name, "vmesh-echo");
    assert.equal(info.version, "1.2.3");
    assert.equal(info.id, ready.id);
    assert.equal(info.metadata?.prefix, "vmesh.vmD.disk3");
    assert.equal(info.metadata?.vm, "vmD");
    assert.equal(info.metadata?.device, "disk3");
    const endpoints = Object.fromEntries(info.endpoints.map((e) => [e.name, e]));
    assert.deepEqual(Object.keys(endpoints).sort(), Object.keys(block.ops).sort());
    assert.equal(endpoints.read.subject, "vmesh.vmD.disk3.read");
    assert.equal(endpoints.write.metadata?.request, "vmesh.block.Write");
    assert.equal(endpoints.write.metadata?.reply, "vmesh.block.WriteReply");

    const pings = await collect(await client.ping());
    assert.ok(pings.some((p) => p.name === "vmesh-echo" && p.version === "1.2.3"));

    const disk = bus.client({ vm: "vmD", device: "disk3" }, block.ops);
    await disk.call("info", {});
    await disk.call("info", {});
    const stats = await collect(await client.stats("vmesh-echo", info.id));
    assert.equal(stats.length, 1);
    const infoStats = stats[0].endpoints?.find((e) => e.name === "info");
    assert.equal(infoStats?.num_requests, 2);
  } finally {
    await bus.close();
    await svc.stop();
    await nats.stop();
  }
});
