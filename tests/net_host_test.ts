/**
 * vmesh VMs and the host over the net service's TAP uplink. The TAP is moved into a network
 * namespace the test creates, with a static address in the switch's subnet (10.73.0.0/24 and
 * 10.74.0.0/24 exist only inside the namespace and the switch; nothing leaves the machine):
 * - the host pings a guest, and the guest fetches a file with busybox `wget` from busybox
 *   `httpd` in the namespace (SHA-256 equal);
 * - a VM killed mid-transfer: the other ports keep working and the dead VM's port is removed
 *   after the switch's aging time.
 * Needs root, /dev/net/tun, `ip` and busybox (skipped otherwise). Builds the guest images on
 * first use.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import {
  BootedVm,
  canRunTap,
  dhcpCmd,
  expectedAddresses,
  pingUntilUp,
  run,
  switchStats,
  tapNamespace,
} from "./net_vm_harness.ts";
import { skippableName } from "../cli/test_summary.ts";

/** Why the TAP tests are skipped here, or "" when they run. */
const tapSkip = canRunTap ? "" : "needs root, /dev/net/tun, busybox and ip";

const ID = Deno.pid % 100000;

Deno.test({
  name: skippableName(
    "net host: the host pings a guest over a TAP uplink; the guest wgets a file from it",
    tapSkip,
  ),
  ignore: !canRunTap,
  async fn() {
    const subnet = "10.74.0";
    const host = `${subnet}.10`;
    const mac = "52:54:00:74:00:0a";
    const guest = expectedAddresses(subnet, [mac]).get(mac)!;
    assert.notEqual(guest, host);
    const tap = `vmh${ID}`;
    const dir = await Deno.makeTempDir();
    const blob = new Uint8Array(4 << 20);
    for (let o = 0; o < blob.length; o += 65536) {
      crypto.getRandomValues(blob.subarray(o, o + 65536));
    }
    await Deno.writeFile(`${dir}/blob`, blob);
    const want = createHash("sha256").update(blob).digest("hex");
    const tb = await startTestBus();
    let svc: ServiceProcess | undefined;
    let ns: Awaited<ReturnType<typeof tapNamespace>> | undefined;
    let httpd: Deno.ChildProcess | undefined;
    let vm: BootedVm | undefined;
    try {
      svc = await startService("net", [
        "--switch",
        "hsw",
        "--subnet",
        `${subnet}.0/24`,
        "--gateway",
        `${subnet}.1`,
        "--uplink",
        `tap:${tap}@hsw`,
      ], tb.nats.url);
      assert.ok(svc.log.some((l) => l.includes(`uplink tap ${tap} attached`)), svc.log.join("\n"));
      ns = await tapNamespace(`vmesh-nethost-${ID}`, tap, `${host}/24`);
      httpd = new Deno.Command("ip", {
        args: ns.inNs("busybox", "httpd", "-f", "-p", `${host}:8080`, "-h", dir).slice(1),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      // The guest fetches the blob, then stays up until the test has pinged it (file "done").
      const cmd = `${dhcpCmd(mac)} && ping -c 3 -W 2 ${host} && ` +
        `wget -O /tmp/f http://${host}:8080/blob && sha256sum /tmp/f && ` +
        `{ n=0; until wget -q -O /dev/null http://${host}:8080/done; do n=$((n+1)); ` +
        `if [ $n -gt 600 ]; then exit 9; fi; sleep 1; done; }`;
      vm = new BootedVm("hostvm", tb.nats.url, cmd, ["hsw"]);
      const inNs = ns.inNs;
      await pingUntilUp(inNs, guest);
      const ping = await run(inNs("busybox", "ping", "-c", "3", "-W", "2", guest));
      assert.match(ping.out, /3 packets transmitted, 3 packets received/, ping.out);
      const up = await switchStats(tb.bus);
      assert.deepEqual(
        up.portStats.map((p) => p.id).sort(),
        ["hostvm-net0", `tap:${tap}`, "~gateway"],
      );
      await Deno.writeTextFile(`${dir}/done`, "done\n");
      const r = await vm.done;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`lease of ${guest.replaceAll(".", "\\.")} obtained`));
      assert.match(r.stdout, /3 packets transmitted, 3 packets received/, r.stdout);
      assert.match(r.stdout, new RegExp(`^${want} {2}/tmp/f$`, "m"), `want ${want}:\n${r.stdout}`);
      // The VM left the switch when it powered off.
      const s = await switchStats(tb.bus);
      assert.deepEqual(s.portStats.map((p) => p.id).sort(), [`tap:${tap}`, "~gateway"]);
      assert.equal(await svc.stop("SIGTERM"), 0);
    } finally {
      await vm?.stop("SIGTERM");
      try {
        httpd?.kill("SIGTERM");
      } catch { /* exited */ }
      await httpd?.status;
      await svc?.stop("SIGKILL");
      await ns?.close();
      await run(["ip", "link", "del", tap]);
      await tb.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skippableName(
    "net host: a VM killed mid-transfer; the other ports keep working, its port ages out",
    tapSkip,
  ),
  ignore: !canRunTap,
  async fn() {
    const subnet = "10.73.0";
    const host = `${subnet}.10`;
    const macs = ["52:54:00:73:00:0a", "52:54:00:73:00:0b"];
    const addrs = expectedAddresses(subnet, macs);
    const b = addrs.get(macs[1])!;
    const tap = `vmk${ID}`;
    const aging = 8; // seconds; the CPU re-joins every 2 s
    const tb = await startTestBus();
    let svc: ServiceProcess | undefined;
    let ns: Awaited<ReturnType<typeof tapNamespace>> | undefined;
    const vms: BootedVm[] = [];
    try {
      svc = await startService("net", [
        "--switch",
        "ksw",
        "--aging",
        String(aging),
        "--subnet",
        `${subnet}.0/24`,
        "--gateway",
        `${subnet}.1`,
        "--uplink",
        `tap:${tap}@ksw`,
      ], tb.nats.url);
      ns = await tapNamespace(`vmesh-netkill-${ID}`, tap, `${host}/24`);
      const inNs = ns.inNs;
      // A streams zeros to B until it is killed.
      const send = `${dhcpCmd(macs[0])} && { n=0; until nc ${b} 5000 </dev/zero >/dev/null; ` +
        `do n=$((n+1)); if [ $n -gt 300 ]; then exit 9; fi; sleep 1; done; }`;
      const recv = `${dhcpCmd(macs[1])} && nc -l -p 5000 </dev/null >/dev/null`;
      const vmA = new BootedVm("killa", tb.nats.url, send, ["ksw"]);
      vms.push(vmA);
      vms.push(new BootedVm("killb", tb.nats.url, recv, ["ksw"]));
      const cpuA = await vmA.cpuPid();
      // Mid-transfer: A has sent a few MiB through the switch (bounded wait).
      const sentByA = async () =>
        (await switchStats(tb.bus)).portStats.find((p) => p.id === "killa-net0")?.rxBytes ?? 0;
      const deadline = Date.now() + 600_000;
      while (await sentByA() < 4 << 20) {
        assert.ok(Date.now() < deadline, `A never sent 4 MiB:\n${vmA.lines.join("\n")}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      Deno.kill(cpuA, "SIGKILL");
      const ra = await vmA.done;
      assert.notEqual(ra.code, 0);
      // The other ports keep working: the host reaches the gateway and VM B.
      for (const target of [`${subnet}.1`, b]) {
        const r = await run(inNs("busybox", "ping", "-c", "3", "-W", "2", target));
        assert.match(r.out, /3 packets transmitted, 3 packets received/, `${target}: ${r.out}`);
      }
      // A's port is removed after the aging time; B's and the TAP's stay (bounded wait).
      for (
        let i = 0;
        i < 600 && !svc.log.some((l) => l.includes("port killa-net0 aged out"));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(svc.log.some((l) => l.includes("port killa-net0 aged out")), svc.log.join("\n"));
      const s = await switchStats(tb.bus);
      assert.deepEqual(
        s.portStats.map((p) => p.id).sort(),
        ["killb-net0", `tap:${tap}`, "~gateway"],
      );
      assert.equal(s.ports, 3);
      const again = await run(inNs("busybox", "ping", "-c", "3", "-W", "2", b));
      assert.match(again.out, /3 packets transmitted, 3 packets received/, again.out);
      assert.equal(await svc.stop("SIGTERM"), 0);
    } finally {
      await Promise.all(vms.map((v) => v.stop("SIGTERM")));
      await svc?.stop("SIGKILL");
      await ns?.close();
      await run(["ip", "link", "del", tap]);
      await tb.close();
    }
  },
});
