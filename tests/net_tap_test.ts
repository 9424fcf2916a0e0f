/**
 * The net service with a host TAP uplink, against real Linux networking: the TAP is moved
 * into a network namespace the test creates; busybox udhcpc there gets a lease from the
 * switch's DHCP server, busybox ping reaches the gateway and a VM-like port on the bus,
 * and garbage on the switch subjects is counted while the switch keeps serving.
 * Needs root, /dev/net/tun and busybox (skipped otherwise). Nothing leaves the machine:
 * 10.77.0.0/24 exists only inside the namespace and the switch.
 */
import assert from "node:assert/strict";
import { net, netPortSubject } from "@vmesh/bus";
import { formatMac, parseMac } from "../services/net/mac.ts";
import {
  buildArp,
  buildEth,
  buildIpv4,
  ETH_ARP,
  ETH_IPV4,
  icmpEchoReply,
  IP_ICMP,
  parseArp,
  parseEth,
  parseIp,
  parseIpv4,
} from "../services/net/packet.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import { skippableName } from "../cli/test_summary.ts";

function has(cmd: string[]): boolean {
  try {
    return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const canRun = Deno.build.os === "linux" && Deno.uid() === 0 &&
  (() => {
    try {
      return Deno.statSync("/dev/net/tun") !== null;
    } catch {
      return false;
    }
  })() && has(["busybox", "true"]) && has(["ip", "-V"]);

/** Why the TAP tests are skipped here, or "" when they run. */
const tapSkip = canRun ? "" : "needs root, /dev/net/tun, busybox and ip";

/** Runs a command; resolves with its exit code and output. */
async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function must(cmd: string[]): Promise<string> {
  const r = await run(cmd);
  assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.out}`);
  return r.out;
}

const SUBNET = "10.77.0";
const ip = (s: string) => parseIp(s)!;

Deno.test({
  name: skippableName(
    "net tap uplink: udhcpc lease, ping to the gateway and to a bus port, garbage counted",
    tapSkip,
  ),
  ignore: !canRun,
  async fn(t) {
    const id = Deno.pid % 100000;
    const tap = `vmt${id}`;
    const ns = `vmesh-nettest-${id}`;
    const dir = await Deno.makeTempDir();
    const tb = await startTestBus();
    let svc: ServiceProcess | undefined;
    const inNs = (...cmd: string[]) => ["ip", "netns", "exec", ns, ...cmd];
    const switchStats = async () => {
      const msg = await tb.bus.nc.request("$SRV.STATS.vmesh-net", new Uint8Array(), {
        timeout: 10_000,
      });
      return msg.json<{ endpoints: { data: unknown }[] }>().endpoints[0].data as {
        drops: Record<string, number>;
        rxFrames: number;
        gateway: { icmpReplies: number; dhcpReplies: number; arpReplies: number };
        uplinks: { name: string; read: number; written: number; writeErrors: number }[];
        portStats: { id: string; rxFrames: number; txFrames: number }[];
      };
    };
    try {
      svc = await startService("net", [
        "--switch",
        "sw0",
        "--subnet",
        `${SUBNET}.0/24`,
        "--gateway",
        `${SUBNET}.1`,
        "--lease",
        "3600",
        "--uplink",
        `tap:${tap}@sw0`,
      ], tb.nats.url);
      assert.ok(svc.log.some((l) => l.includes(`uplink tap ${tap} attached`)), svc.log.join("\n"));
      await t.step(
        "a frame for the TAP while its link is down is one counted sink error",
        async () => {
          const client = tb.bus.client({ prefix: "vmesh.net.sw0" }, net.ops);
          await client.call("join", { switch: "sw0", mac: "52:54:00:77:00:0e", portId: "early" });
          const f = new Uint8Array(60).fill(0xff, 0, 6);
          f.set([0x52, 0x54, 0, 0x77, 0, 0x0e, 0x88, 0xb5], 6);
          tb.bus.publish(net.frame, netPortSubject("sw0", "early", "tx"), { data: f });
          await tb.bus.flush();
          await client.call("leave", { switch: "sw0", portId: "early" }); // after the frame: same order
          const data = await switchStats();
          assert.equal(data.drops.sink_error, 1);
          assert.equal(data.uplinks[0].writeErrors, 1);
          assert.ok(
            svc!.log.some((l) => l.includes(`tap ${tap}: write failed: EIO`)),
            svc!.log.join("\n"),
          );
        },
      );
      await must(["ip", "netns", "add", ns]);
      await must(["ip", "link", "set", tap, "netns", ns]);
      await must(inNs("ip", "link", "set", tap, "up"));
      await must(inNs("ip", "link", "set", "lo", "up"));

      await t.step("udhcpc in the namespace gets a lease from the switch", async () => {
        const script = `${dir}/udhcpc.sh`;
        const env = `${dir}/lease.env`;
        await Deno.writeTextFile(
          script,
          `#!/bin/sh\n[ "$1" = bound ] || exit 0\n` +
            `echo "ip=$ip mask=$mask router=$router dns=$dns lease=$lease serverid=$serverid" > ${env}\n` +
            `ip addr add $ip/$mask dev $interface\n`,
        );
        await Deno.chmod(script, 0o755);
        await must(inNs("busybox", "udhcpc", "-i", tap, "-q", "-n", "-t", "5", "-s", script));
        const lease = await Deno.readTextFile(env);
        assert.match(
          lease,
          new RegExp(
            `^ip=${SUBNET}\\.\\d+ mask=24 router=${SUBNET}\\.1 dns=${SUBNET}\\.1 lease=3600 serverid=${SUBNET}\\.1$`,
            "m",
          ),
        );
        const addr = /ip=(\S+)/.exec(lease)![1];
        assert.ok(![`${SUBNET}.0`, `${SUBNET}.1`, `${SUBNET}.255`].includes(addr));
        assert.match(
          await must(inNs("ip", "-4", "addr", "show", tap)),
          new RegExp(`inet ${addr}/24`),
        );
      });

      await t.step(
        "a running udhcpc renews its lease by unicast and keeps the address",
        async () => {
          // Foreground client: first lease, then SIGUSR1 makes it renew (unicast to the server).
          const child = new Deno.Command("ip", {
            args: [
              "netns",
              "exec",
              ns,
              "busybox",
              "udhcpc",
              "-f",
              "-i",
              tap,
              "-t",
              "5",
              "-s",
              "/bin/true",
            ],
            stdout: "null",
            stderr: "piped",
          }).spawn();
          const lines: string[] = [];
          const waiters: (() => void)[] = [];
          const reading = (async () => {
            let rest = "";
            for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
              rest += chunk;
              const parts = rest.split("\n");
              rest = parts.pop()!;
              lines.push(...parts);
              for (const w of waiters.splice(0)) w();
            }
          })();
          const obtained = () => lines.filter((l) => / obtained from /.test(l));
          // Bounded wait so a switch that never answers fails the test instead of hanging it.
          const until = async (ok: () => boolean, what: string) => {
            const deadline = Date.now() + 30_000;
            while (!ok()) {
              assert.ok(Date.now() < deadline, `${what}:\n${lines.join("\n")}`);
              await new Promise<void>((r) => {
                waiters.push(r);
                setTimeout(r, 500);
              });
            }
          };
          try {
            await until(() => obtained().length >= 1, "no lease");
            child.kill("SIGUSR1");
            await until(() => obtained().length >= 2, "no renewal");
            assert.ok(lines.some((l) => /sending renew to server/.test(l)), lines.join("\n"));
            const [first, second] = obtained().map((l) => /lease of (\S+)/.exec(l)![1]);
            assert.equal(second, first);
            assert.match(first, new RegExp(`^${SUBNET.replaceAll(".", "\\.")}\\.\\d+$`));
          } finally {
            child.kill("SIGTERM");
            await child.status;
            await reading;
          }
        },
      );

      await t.step("ping from the namespace reaches the switch's gateway", async () => {
        const out = await must(inNs("busybox", "ping", "-c", "3", "-W", "5", `${SUBNET}.1`));
        assert.match(out, /3 packets transmitted, 3 packets received/);
      });

      await t.step("ping from the namespace reaches a VM port on the bus", async () => {
        // A minimal VM: answers ARP and ICMP echo for 10.77.0.50 on port vmA.
        const mac = parseMac("52:54:00:77:00:0a");
        const me = ip(`${SUBNET}.50`);
        let heard = 0;
        const tx = (data: Uint8Array) =>
          tb.bus.publish(net.frame, netPortSubject("sw0", "vmA", "tx"), { data });
        const sub = tb.bus.subscribe(net.frame, netPortSubject("sw0", "vmA", "rx"), (f) => {
          heard++;
          const eth = parseEth(f.data);
          if (!eth) return;
          if (eth.type === ETH_ARP) {
            const a = parseArp(eth.payload);
            if (a?.op !== 1 || a.targetIp !== me) return;
            tx(buildEth(
              a.senderMac,
              mac,
              ETH_ARP,
              buildArp({
                op: 2,
                senderMac: mac,
                senderIp: me,
                targetMac: a.senderMac,
                targetIp: a.senderIp,
              }),
            ));
          } else if (eth.type === ETH_IPV4) {
            const v4 = parseIpv4(eth.payload);
            if (v4?.protocol !== IP_ICMP || v4.dst !== me) return;
            const reply = icmpEchoReply(v4.payload);
            if (reply) {
              tx(buildEth(eth.src.slice(), mac, ETH_IPV4, buildIpv4(IP_ICMP, me, v4.src, reply)));
            }
          }
        });
        try {
          await tb.bus.flush();
          const client = tb.bus.client({ prefix: "vmesh.net.sw0" }, net.ops);
          const joined = await client.call("join", {
            switch: "sw0",
            mac: formatMac(mac),
            portId: "vmA",
          });
          assert.equal(joined.mtu, 1500);
          assert.equal(joined.agingMs, 300_000);
          const out = await must(inNs("busybox", "ping", "-c", "3", "-W", "5", `${SUBNET}.50`));
          assert.match(out, /3 packets transmitted, 3 packets received/);
          assert.ok(heard >= 4, `vmA heard ${heard} frames`); // ARP + 3 echo requests
        } finally {
          sub.unsubscribe();
        }
      });

      await t.step(
        "garbage on the switch subjects is counted; the switch keeps serving",
        async () => {
          const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
          tb.bus.nc.publish("vmesh.net.sw0.port.vmA.tx", garbage);
          tb.bus.publish(net.frame, netPortSubject("sw0", "vmA", "tx"), {
            data: new Uint8Array(5),
          });
          tb.bus.publish(net.frame, netPortSubject("sw0", "nobody", "tx"), {
            data: new Uint8Array(60),
          });
          tb.bus.publish(net.frame, netPortSubject("sw0", "vmA", "tx"), {
            data: new Uint8Array(3000),
          });
          await tb.bus.flush();
          // Frames on one subject are handled in order: once a ping works, the garbage is counted.
          const out = await must(inNs("busybox", "ping", "-c", "1", "-W", "5", `${SUBNET}.1`));
          assert.match(out, /1 packets received/);
          const data = await switchStats();
          assert.equal(data.drops.sink_error, 1); // only the frame sent while the link was down
          assert.deepEqual(
            [data.drops.malformed, data.drops.runt, data.drops.unjoined, data.drops.oversize],
            [1, 1, 1, 1],
          );
          assert.equal(data.gateway.icmpReplies, 4);
          // OFFER, ACK for the first client; OFFER, ACK, renewal ACK for the second; more when a
          // loaded machine makes a client retransmit (each retransmission is answered).
          assert.ok(data.gateway.dhcpReplies >= 5, `dhcp replies ${data.gateway.dhcpReplies}`);
          assert.equal(data.uplinks[0].name, tap);
          assert.ok(data.uplinks[0].read >= 10 && data.uplinks[0].written >= 10);
          const ports = Object.fromEntries(data.portStats.map((p) => [p.id, p]));
          assert.deepEqual(Object.keys(ports).sort(), ["tap:" + tap, "vmA", "~gateway"]);
          assert.ok(ports.vmA.rxFrames >= 4 && ports.vmA.txFrames >= 4);
          assert.ok(svc!.log.some((l) => l.includes("undecodable message from port vmA")));
        },
      );

      await t.step("SIGTERM exits 0 and the TAP interface goes", async () => {
        assert.equal(await svc!.stop("SIGTERM"), 0, svc!.log.join("\n"));
        const r = await run(inNs("ip", "link", "show", tap));
        assert.notEqual(r.code, 0, r.out);
      });
    } finally {
      await svc?.stop("SIGKILL");
      await run(["ip", "netns", "del", ns]);
      await run(["ip", "link", "del", tap]);
      await tb.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skippableName(
    "net tap uplink: a TAP that cannot be opened is one error line; the switch still serves",
    tapSkip,
  ),
  ignore: !canRun,
  async fn() {
    const tb = await startTestBus();
    let svc: ServiceProcess | undefined;
    // A name the kernel refuses (an existing non-TAP interface: loopback).
    try {
      svc = await startService("net", ["--switch", "sw1", "--uplink", "tap:lo@sw1"], tb.nats.url);
      const lines = svc.log.filter((l) => l.includes("uplink not attached"));
      assert.equal(lines.length, 1, svc.log.join("\n"));
      assert.match(lines[0], /tap lo: an interface of that name exists and is not a TAP device/);
      const client = tb.bus.client({ prefix: "vmesh.net.sw1" }, net.ops);
      const r = await client.call("join", { switch: "sw1", mac: "52:54:00:00:00:01", portId: "a" });
      assert.equal(r.mtu, 1500);
      assert.equal(await svc.stop("SIGTERM"), 0);
    } finally {
      await svc?.stop("SIGKILL");
      await tb.close();
    }
  },
});

