/**
 * The control plane for real: a nats-server with JetStream, two host agents and the
 * control service as processes on loopback, VMs as real CPU and console service processes
 * running a bare-metal guest that prints a line and idles in WFI.
 */
import assert from "node:assert/strict";
import { type Bus, BusError, control, processGone, Status } from "@vmesh/bus";
import { Kvm } from "@nats-io/kv";
import { buildIdleGuest, IDLE_GUEST_LINE } from "./bare_metal_elf.ts";
import { bareVm, controlClient, startAgent, startControl, vmeshCli } from "./control_harness.ts";
import { type ServiceProcess, startTestBus, waitFor } from "./services_harness.ts";

const LOST_MS = 1500;

/** The control service's HTTP URL from its ready line. */
function httpOf(p: ServiceProcess): string {
  const m = / http (http:\/\/\S+)/.exec(p.ready);
  assert.ok(m, p.ready);
  return m[1];
}

Deno.test({
  name: "control plane: spread by load, refusals, anti-affinity, lost host, restarted control",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-test-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  const started = async (p: Promise<ServiceProcess>) => {
    const s = await p;
    procs.push(s);
    return s;
  };
  try {
    const kernel = await buildIdleGuest(dir);
    const url = tb.nats.url;
    const bus: Bus = tb.bus;
    const h1 = await started(startAgent("h1", dir, url, { extra: ["--label", "zone=a"] }));
    await started(startAgent("h2", dir, url, { extra: ["--label", "zone=b"] }));
    let ctlProc = await started(startControl(url, LOST_MS));
    const ctl = controlClient(bus);
    await waitFor("both hosts up", async () => {
      const { hosts } = await ctl.call("hosts", {});
      return hosts.filter((h) => h.up).length === 2 ? true : undefined;
    });
    const create = (name: string, ramMib: number, extra: Partial<control.CreateVm> = {}) =>
      ctl.call("create", { ...bareVm(name, ramMib, kernel), ...extra });
    const hostOf = async (name: string) => (await ctl.call("inspect", { name })).host;

    await t.step("four VMs spread two and two over equal hosts, and their guests run", async () => {
      const vms = [];
      for (const n of ["a1", "a2", "a3", "a4"]) vms.push(await create(n, 128));
      for (const v of vms) assert.equal(v.state, control.VmState.RUNNING);
      const per = new Map<string, number>();
      for (const v of vms) per.set(v.host, (per.get(v.host) ?? 0) + 1);
      assert.deepEqual([...per.entries()].sort(), [["h1", 2], ["h2", 2]]);
      const { hosts } = await ctl.call("hosts", {});
      assert.deepEqual(hosts.map((h) => [h.host, h.reserved.ramMib, h.vms]), [
        ["h1", 256, 2],
        ["h2", 256, 2],
      ]);
      // Each CPU service runs in its VM's cgroup, capped at one core (when the agent is root).
      if (/cpu-quota=\/sys\/fs\/cgroup\/cpu\//.test(h1.ready)) {
        for (const v of vms) {
          const g = `/sys/fs/cgroup/cpu/vmesh/${v.host}/${v.name}`;
          assert.equal((await Deno.readTextFile(`${g}/cpu.cfs_quota_us`)).trim(), "100000");
          assert.equal((await Deno.readTextFile(`${g}/cpu.shares`)).trim(), "1024");
          const pids = (await Deno.readTextFile(`${g}/cgroup.procs`)).trim().split("\n");
          assert.equal(pids.length, 1, `${v.name}: ${pids}`);
          const cmd = await Deno.readTextFile(`/proc/${pids[0]}/cmdline`);
          assert.match(cmd, new RegExp(`services/cpu/main\\.ts\0--vm\0${v.name}\0`));
        }
      } else console.error(`cpu quotas not checked: ${h1.ready}`);
      const logs = await waitFor("guest output", async () => {
        const { text } = await ctl.call("logs", { name: "a1" });
        return text.includes(IDLE_GUEST_LINE) ? text : undefined;
      });
      assert.match(logs, new RegExp(IDLE_GUEST_LINE));
    });

    await t.step(
      "a quota beyond every host is refused with the reason, nothing recorded",
      async () => {
        await assert.rejects(create("huge", 8192), (e: BusError) => {
          assert.equal(e.code, Status.FAILED_PRECONDITION);
          assert.match(e.message, /no host fits huge \(1 harts, 8192 MiB RAM, 0 MiB disk\)/);
          assert.match(e.message, /h1: 768 of 1024 MiB RAM unreserved, 8192 asked/);
          return true;
        });
        const { vms } = await ctl.call("list", {});
        assert.ok(!vms.some((v) => v.name === "huge"));
        // The REST API says the same with a 409.
        const postVm = (name: string, harts: number, ramMib: number) =>
          fetch(`${httpOf(ctlProc)}/api/vms`, {
            method: "POST",
            body: JSON.stringify({
              name,
              quota: { harts, ramMib, diskMib: 0 },
              boot: { bios: "none", kernel },
            }),
          });
        const res = await postVm("huge2", 1, 4096);
        assert.equal(res.status, 409);
        assert.match((await res.json()).error, /no host fits huge2/);
        // A quota that is not a whole number is bad input, 400, naming the flag.
        const half = await postVm("half", 1.5, 64);
        assert.equal(half.status, 400);
        assert.match((await half.json()).error, /whole number of harts >= 1 \(--harts\)/);
      },
    );

    await t.step("anti-affinity: two VMs with app=web land apart, a third is refused", async () => {
      const web = { labels: { app: "web" }, antiAffinity: ["app"] };
      const w1 = await create("web1", 64, web);
      const w2 = await create("web2", 64, web);
      assert.notEqual(w1.host, w2.host);
      await assert.rejects(create("web3", 64, web), /anti-affinity: VM web[12] there has app=web/);
      const sel = await ctl.call("list", { labels: { app: "web" } });
      assert.deepEqual(sel.vms.map((v) => v.name), ["web1", "web2"]);
    });

    await t.step("--cpu-shares reaches the VM's cgroup", async () => {
      const v = await create("shares", 64, {
        quota: { harts: 1, ramMib: 64, diskMib: 0, cpuShares: 256 },
      });
      assert.equal(v.quota.cpuShares, 256);
      if (/cpu-quota=\/sys\/fs\/cgroup\/cpu\//.test(h1.ready)) {
        const g = `/sys/fs/cgroup/cpu/vmesh/${v.host}/shares`;
        assert.equal((await Deno.readTextFile(`${g}/cpu.shares`)).trim(), "256");
      }
      await ctl.call("rm", { name: "shares", force: true });
      // Its cgroup goes with it.
      await assert.rejects(Deno.stat(`/sys/fs/cgroup/cpu/vmesh/${v.host}/shares`));
    });

    await t.step("a VM of two harts: --smp 2, capped at two cores", async () => {
      const harts = async (host: string) =>
        (await ctl.call("hosts", {})).hosts.find((h) => h.host === host)!.reserved.harts;
      const before = { h1: await harts("h1"), h2: await harts("h2") };
      const v = await create("smp2", 64, { quota: { harts: 2, ramMib: 64, diskMib: 0 } });
      assert.equal(v.state, control.VmState.RUNNING);
      assert.equal(await harts(v.host), before[v.host as "h1" | "h2"] + 2);
      if (/cpu-quota=\/sys\/fs\/cgroup\/cpu\//.test(h1.ready)) {
        const g = `/sys/fs/cgroup/cpu/vmesh/${v.host}/smp2`;
        assert.equal((await Deno.readTextFile(`${g}/cpu.cfs_quota_us`)).trim(), "200000");
        assert.equal((await Deno.readTextFile(`${g}/cpu.shares`)).trim(), "2048");
        const pid = (await Deno.readTextFile(`${g}/cgroup.procs`)).trim();
        const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
        assert.equal(argv[argv.indexOf("--smp") + 1], "2", argv.join(" "));
      }
      await ctl.call("rm", { name: "smp2", force: true });
    });

    await t.step("a data disk larger than the disk quota is refused by the agent", async () => {
      await Deno.writeFile(`${dir}/d8.img`, new Uint8Array(8 << 20));
      await assert.rejects(
        create("disky", 64, {
          quota: { harts: 1, ramMib: 64, diskMib: 4 },
          boot: { bios: "none", kernel, disk: `${dir}/d8.img` },
        }),
        /is 8 MiB, more than the VM's disk quota of 4 MiB: raise --disk-size to 8M/,
      );
      const rec = await ctl.call("inspect", { name: "disky" });
      assert.equal(rec.state, control.VmState.FAILED);
      await ctl.call("rm", { name: "disky" });
    });

    await t.step("stop, start and a taken name", async () => {
      const s = await ctl.call("stop", { name: "a1" });
      assert.equal(s.state, control.VmState.STOPPED);
      const r = await ctl.call("start", { name: "a1" });
      assert.equal(r.state, control.VmState.RUNNING);
      await assert.rejects(create("a1", 64), /VM a1 already exists \(running on h[12]\)/);
      await assert.rejects(ctl.call("rm", { name: "a1" }), /stop a1 first, or \.\/vmesh rm -f a1/);
    });

    await t.step("a VM a host runs without a record is stopped and removed there", async () => {
      const agentH2 = bus.client({ prefix: control.hostPrefix("h2") }, control.agentOps, {
        timeoutMs: 60_000,
        retries: 0,
      });
      // Started behind the control service's back, as an agent start that outlived its timeout.
      const o = await agentH2.call("start", {
        name: "orphan",
        quota: { harts: 1, ramMib: 64, diskMib: 0 },
        labels: {},
        boot: { bios: "none", kernel },
      });
      assert.ok(o.running);
      const events = await waitFor("the orphan stopped", async () => {
        const r = await fetch(`${httpOf(ctlProc)}/api/vms/orphan/events`);
        const ev = await r.json() as { type: string; detail?: string }[];
        return ev.some((e) => e.type === "orphan-stopped") ? ev : undefined;
      });
      assert.match(events.at(-1)!.detail!, /it ran on h2 without a record/);
      await waitFor("h2 no longer runs it", async () => {
        const l = await new Promise<control.HostLoad>((resolve) => {
          const sub = bus.subscribe(control.hostLoad, control.hostLoadSubject("h2"), (x) => {
            sub.unsubscribe();
            resolve(x);
          });
        });
        return l.vms.some((v) => v.name === "orphan") ? undefined : true;
      });
      assert.ok(!(await ctl.call("list", {})).vms.some((v) => v.name === "orphan"));
    });

    await t.step("a start a dead control service left half done is failed", async () => {
      // As a control service killed between claiming a name and starting it leaves it.
      const kv = await new Kvm(bus.nc).open("vmesh-control");
      const stale = {
        name: "stale",
        state: "STARTING",
        host: "",
        quota: { harts: 1, ramMib: 64, diskMib: 0 },
        labels: {},
        antiAffinity: [],
        boot: { bios: "none", kernel },
        consoleUrl: "",
        exitCode: 0,
        reason: "",
        createdMs: Date.now() - 3_600_000,
        updatedMs: Date.now() - 3_600_000,
      };
      await kv.create("vm.stale", JSON.stringify(stale));
      const failed = await waitFor("the stale start failed", async () => {
        const v = await ctl.call("inspect", { name: "stale" });
        return v.state === control.VmState.FAILED ? v : undefined;
      });
      assert.match(failed.reason, /its start did not finish within \d+ ms/);
      await ctl.call("rm", { name: "stale" });
    });

    await t.step("a restarted control service has every record", async () => {
      const before = (await ctl.call("list", {})).vms.map((v) => [v.name, v.state, v.host]);
      await ctlProc.stop();
      procs.splice(procs.indexOf(ctlProc), 1);
      ctlProc = await started(startControl(url, LOST_MS));
      assert.match(ctlProc.ready, /ready: 6 VM record\(s\)/);
      const after = (await ctl.call("list", {})).vms.map((v) => [v.name, v.state, v.host]);
      assert.deepEqual(after, before);
    });

    await t.step("the CLI lists as JSON and as a table", async () => {
      const j = await vmeshCli(url, "ls", "--output", "json");
      assert.equal(j.code, 0, j.err);
      const vms = JSON.parse(j.out) as { name: string; state: string }[];
      assert.deepEqual(vms.map((v) => v.name), ["a1", "a2", "a3", "a4", "web1", "web2"]);
      assert.ok(vms.every((v) => v.state === "running"));
      // A host is listed from its announcements: under load one can be a beat late, so ask again
      // for a few seconds before judging.
      let h = await vmeshCli(url, "hosts");
      for (let i = 0; i < 20 && h.code === 0 && !/\nh1\s+up\s+8\s/.test(h.out); i++) {
        await new Promise((r) => setTimeout(r, 250));
        h = await vmeshCli(url, "hosts");
      }
      assert.equal(h.code, 0, h.err);
      assert.match(h.out, /^HOST\s+STATE\s+CORES/);
      assert.match(h.out, /\nh1\s+up\s+8\s/);
      const ev = await vmeshCli(url, "events", "a1");
      assert.equal(ev.code, 0, ev.err);
      const types = ev.out.trim().split("\n").slice(1).map((l) => l.split(/\s+/)[2]);
      assert.deepEqual(types, ["created", "placed", "running", "stopped", "placed", "running"]);
      const big = await vmeshCli(url, "create", "--kernel", kernel, "-m", "2G", "big");
      assert.equal(big.code, 1);
      assert.match(big.err, /vmesh create: no host fits big/);
    });

    await t.step(
      "an agent killed with SIGKILL: its host and its VMs are reported lost",
      async () => {
        const onH1 = (await ctl.call("list", {})).vms.filter((v) => v.host === "h1").map((v) =>
          v.name
        );
        assert.ok(onH1.length >= 2);
        // The pids of h1's VM processes, from its own announcement.
        const h1Pids = await new Promise<number[]>((resolve) => {
          const sub = bus.subscribe(control.hostLoad, control.hostLoadSubject("h1"), (l) => {
            sub.unsubscribe();
            resolve(l.vms.flatMap((v) => v.pids));
          });
        });
        assert.ok(h1Pids.length >= 4, `${h1Pids}`);
        await h1.stop("SIGKILL");
        const lost = await waitFor("VMs of h1 lost", async () => {
          const { vms } = await ctl.call("list", {});
          const mine = vms.filter((v) => onH1.includes(v.name));
          return mine.every((v) => v.state === control.VmState.LOST) ? mine : undefined;
        });
        for (const v of lost) assert.match(v.reason, /host h1 stopped announcing/);
        // Its VM processes held a lifeline to it: they are gone too.
        await waitFor(
          "h1's VM processes gone",
          () => Promise.resolve(h1Pids.every(processGone) || undefined),
        );
        const { vms } = await ctl.call("list", {});
        for (const v of vms.filter((v) => v.host === "h2")) {
          assert.equal(v.state, control.VmState.RUNNING, v.name);
        }
        const { hosts } = await ctl.call("hosts", {});
        assert.deepEqual(hosts.map((h) => [h.host, h.up]), [["h1", false], ["h2", true]]);
        // New VMs go to the host that is left.
        const n = await create("after", 64);
        assert.equal(n.host, "h2");
        assert.equal(await hostOf("after"), "h2");
      },
    );
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await removeEmptyCgroups("h1"); // left by the agent killed with SIGKILL
  }
});

