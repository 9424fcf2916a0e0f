/**
 * Clones of a VM on a switch are told apart: `./vmesh boot --nic switch=lan` on a real
 * nats-server, the guest takes a DHCP lease and prints its MAC and address every second;
 * `./vmesh snapshot`, the source is stopped (its switch with it), `./vmesh clone --count 2`
 * starts the switch again and two clones. Each clone's NIC changes to its own MAC with a link
 * bounce; the guest's /init probes the NIC again and takes a new lease, so each guest reports
 * its own MAC (`/sys/class/net/eth0/address`) and address, and each pings the other's address.
 */
import assert from "node:assert/strict";
import { connect, consoleMsgs, startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages } from "../guest/mod.ts";
import { stableMac } from "../services/net/mod.ts";
import { run, until, vmesh } from "./snapshot_test_support.ts";

/** Lease, then a shell running each line typed on the console, and an "id MAC inet A" line a second. */
const GUEST = "udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null; " +
  '(while read l; do eval "$l"; done </dev/ttyS0) & ' +
  "while true; do " +
  'echo "id $(cat /sys/class/net/eth0/address) $(ip -4 addr show eth0 | grep -o "inet [0-9.]*")"; ' +
  "sleep 1; done";

/** The last "id MAC inet A" line of `text` as [MAC, A]. */
function lastId(text: string): [string, string] | undefined {
  const m = [...text.matchAll(/id ([0-9a-f:]{17}) inet ([\d.]+)\r?\n/g)].at(-1);
  return m ? [m[1], m[2]] : undefined;
}

Deno.test({
  name:
    "clone: two clones of a guest on a switch get their own MACs and leases and reach each other",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-clone-net-" });
  const nats = await startEmbeddedNats();
  const env = { NATS_URL: nats.url };
  const store = ["--store", `dir:${dir}/store`];
  const procs: Deno.ChildProcess[] = [];
  const text = (f: string) => Deno.readTextFile(f).catch(() => "");
  const bus = await connect({ url: nats.url, name: "test-clone-net", log: () => {} });
  try {
    const boot = vmesh(
      [
        "boot",
        "--name",
        "netA",
        "--nic",
        "switch=lan",
        "--console",
        `log:${dir}/a.log`,
        "--",
        GUEST,
      ],
      env,
    );
    procs.push(boot);
    await until("the booted guest's address", async () => !!lastId(await text(`${dir}/a.log`)));
    const [macA, addrA] = lastId(await text(`${dir}/a.log`))!;
    const snap = await run(
      ["snapshot", "netA", "--name", "cn-1", "--disk-dir", `${dir}/points`, ...store],
      env,
    );
    assert.equal(snap.code, 0, snap.stderr);
    boot.kill("SIGTERM");
    await boot.output();

    const clone = vmesh(
      [
        "clone",
        "cn-1",
        "--count",
        "2",
        "--name",
        "cl",
        "--local",
        "--run-dir",
        `${dir}/clones`,
        ...store,
      ],
      env,
    );
    procs.push(clone);
    const t0 = performance.now();
    const vms = ["cl1", "cl2"];
    const log = (vm: string) => text(`${dir}/clones/${vm}.log`);
    const ids: Record<string, [string, string]> = {};
    for (const vm of vms) {
      const mac = stableMac(vm, 0);
      await until(`${vm} reporting MAC ${mac} with an address`, async () => {
        const id = lastId(await log(vm));
        return id?.[0] === mac;
      });
      ids[vm] = lastId(await log(vm))!;
      console.log(
        `${vm}: its own MAC and lease ${Math.round(performance.now() - t0)} ms after clone`,
      );
      const l = await log(vm);
      assert.doesNotMatch(l, /Linux version/, `${vm} restored, not booted`);
      assert.match(l, new RegExp(`vmesh-guest: eth0 re-probed after a link bounce, MAC ${mac}`));
    }
    console.log(
      `source ${macA} ${addrA}; ${vms.map((v) => `${v} ${ids[v].join(" ")}`).join("; ")}`,
    );
    assert.notEqual(ids.cl1[0], ids.cl2[0]);
    assert.notEqual(ids.cl1[1], ids.cl2[1], "each clone has its own lease");
    assert.notEqual(ids.cl1[0], macA);

    // Each pings the other's address over the switch (typed on its console).
    for (const [from, to] of [["cl1", "cl2"], ["cl2", "cl1"]]) {
      const addr = ids[to][1];
      const want = `${from} reached ${addr}`;
      const line = `ping -c 2 -W 2 ${addr} >/dev/null && echo "${from} reached ${addr}"\n`;
      await until(want, async () => {
        if ((await log(from)).includes(want)) return true;
        await bus.request({ vm: from, device: "console" }, consoleMsgs.ops.send, {
          seq: 0,
          data: new TextEncoder().encode(line),
        });
        await new Promise((r) => setTimeout(r, 5000));
        return (await log(from)).includes(want);
      }, 120_000);
    }
    clone.kill("SIGTERM");
    const r = await clone.output();
    assert.ok([0, 130, 143].includes(r.code), new TextDecoder().decode(r.stderr));
  } finally {
    await bus.close();
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.output().catch(() => {});
    }
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
