/**
 * Rebalancing by live migration for real (services/control/rebalance.ts): a nats-server with
 * JetStream, two host agents and the control service (`--rebalance`) as processes on loopback,
 * each with its own login (roles agent and control of bus/credentials.ts; anonymous refused), so
 * the move also shows those roles allow what a migration does.
 * A guest that keeps its core busy runs alone on a one-core host; once a second host joins, the
 * control service sees the first host stay overloaded and live-migrates the VM there: the CPU
 * service moves, the console service stays, and the guest's tick counter goes on without a
 * restart.
 */
import assert from "node:assert/strict";
import { type BusCredentials, control } from "@vmesh/bus";
import { buildTickGuest, TICK_GUEST_LINE, ticks } from "./bare_metal_elf.ts";
import {
  controlClient,
  permissionViolations,
  startAgent,
  startLoginBus,
} from "./control_harness.ts";
import { type ServiceProcess, startService, waitFor } from "./services_harness.ts";

function agent(creds: BusCredentials, host: string, cores: number, dir: string, url: string) {
  return startAgent(host, dir, url, { cores, env: creds.env({ kind: "agent", host }) });
}

Deno.test({
  name:
    "control rebalance: a VM live-migrated off a host that stays overloaded, its guest going on",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-rebalance-" });
  const tb = await startLoginBus([
    { kind: "agent", host: "h1" },
    { kind: "agent", host: "h2" },
    { kind: "control" },
  ]);
  const { creds, nats } = tb;
  const procs: ServiceProcess[] = [];
  try {
    const kernel = await buildTickGuest(dir, 100, true);
    const url = nats.url;
    procs.push(await agent(creds, "h1", 1, dir, url));
    // Overloaded: its VMs use 30% of its cores or more, for 1.5 s.
    procs.push(
      await startService(
        "control",
        [
          "--http",
          "0",
          "--lost-timeout",
          "1500",
          "--rebalance",
          "--rebalance-cpu",
          "0.3",
          "--rebalance-after",
          "1500",
        ],
        url,
        { env: creds.env({ kind: "control" }) },
      ),
    );
    const ctl = controlClient(tb.bus);
    const hot = await ctl.call("create", {
      name: "hot",
      quota: { harts: 1, ramMib: 64, diskMib: 0 },
      boot: { bios: "none", kernel },
    });
    assert.equal(hot.host, "h1");
    const tickedPast = (n: number) =>
      waitFor(`hot past tick ${n}`, async () => {
        const { text } = await ctl.call("logs", { name: "hot" });
        return ticks(text).some((t) => t >= n) ? text : undefined;
      });
    await tickedPast(5);
    // No other host: nothing to move to, it stays.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await ctl.call("inspect", { name: "hot" })).host, "h1");

    procs.push(await agent(creds, "h2", 4, dir, url));
    const moved = await waitFor("hot migrated to h2", async () => {
      const v = await ctl.call("inspect", { name: "hot" });
      return v.host === "h2" ? v : undefined;
    }, 60_000);
    assert.equal(moved.state, control.VmState.RUNNING);
    assert.equal(moved.deviceHost, "h1", "its console service stays on h1");
    assert.match(moved.reason, /live-migrated from h1 \(host h1's VMs used \d+% of its cores/);
    const { events } = await ctl.call("events", { vm: "hot" });
    assert.deepEqual(
      events.map((e) => e.type).filter((t) => t.startsWith("migrat")),
      ["migrating", "migrated"],
    );
    // The guest goes on: one banner, ticks one after another through the move.
    const last = Math.max(...ticks((await ctl.call("logs", { name: "hot" })).text));
    const text = await tickedPast(last + 5);
    assert.equal(text.split(TICK_GUEST_LINE).length - 1, 1, "booted once");
    const seq = ticks(text);
    for (let i = 1; i < seq.length; i++) assert.equal(seq[i], seq[i - 1] + 1, `tick ${i}`);
    // The CPU runs on h2 now, the devices on h1; the reservation moved.
    const load = (host: string) =>
      new Promise<control.HostLoad>((resolve) => {
        const sub = tb.bus.subscribe(control.hostLoad, control.hostLoadSubject(host), (l) => {
          sub.unsubscribe();
          resolve(l);
        });
      });
    const [l1, l2] = await Promise.all([load("h1"), load("h2")]);
    assert.equal(l1.vms.find((v) => v.name === "hot")?.migratedTo, "h2");
    assert.equal(l2.vms.find((v) => v.name === "hot")?.running, true);
    const { hosts } = await ctl.call("hosts", {});
    assert.deepEqual(hosts.map((h) => [h.host, h.reserved.harts]), [["h1", 0], ["h2", 1]]);
    // rm removes it on both hosts.
    await ctl.call("rm", { name: "hot", force: true });
    await waitFor("hot gone from both hosts", async () => {
      const [a, b] = await Promise.all([load("h1"), load("h2")]);
      return [...a.vms, ...b.vms].some((v) => v.name === "hot") ? undefined : true;
    });
    // The agents' and the control service's logins were refused nothing (a connection logs
    // each permission violation); their VMs' services, on the agents' logins, did all of the
    // above, which a refused subject would have stopped.
    assert.deepEqual(permissionViolations(procs), []);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
