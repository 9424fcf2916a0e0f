/**
 * Hosts for real: each host is a network namespace with its own nats-server (a leaf node of
 * the control service's JetStream server, over a bridge) and its own host agent; the control
 * service and the memory service (snapshots) run in the root namespace. Six VMs spread over
 * two hosts; one is snapshotted and a VM created from that snapshot carries on its guest; an
 * agent killed with SIGKILL has its VMs reported lost, and those with a snapshot are recreated
 * from it on the other host (the guest's counter goes on); a host added later takes new VMs.
 *
 * Leaf nodes rather than a routed cluster: nats-server 2.9.10 with JetStream on the control
 * server only never elected a JetStream meta leader in a routed cluster with servers without
 * JetStream ("Adjusting JetStream expected peer set size" forever), and JetStream on every host
 * would put the records on hosts that may die. Needs root and iproute2 (`ip netns`).
 */
import assert from "node:assert/strict";
import { connect, control, processGone } from "@vmesh/bus";
import { buildTickGuest, TICK_GUEST_LINE, ticks } from "./bare_metal_elf.ts";
import { controlClient, vmeshCli } from "./control_harness.ts";
import { denoRun, listening, NetnsHosts, type NetnsProc } from "./netns_harness.ts";
import { servicePath, waitFor } from "./services_harness.ts";

const TAG = `vc${Deno.pid % 10000}`;
const NET = `10.201.${Deno.pid % 250}`;
const PORT = 14222;
const LEAF_PORT = 17422;

const isRoot = Deno.uid() === 0;

