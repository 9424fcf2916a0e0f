/**
 * Linux clones through the control plane: real nats-server with JetStream, memory service, two
 * host agents and the control service as processes, the ./vmesh guest Linux (OpenSBI, kernel,
 * busybox initramfs, data disk). A file written in the guest's RAM before the snapshot
 * (`vmesh.control.snapshot` with disk layers) is read by both clones (`vmesh.control.clone`),
 * placed on both hosts, whose disk points are rebuilt from the layers (the point file deleted).
 * Every service has its own login (roles of bus/credentials.ts; anonymous refused), so this also
 * shows the control and agent roles allow the snapshot, the layers and the clones.
 */
import assert from "node:assert/strict";
import { consoleMsgs, memory, MEMORY_PREFIX } from "@vmesh/bus";
import { ensureGuestImages, GUEST_SHELL_MARKER } from "../guest/mod.ts";
import { diskImageMib } from "../services/agent/disk_size.ts";
import {
  controlClient,
  permissionViolations,
  startAgent,
  startLoginBus,
} from "./control_harness.ts";
import { type ServiceProcess, startService, waitFor } from "./services_harness.ts";

Deno.test({
  name: "control: a Linux guest snapshotted with disk layers, two clones on two hosts carry on",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-clone-linux-" });
  const tb = await startLoginBus([
    { kind: "agent", host: "h1" },
    { kind: "agent", host: "h2" },
    { kind: "control" },
    { kind: "memory" },
  ]);
  const { creds } = tb;
  const procs: ServiceProcess[] = [];
  try {
    const g = await ensureGuestImages();
    const url = tb.nats.url;
    procs.push(
      await startService("memory", ["--store", `dir:${dir}/store`], url, {
        env: creds.env({ kind: "memory" }),
      }),
    );
    for (const host of ["h1", "h2"]) {
      procs.push(
        await startAgent(host, dir, url, { ramMib: 1024, env: creds.env({ kind: "agent", host }) }),
      );
    }
    procs.push(
      await startService("control", ["--http", "0", "--lost-timeout", "3000"], url, {
        env: creds.env({ kind: "control" }),
      }),
    );
    const ctl = controlClient(tb.bus);
    await waitFor("2 hosts up", async () => {
      const { hosts } = await ctl.call("hosts", {});
      return hosts.filter((h) => h.up).length === 2 || undefined;
    });
    await ctl.call("create", {
      name: "linux",
      quota: { harts: 1, ramMib: 256, diskMib: await diskImageMib(g.disk) },
      boot: {
        bios: g.firmware,
        kernel: g.kernel,
        initrd: g.initramfs,
        append: "console=ttyS0",
        disk: g.disk,
      },
    });
    const logs = async (name: string) => (await ctl.call("logs", { name })).text;
    /** Types `line` into VM `name` until its console shows `want`. */
    const answers = (name: string, line: string, want: string) => {
      const keys = tb.bus.client({ vm: name, device: "console" }, consoleMsgs.ops, {
        timeoutMs: 5000,
      });
      return waitFor(`${name} shows ${want}`, async () => {
        if ((await logs(name)).includes(want)) return true;
        await keys.call("send", { seq: 0, data: new TextEncoder().encode(`${line}\n`) });
        await new Promise((r) => setTimeout(r, 1000));
        return undefined;
      }, 120_000);
    };
    await waitFor(
      "linux at its shell",
      async () => (await logs("linux")).includes(GUEST_SHELL_MARKER) || undefined,
      180_000,
    );
    await answers("linux", "mkdir -p /tmp; echo kept-$((6*7)) > /tmp/f; echo w-$((2*3))", "w-6");

    const info = await ctl.call("snapshot", { name: "linux", snapshot: "ls1", diskLayers: true });
    assert.deepEqual(info.layerDisks, ["disk0"]);
    const { manifest } = await tb.bus.request({ prefix: MEMORY_PREFIX }, memory.ops.get_manifest, {
      name: "ls1",
    });
    const point = manifest!.disks![0];
    // The point is on no host now (the base image is the shared guest cache: it stays).
    await Deno.remove(point.overlay);

    const { vms } = await ctl.call("clone", { snapshot: "ls1", count: 2, prefix: "lc" });
    assert.deepEqual(vms.map((v) => v.name), ["lc1", "lc2"]);
    const host = (await ctl.call("inspect", { name: "linux" })).host;
    assert.equal(new Set([host, ...vms.map((v) => v.host)]).size, 2, "on both hosts");
    await Promise.all(vms.map(async (v) => {
      await answers(v.name, "cat /tmp/f", "kept-42");
      assert.doesNotMatch(await logs(v.name), /OpenSBI/, `${v.name} restored, not booted`);
      const rebuilt = `${dir}/${v.host}/layers/ls1.disk0.point.${point.backend}`;
      assert.equal((await Deno.stat(rebuilt)).size, point.pointLayer!.size, rebuilt);
    }));
    // No login was refused anything (a connection logs each permission violation).
    assert.deepEqual(permissionViolations(procs), []);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
