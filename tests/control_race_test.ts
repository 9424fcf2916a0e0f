/**
 * Races of the control plane, made to happen on purpose with real processes (nats-server with
 * JetStream, host agents, control services, guests): agents are paused with SIGSTOP so a
 * control service starts before it has heard any host, or a host comes back after its room was
 * given away. Each case failed before its fix:
 *
 * - a control service that had not yet heard the hosts' announcements refused every create
 *   ("no host is up"): with two control services in one queue group, a create reaching the
 *   fresh one was refused (the flaky "both creates of one name refused" of the two-service
 *   test). It now waits for one lost timeout of announcements before refusing.
 * - a lost VM whose host announced it again took its reservation back without a fit check, so
 *   a placement made meanwhile on the freed room overcommitted the host. It now reserves with a
 *   compare-and-set that checks the fit, and stops the VM there when the room is gone.
 */
import assert from "node:assert/strict";
import { control } from "@vmesh/bus";
import { Kvm } from "@nats-io/kv";
import { buildIdleGuest } from "./bare_metal_elf.ts";
import { bareVm, controlClient, startAgent, startControl } from "./control_harness.ts";
import { type ServiceProcess, startTestBus, waitFor } from "./services_harness.ts";

const LOST_MS = 1500;

Deno.test({
  name:
    "control races: a fresh control service waits for hosts; a returning host cannot overcommit",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-race-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const kernel = await buildIdleGuest(dir);
    const url = tb.nats.url;
    const h1 = await startAgent("h1", dir, url);
    procs.push(h1);
    const ctl = controlClient(tb.bus);
    const spec = (name: string, ramMib: number) => bareVm(name, ramMib, kernel);

    await t.step("a create sent before the fresh control service heard any host", async () => {
      // The agent is paused before the control service starts: nothing announces yet.
      h1.child.kill("SIGSTOP");
      procs.push(await startControl(url, LOST_MS));
      const created = ctl.call("create", spec("a", 512));
      await new Promise((r) => setTimeout(r, 400));
      h1.child.kill("SIGCONT");
      const a = await created;
      assert.equal(a.host, "h1");
      assert.equal(a.state, control.VmState.RUNNING);
    });

    await t.step("a lost VM coming back finds its room taken", async () => {
      await ctl.call("create", spec("b", 512));
      const kv = await new Kvm(tb.bus.nc).open("vmesh-control");
      // h1 stops announcing: a and b are lost and their room released.
      h1.child.kill("SIGSTOP");
      await waitFor("a and b lost", async () => {
        const { vms } = await ctl.call("list", {});
        return vms.every((v) => v.state === control.VmState.LOST) ? vms : undefined;
      });
      // Another control service's placement takes the whole host meanwhile (its ledger write).
      const cur = await kv.get("host.h1");
      const ledger = cur!.json<{ vms: Record<string, unknown> }>();
      assert.deepEqual(Object.keys(ledger.vms), []);
      ledger.vms.x = { quota: { harts: 1, ramMib: 1024, diskMib: 0 }, labels: {} };
      await kv.update("host.h1", JSON.stringify(ledger), cur!.revision);
      h1.child.kill("SIGCONT");
      // h1 announces a and b running again: they must not take room that is gone.
      const stopped = await waitFor("a and b stopped on h1", async () => {
        const { events } = await ctl.call("events", {});
        const s = events.filter((e) => e.type === "orphan-stopped" && e.host === "h1");
        return s.length === 2 ? s : undefined;
      });
      for (const e of stopped) assert.match(e.detail, /room placements had taken meanwhile/);
      const after = (await kv.get("host.h1"))!.json<
        { vms: Record<string, { quota: { ramMib: number } }> }
      >();
      assert.deepEqual(Object.keys(after.vms), ["x"]);
      const { vms } = await ctl.call("list", {});
      assert.deepEqual(vms.map((v) => [v.name, v.state]), [
        ["a", control.VmState.LOST],
        ["b", control.VmState.LOST],
      ]);
      const { hosts } = await ctl.call("hosts", {});
      assert.equal(hosts[0].reserved.ramMib, 1024, "never over the host's RAM");
    });
  } finally {
    for (const p of procs.reverse()) {
      try {
        p.child.kill("SIGCONT");
      } catch { /* gone */ }
      await p.stop().catch(() => {});
    }
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