Deno.test({
  name:
    "control plane across network namespaces: spread, create from a snapshot, a lost host's VMs recreated from snapshots, a host added later",
  ignore: !isRoot,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-netns-" });
  const net = new NetnsHosts(TAG, NET);
  try {
    const kernel = await buildTickGuest(dir, 200);
    await net.addBridge();
    const hubUrl = `nats://${NET}.1:${PORT}`;
    await Deno.writeTextFile(
      `${dir}/hub.conf`,
      `listen: "${NET}.1:${PORT}"\nserver_name: hub\njetstream { store_dir: "${dir}/js" }\n` +
        `leafnodes { listen: "${NET}.1:${LEAF_PORT}" }\n`,
    );
    await net.spawn(undefined, ["nats-server", "-c", `${dir}/hub.conf`], {});
    await listening(`${NET}.1`, PORT);
    await net.spawn(
      undefined,
      denoRun(servicePath("control"), "--http", "off"),
      { NATS_URL: hubUrl },
      / ready: /,
    );
    // Snapshots live in the memory service on the hub's JetStream: any host can restore them.
    await net.spawn(
      undefined,
      denoRun(servicePath("memory"), "--store", "objects"),
      { NATS_URL: hubUrl },
      / ready: /,
    );
    const agents = new Map<string, NetnsProc>();

    /** A host: namespace, veth on the bridge, a leaf nats-server, an agent. */
    const addHost = async (name: string, n: number) => {
      const ip = `${NET}.${10 + n}`;
      await net.addHost(name, ip);
      await Deno.writeTextFile(
        `${dir}/${name}.conf`,
        `listen: "${ip}:${PORT}"\nserver_name: leaf-${name}\n` +
          `leafnodes { remotes: [ { url: "nats-leaf://${NET}.1:${LEAF_PORT}" } ] }\n`,
      );
      await net.spawn(name, ["nats-server", "-c", `${dir}/${name}.conf`], {});
      await listening(ip, PORT);
      const a = await net.spawn(
        name,
        denoRun(
          servicePath("agent"),
          "--host",
          name,
          "--ram",
          "1024",
          "--cores",
          "8",
          "--dir",
          `${dir}/${name}`,
          "--interval",
          "300",
        ),
        { NATS_URL: `nats://${ip}:${PORT}` },
        / ready: /,
      );
      agents.set(name, a);
    };
    await addHost("h1", 1);
    await addHost("h2", 2);

    // The test's own client is on the hub, as the control service.
    const bus = await connect({ url: hubUrl, name: "vmesh-test", log: () => {} });
    try {
      const ctl = controlClient(bus);
      const up = (n: number) =>
        waitFor(`${n} hosts up`, async () => {
          const { hosts } = await ctl.call("hosts", {});
          return hosts.filter((h) => h.up).length === n ? hosts : undefined;
        });
      await up(2);
      const create = (name: string) =>
        ctl.call("create", {
          name,
          quota: { harts: 1, ramMib: 96, diskMib: 0 },
          boot: { bios: "none", kernel },
        });
      const placed: control.VmInfo[] = [];
      for (let i = 1; i <= 6; i++) placed.push(await create(`v${i}`));
      const count = (vms: control.VmInfo[], host: string) =>
        vms.filter((v) => v.host === host).length;
      assert.equal(count(placed, "h1"), 3);
      assert.equal(count(placed, "h2"), 3);
      // The guests run inside the hosts' namespaces; their output crosses the leaf nodes.
      const tickedPast = (name: string, n: number) =>
        waitFor(`${name} past tick ${n}`, async () => {
          const { text } = await ctl.call("logs", { name });
          return ticks(text).some((t) => t >= n) ? text : undefined;
        });
      const victim = placed.find((v) => v.host === "h1")!.name;
      assert.match(await tickedPast(victim, 3), new RegExp(TICK_GUEST_LINE));

      // A snapshot of it (./vmesh snapshot through the hub), and a VM created from it.
      const snap = await vmeshCli(hubUrl, "snapshot", victim, "--name", "snap1");
      assert.equal(snap.code, 0, snap.err);
      const atSnap = Math.max(...ticks((await ctl.call("logs", { name: victim })).text));
      const made = await vmeshCli(hubUrl, "create", "--from-snapshot", "snap1", "-o", "json", "c1");
      assert.equal(made.code, 0, made.err);
      const c1 = JSON.parse(made.out);
      assert.equal(c1.state, "running");
      assert.equal(c1.boot.snapshot, "snap1");
      assert.deepEqual([c1.quota.harts, c1.quota.ramMib], [1, 96], "the snapshot's machine");
      // The clone carries on from the snapshot's counter: no banner, no tick 0 again.
      const cText = await tickedPast("c1", atSnap + 2);
      assert.doesNotMatch(cText, new RegExp(TICK_GUEST_LINE));
      assert.ok(ticks(cText)[0] >= atSnap - 1, `c1 starts at ${ticks(cText)[0]}, snap ${atSnap}`);
      const refused = await ctl.call("create", {
        name: "c2",
        quota: { harts: 1, ramMib: 512, diskMib: 0 },
        boot: { bios: "", kernel: "", snapshot: "snap1" },
      }).catch((e) => e);
      assert.match(`${refused.message}`, /snapshot snap1 is a machine of 1 harts and 96 MiB/);
      const onH1 = (await ctl.call("list", {})).vms.filter((v) => v.host === "h1");
      const withSnap = onH1.filter((v) => v.name === victim || v.name === "c1").map((v) => v.name);

      // Kill h1's agent: its three VMs are reported lost, with their processes gone.
      const pids = await new Promise<number[]>((resolve) => {
        const sub = bus.subscribe(control.hostLoad, control.hostLoadSubject("h1"), (l) => {
          sub.unsubscribe();
          resolve(l.vms.flatMap((v) => v.pids));
        });
      });
      await agents.get("h1")!.kill("SIGKILL");
      // Those with a snapshot come back on h2 from it; the others stay lost.
      const lost = await waitFor("h1's VMs lost or recreated", async () => {
        const { vms } = await ctl.call("list", {});
        const mine = vms.filter((v) => v.host === "h1");
        const back = vms.filter((v) => withSnap.includes(v.name));
        return mine.every((v) => v.state === control.VmState.LOST) &&
            back.every((v) => v.host === "h2" && v.state === control.VmState.RUNNING)
          ? mine
          : undefined;
      });
      assert.equal(lost.length, onH1.length - withSnap.length);
      for (const v of lost) assert.match(v.reason, /host h1 stopped announcing/);
      const back = await ctl.call("inspect", { name: victim });
      assert.equal(back.boot.snapshot, "snap1");
      assert.match(back.reason, /recreated from snapshot snap1 \(host h1 lost\)/);
      const vText = await tickedPast(victim, atSnap + 2);
      assert.doesNotMatch(vText, new RegExp(TICK_GUEST_LINE), "restored, not booted again");
      const { events } = await ctl.call("events", { vm: victim });
      assert.deepEqual(
        events.map((e) => e.type).filter((t) => ["lost", "recreating", "recreated"].includes(t)),
        ["lost", "recreating", "recreated"],
      );
      await waitFor(
        "h1's VM processes gone",
        () => Promise.resolve(pids.every(processGone) || undefined),
      );

      // A host added now is the least loaded: the next VMs land there until it is level.
      await addHost("h3", 3);
      await waitFor("h3 up", async () => {
        const { hosts } = await ctl.call("hosts", {});
        return hosts.find((h) => h.host === "h3" && h.up);
      });
      const later: control.VmInfo[] = [];
      for (let i = 7; i <= 9; i++) later.push(await create(`v${i}`));
      assert.deepEqual(later.map((v) => v.host), ["h3", "h3", "h3"]);
      const fourth = await create("v10");
      assert.ok(["h2", "h3"].includes(fourth.host), fourth.host);
    } finally {
      await bus.close();
    }
  } finally {
    await net.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
