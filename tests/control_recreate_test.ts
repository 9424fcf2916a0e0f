/**
 * A lost VM recreated from its snapshot once a host can take it: real nats-server with
 * JetStream, memory service, host agents and control service as processes on loopback. The
 * only host is killed, so the lost VM has nowhere to go; a host that joins later gets it, from
 * its snapshot (the recreation is retried while its host stays lost).
 */
import assert from "node:assert/strict";
import { control } from "@vmesh/bus";
import { buildTickGuest, TICK_GUEST_LINE, ticks } from "./bare_metal_elf.ts";
import { bareVm, controlClient, startAgent, startControl, vmeshCli } from "./control_harness.ts";
import { type ServiceProcess, startService, startTestBus, waitFor } from "./services_harness.ts";

Deno.test({
  name: "control: a lost VM with a snapshot is recreated when a host joins later",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-recreate-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const kernel = await buildTickGuest(dir, 100);
    const url = tb.nats.url;
    procs.push(await startService("memory", ["--store", `dir:${dir}/store`], url));
    const h1 = await startAgent("h1", dir, url, { cores: 4 });
    procs.push(h1);
    procs.push(await startControl(url, 1500));
    const ctl = controlClient(tb.bus);
    await ctl.call("create", bareVm("r", 64, kernel));
    const tickedPast = (n: number) =>
      waitFor(`r past tick ${n}`, async () => {
        const { text } = await ctl.call("logs", { name: "r" });
        return ticks(text).some((t) => t >= n) ? text : undefined;
      });
    await tickedPast(3);
    const snap = await vmeshCli(url, "snapshot", "r", "--name", "r-snap");
    assert.equal(snap.code, 0, snap.err);
    const atSnap = Math.max(...ticks((await ctl.call("logs", { name: "r" })).text));

    await h1.stop("SIGKILL");
    const lost = await waitFor("r lost, nowhere to go", async () => {
      const v = await ctl.call("inspect", { name: "r" });
      return v.state === control.VmState.LOST && /not recreated from r-snap/.test(v.reason)
        ? v
        : undefined;
    });
    assert.match(lost.reason, /h1: its agent is not announcing/);

    procs.push(await startAgent("h2", dir, url, { cores: 4 }));
    const back = await waitFor("r recreated on h2", async () => {
      const v = await ctl.call("inspect", { name: "r" });
      return v.state === control.VmState.RUNNING && v.host === "h2" ? v : undefined;
    }, 30_000);
    assert.equal(back.boot.snapshot, "r-snap");
    const text = await tickedPast(atSnap + 3);
    assert.doesNotMatch(text, new RegExp(TICK_GUEST_LINE), "restored, not booted again");
    assert.ok(ticks(text)[0] >= atSnap - 1, `first tick ${ticks(text)[0]}, snapshot ${atSnap}`);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
