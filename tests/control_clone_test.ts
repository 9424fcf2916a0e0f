/**
 * Clones and snapshots through the control plane: real nats-server with JetStream, memory
 * service, two host agents and the control service as processes on loopback, a bare-metal guest
 * with a data disk. `vmesh.control.snapshot` with disk layers (the agent stores the points);
 * the disk files deleted, so every restore below rebuilds them from the layers; a clone request
 * that does not fit leaves nothing; REST and `./vmesh clone --control` place clones on both
 * hosts, each carrying the counter on over its own overlay; an agent killed, its VMs with a disk
 * are recreated on the other host from the layers.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { control, memory, MEMORY_PREFIX } from "@vmesh/bus";
import { buildTickGuest, TICK_GUEST_LINE, ticks } from "./bare_metal_elf.ts";
import { controlClient, startAgent, startControl, vmeshCli } from "./control_harness.ts";
import { type ServiceProcess, startService, startTestBus, waitFor } from "./services_harness.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test({
  name:
    "control: snapshot with disk layers, clones placed all or none (bus, REST, CLI), a lost host's clones recreated from the layers",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-clone-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const kernel = await buildTickGuest(dir, 100);
    // A 2 MiB data disk of random bytes: 32 distinct chunks, none a zero chunk.
    const image = new Uint8Array(2 << 20);
    for (let o = 0; o < image.length; o += 65536) {
      crypto.getRandomValues(image.subarray(o, o + 65536));
    }
    await Deno.writeFile(`${dir}/data.img`, image);
    const url = tb.nats.url;
    procs.push(await startService("memory", ["--store", `dir:${dir}/store`], url));
    const h1 = await startAgent("h1", dir, url, { ramMib: 512, cores: 8 });
    procs.push(h1);
    procs.push(await startAgent("h2", dir, url, { ramMib: 512, cores: 8 }));
    const ctlProc = await startControl(url, 1500);
    procs.push(ctlProc);
    const http = / http (http:\/\/\S+)/.exec(ctlProc.ready)![1];
    const ctl = controlClient(tb.bus);
    await waitFor("2 hosts up", async () => {
      const { hosts } = await ctl.call("hosts", {});
      return hosts.filter((h) => h.up).length === 2 || undefined;
    });
    await ctl.call("create", {
      name: "base",
      quota: { harts: 1, ramMib: 64, diskMib: 2 },
      boot: { bios: "none", kernel, disk: `${dir}/data.img` },
    });
    const tickedPast = (name: string, n: number) =>
      waitFor(`${name} past tick ${n}`, async () => {
        const { text } = await ctl.call("logs", { name });
        return ticks(text).some((t) => t >= n) ? text : undefined;
      }, 60_000);
    await tickedPast("base", 3);

    // The control plane's snapshot: the CPU service stores it, the agent its disk layers.
    const info = await ctl.call("snapshot", { name: "base", snapshot: "s1", diskLayers: true });
    const atSnap = Math.max(...ticks((await ctl.call("logs", { name: "base" })).text));
    assert.equal(info.snapshot, "s1");
    assert.equal(info.host, (await ctl.call("inspect", { name: "base" })).host);
    assert.deepEqual(info.layerDisks, ["disk0"]);
    assert.ok(info.layerBytes >= 2 << 20, `layer bytes ${info.layerBytes}`);
    const { manifest } = await tb.bus.request({ prefix: MEMORY_PREFIX }, memory.ops.get_manifest, {
      name: "s1",
    });
    const point = manifest!.disks![0];
    assert.ok(point.baseLayer && point.pointLayer, "layers in the manifest");
    // Neither the base image nor the point is on any host now: restores need the layers.
    await Deno.remove(point.overlay);
    await Deno.remove(point.image);
    const refusedSnap = await ctl.call("snapshot", { name: "nosuch" }).catch((e) => e);
    assert.match(`${refusedSnap.message}`, /no VM nosuch/);

    // Unknown snapshot, and more clones than the hosts hold: refused, nothing left.
    const unknown = await ctl.call("clone", { snapshot: "nosuch", count: 2 }).catch((e) => e);
    assert.match(`${unknown.message}`, /no snapshot nosuch in the memory service/);
    const tooMany = await ctl.call("clone", { snapshot: "s1", count: 16, prefix: "big" })
      .catch((e) => e);
    assert.match(`${tooMany.message}`, /no room for clone 16 of 16 \(big16\)/);
    assert.match(`${tooMany.message}`, /none of the 16 clones was started/);
    const reservedRam = async () =>
      Object.fromEntries(
        (await ctl.call("hosts", {})).hosts.map((h) => [h.host, h.reserved.ramMib]),
      );
    assert.deepEqual((await ctl.call("list", {})).vms.map((v) => v.name), ["base"]);
    assert.equal(Object.values(await reservedRam()).reduce((a, b) => a + b, 0), 64);
    // A snapshot without layers whose point is gone: both starts fail, both clones are removed.
    const s2 = await ctl.call("snapshot", { name: "base", snapshot: "s2" });
    assert.deepEqual(s2.layerDisks, []);
    const m2 = await tb.bus.request({ prefix: MEMORY_PREFIX }, memory.ops.get_manifest, {
      name: "s2",
    });
    await Deno.remove(m2.manifest!.disks![0].overlay);
    const noLayers = await ctl.call("clone", { snapshot: "s2", count: 2, prefix: "n" })
      .catch((e) => e);
    assert.match(
      `${noLayers.message}`,
      /2 of 2 clones did not start \(n1: .*snapshot s2 holds no layers of it.*; n2: .*none of the 2 is left/,
    );
    assert.deepEqual((await ctl.call("list", {})).vms.map((v) => v.name), ["base"]);
    assert.equal(Object.values(await reservedRam()).reduce((a, b) => a + b, 0), 64);
    // Not the last snapshot of base any more: its recreation below takes s1.
    const rmS2 = await vmeshCli(url, "snapshots", "--rm", "s2");
    assert.equal(rmS2.code, 0, rmS2.err);

    // Two clones through REST, two through the CLI: placed on both hosts.
    const t0 = performance.now();
    const rest = await fetch(`${http}/api/snapshots/s1/clone`, {
      method: "POST",
      body: JSON.stringify({ count: 2, prefix: "r", labels: { app: "clone" } }),
    });
    const restMs = performance.now() - t0;
    assert.equal(rest.status, 201, await rest.clone().text());
    const restVms = (await rest.json()).vms as control.VmInfo[];
    assert.deepEqual(restVms.map((v) => v.name), ["r1", "r2"]);
    const taken = await ctl.call("clone", { snapshot: "s1", count: 3, prefix: "r" })
      .catch((e) => e);
    assert.match(`${taken.message}`, /VM r1 already exists.*none of the 3 clones was created/);
    const cliUnknown = await vmeshCli(url, "clone", "nosuch", "--count", "2", "--control");
    assert.equal(cliUnknown.code, 1, cliUnknown.err);
    assert.match(cliUnknown.err, /vmesh clone: no snapshot nosuch in the memory service/);
    const t1 = performance.now();
    const cli = await vmeshCli(url, "clone", "s1", "--count", "2", "--control", "--name", "c");
    const cliMs = performance.now() - t1;
    assert.equal(cli.code, 0, cli.err);
    const lines = cli.out.trim().split("\n").map((l) => l.split(" "));
    assert.deepEqual(lines.map((l) => l[0]), ["c1", "c2"]);
    console.log(
      `2 clones via REST: ${restMs.toFixed(0)} ms; 2 via ./vmesh clone: ${cliMs.toFixed(0)} ms`,
    );
    const clones = (await ctl.call("list", {})).vms.filter((v) => v.name !== "base");
    assert.equal(clones.length, 4);
    for (const v of clones) {
      assert.equal(v.state, control.VmState.RUNNING);
      assert.equal(v.boot.snapshot, "s1");
      assert.deepEqual([v.quota.harts, v.quota.ramMib], [1, 64]);
    }
    assert.ok(new Set(clones.map((v) => v.host)).size === 2, "on both hosts");
    const ram = await reservedRam();
    assert.equal(ram.h1 + ram.h2, 5 * 64);
    for (const v of clones) {
      const text = await tickedPast(v.name, atSnap + 2);
      assert.doesNotMatch(text, new RegExp(TICK_GUEST_LINE), `${v.name} restored, not booted`);
      assert.ok(ticks(text)[0] >= atSnap - 1, `${v.name} first tick ${ticks(text)[0]}`);
      // Its own overlay, a copy of the rebuilt point; one rebuilt base per host.
      const own = `${dir}/${v.host}/${v.name}.disk0.${point.backend}`;
      assert.ok((await Deno.stat(own)).isFile, own);
      const base = await Deno.readFile(`${dir}/${v.host}/layers/s1.disk0.base`);
      assert.equal(sha(base), sha(image), "the base rebuilt byte for byte");
    }

    // h1's agent killed: its VMs (all from s1, or with s1 as their last snapshot) come back on
    // h2, their disks from the layers.
    const onH1 = (await ctl.call("list", {})).vms.filter((v) => v.host === "h1").map((v) => v.name);
    assert.ok(onH1.length >= 1);
    await h1.stop("SIGKILL");
    await waitFor("h1's VMs recreated on h2", async () => {
      const { vms } = await ctl.call("list", {});
      return vms.filter((v) => onH1.includes(v.name)).every((v) =>
        v.host === "h2" && v.state === control.VmState.RUNNING
      ) || undefined;
    }, 60_000).catch(async (e) => {
      const { vms } = await ctl.call("list", {});
      const { events } = await ctl.call("events", { max: 40 });
      throw new Error(
        `${e.message}: ${vms.map((v) => `${v.name} ${v.state} ${v.host} ${v.reason}`).join("; ")}` +
          ` events: ${events.map((x) => `${x.vm} ${x.type} ${x.host} ${x.detail}`).join("; ")}`,
      );
    });
    for (const name of onH1) {
      const v = await ctl.call("inspect", { name });
      assert.match(v.reason, /recreated from snapshot s1 \(host h1 lost\)/);
      const text = await tickedPast(name, atSnap + 2);
      assert.doesNotMatch(text, new RegExp(TICK_GUEST_LINE), `${name} restored, not booted`);
    }

    // One clone placed on a host that cannot start it (a file where its --dir was), one on h2 that can:
    // the one that started is removed again, and the error says so.
    procs.push(await startAgent("h3", dir, url, { ramMib: 128, cores: 8 }));
    await waitFor("h3 up", async () => {
      const { hosts } = await ctl.call("hosts", {});
      return hosts.find((h) => h.host === "h3" && h.up);
    });
    await Deno.remove(`${dir}/h3`, { recursive: true });
    await Deno.writeTextFile(`${dir}/h3`, "a file where h3's --dir was");
    const half = await ctl.call("clone", { snapshot: "s1", count: 2, prefix: "p" }).then(
      (r) => JSON.stringify(r.vms.map((v) => [v.name, v.host])),
      (e) => e.message,
    );
    assert.match(
      half,
      /1 of 2 clones did not start \(p1: VM p1 placed on h3, but host h3 could not start it: .*\); the 1 that started were stopped and removed with the rest: none of the 2 is left/,
    );
    assert.ok(!(await ctl.call("list", {})).vms.some((v) => v.name.startsWith("p")));
    const { events } = await ctl.call("events", { vm: "p2" });
    assert.deepEqual(events.map((e) => e.type), ["created", "placed", "running", "removed"]);
    await waitFor("p2 gone from h2", () =>
      new Promise<true | undefined>((resolve) => {
        const sub = tb.bus.subscribe(control.hostLoad, control.hostLoadSubject("h2"), (l) => {
          sub.unsubscribe();
          resolve(l.vms.some((v) => v.name === "p2") ? undefined : true);
        });
      }));
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