/** Removes host `host`'s empty VM cpu cgroups and its own (rmdir refuses busy ones). */
async function removeEmptyCgroups(host: string): Promise<void> {
  const base = `/sys/fs/cgroup/cpu/vmesh/${host}`;
  try {
    for await (const e of Deno.readDir(base)) {
      if (e.isDirectory) await Deno.remove(`${base}/${e.name}`).catch(() => {});
    }
  } catch { /* none there */ }
  await Deno.remove(base).catch(() => {});
  await Deno.remove("/sys/fs/cgroup/cpu/vmesh").catch(() => {});
}

Deno.test({
  name: "control plane: two control services neither double-place nor overcommit a host",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-test2-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const kernel = await buildIdleGuest(dir);
    const url = tb.nats.url;
    for (const h of ["h1", "h2"]) procs.push(await startAgent(h, dir, url));
    procs.push(await startControl(url, LOST_MS), await startControl(url, LOST_MS));
    // Both serve vmesh.control.* in one queue group: NATS hands each request to either.
    const ctl = controlClient(tb.bus);
    const infos = await waitFor("both control services see both hosts", async () => {
      const seen = await Promise.all([0, 1, 2, 3].map(() => ctl.call("hosts", {})));
      return seen.every((s) => s.hosts.filter((h) => h.up).length === 2) ? seen : undefined;
    });
    assert.equal(infos.length, 4);
    const spec = (name: string, ramMib: number) => bareVm(name, ramMib, kernel);
    // The same name through both at once: one claims it.
    const dup = await Promise.allSettled([
      ctl.call("create", spec("dup", 64)),
      ctl.call("create", spec("dup", 64)),
    ]);
    assert.equal(dup.filter((d) => d.status === "fulfilled").length, 1);
    const lost = dup.find((d) => d.status === "rejected") as PromiseRejectedResult;
    assert.match(lost.reason.message, /VM dup already exists/);
    await ctl.call("rm", { name: "dup", force: true });
    // Six VMs of 512 MiB where two hosts of 1024 MiB hold four: exactly four are placed.
    const names = ["p1", "p2", "p3", "p4", "p5", "p6"];
    const got = await Promise.allSettled(names.map((n) => ctl.call("create", spec(n, 512))));
    const ok = got.filter((g) => g.status === "fulfilled") as PromiseFulfilledResult<
      control.VmInfo
    >[];
    assert.equal(
      ok.length,
      4,
      JSON.stringify(got.map((g) => g.status === "rejected" ? g.reason.message : g.value.host)),
    );
    for (const g of got) {
      if (g.status === "rejected") assert.match(g.reason.message, /no host fits p[1-6]/);
    }
    const { hosts } = await ctl.call("hosts", {});
    assert.deepEqual(hosts.map((h) => [h.host, h.reserved.ramMib]), [["h1", 1024], ["h2", 1024]]);
    const per = new Map<string, number>();
    for (const o of ok) per.set(o.value.host, (per.get(o.value.host) ?? 0) + 1);
    assert.deepEqual([...per.values()], [2, 2]);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