Deno.test({
  name: skippableName(
    "net tap uplink: deleting the interface detaches the uplink; the switch still serves",
    tapSkip,
  ),
  ignore: !canRun,
  async fn() {
    const tap = `vmg${Deno.pid % 100000}`;
    const tb = await startTestBus();
    let svc: ServiceProcess | undefined;
    try {
      svc = await startService(
        "net",
        ["--switch", "sw2", "--uplink", `tap:${tap}@sw2`],
        tb.nats.url,
      );
      await must(["ip", "link", "del", tap]);
      // Bounded wait for the service to notice (its poll wakes at least every 200 ms).
      for (let i = 0; i < 100 && !svc.log.some((l) => l.includes("interface is gone")); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        svc.log.some((l) => l === `tap ${tap}: the interface is gone; uplink detached`),
        svc.log.join("\n"),
      );
      const msg = await tb.bus.nc.request("$SRV.STATS.vmesh-net", new Uint8Array(), {
        timeout: 10_000,
      });
      const data = msg.json<{ endpoints: { data: { portStats: { id: string }[] } }[] }>()
        .endpoints[0].data;
      assert.deepEqual(data.portStats, []);
      const client = tb.bus.client({ prefix: "vmesh.net.sw2" }, net.ops);
      const r = await client.call("join", { switch: "sw2", mac: "52:54:00:00:00:01", portId: "a" });
      assert.equal(r.mtu, 1500);
      assert.equal(await svc.stop("SIGTERM"), 0);
    } finally {
      await svc?.stop("SIGKILL");
      await run(["ip", "link", "del", tap]);
      await tb.close();
    }
  },
});
