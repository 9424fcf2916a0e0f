/**
 * Live migration between hosts for real: each host is a network namespace with its own
 * nats-server, the two joined into one NATS cluster (routes). The switch, the console services
 * and a peer VM run on host h1; VM `mig` streams numbered lines over TCP (busybox nc) to the
 * peer, which checks every number arrives once and in order. `./vmesh migrate mig --to h2`
 * (the CLI, on h2's server) moves mig's CPU service to the CPU service waiting with
 * `--incoming` in h2; the device services stay on h1, the switch port is re-joined from h2, and
 * the TCP stream goes on with no number lost or repeated. Needs root and `ip netns`.
 */
import assert from "node:assert/strict";
import { connect } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { linuxCpuArgs } from "./guest_vm.ts";
import { denoRun as deno, NetnsHosts } from "./netns_harness.ts";
import { servicePath } from "./services_harness.ts";
import { dhcpCmd, expectedAddresses } from "./net_vm_harness.ts";
import { until } from "./snapshot_test_support.ts";

const TAG = `vm${Deno.pid % 10000}`;
const NET = `10.203.${Deno.pid % 250}`;
const PORT = 14222;
const ROUTE_PORT = 16222;
const SUBNET = "10.81.0";
const MACS = { mig: "52:54:00:81:00:0a", peer: "52:54:00:81:00:0b" };

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

Deno.test({
  name: "live migration across network namespaces: a TCP stream to a peer VM goes on",
  ignore: Deno.uid() !== 0,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-migrate-netns-" });
  const net = new NetnsHosts(TAG, NET);
  const caps: ConsoleCapture[] = [];
  let bus: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    await net.addBridge();
    const hosts = ["h1", "h2"];
    const ipOf = (h: string) => `${NET}.${10 + hosts.indexOf(h) + 1}`;
    const urlOf = (h: string) => `nats://${ipOf(h)}:${PORT}`;
    for (const h of hosts) {
      await net.addHost(h, ipOf(h));
      const others = hosts.filter((o) => o !== h).map((o) =>
        `"nats-route://${ipOf(o)}:${ROUTE_PORT}"`
      );
      await Deno.writeTextFile(
        `${dir}/${h}.conf`,
        `listen: "${ipOf(h)}:${PORT}"\nserver_name: ${h}\n` +
          `cluster { name: vmesh\n listen: "${ipOf(h)}:${ROUTE_PORT}"\n routes: [${others}] }\n`,
      );
      await net.spawn(h, ["nats-server", "-c", `${dir}/${h}.conf`], {}, /Server is ready/);
    }
    // The cluster is up once a message published on h1 reaches a subscriber on h2.
    bus = await connect({ url: urlOf("h1"), name: "vmesh-test", log: () => {} });
    const far = await connect({ url: urlOf("h2"), name: "vmesh-test-h2", log: () => {} });
    try {
      let seen = false;
      const sub = far.nc.subscribe("probe.route", {
        callback: () => {
          seen = true;
        },
      });
      await far.nc.flush();
      await until("the route between h1 and h2", () => {
        bus!.nc.publish("probe.route");
        return seen;
      }, 20_000);
      sub.unsubscribe();
    } finally {
      await far.close();
    }

    const addrs = expectedAddresses(SUBNET, [MACS.mig, MACS.peer]);
    const peerIp = addrs.get(MACS.peer)!;
    const h1 = { NATS_URL: urlOf("h1") };
    await net.spawn(
      "h1",
      deno(
        servicePath("net"),
        "--switch",
        "lan",
        "--subnet",
        `${SUBNET}.0/24`,
        "--gateway",
        `${SUBNET}.1`,
      ),
      h1,
      / ready: /,
    );
    for (const vm of ["mig", "peer"]) {
      await net.spawn(
        "h1",
        deno(servicePath("console"), "--vm", vm, "--backend", `log:${dir}/${vm}.log`),
        h1,
        / ready: /,
      );
    }
    const peerCon = new ConsoleCapture(bus, "peer");
    const migCon = new ConsoleCapture(bus, "mig");
    caps.push(peerCon, migCon);
    // The peer checks that each number is the one after the last, and says so every 10.
    const recv = `${dhcpCmd(MACS.peer)} && nc -l -p 5000 </dev/null | awk '{ if ($1 != n + 1) ` +
      `print "GAP after " n " got " $1; n = $1; if (n % 10 == 0) print "got " n; fflush() }'`;
    // mig sends a number every 20 ms, retrying until the peer listens.
    const send = `${dhcpCmd(MACS.mig)} && until { i=0; while true; do i=$((i+1)); echo $i; ` +
      `if [ $((i % 50)) = 0 ]; then echo "sent $i" >&2; fi; sleep 0.02; done; } | ` +
      `nc ${peerIp} 5000; do sleep 1; done`;
    const vmArgs = (vm: "mig" | "peer", cmd: string) => [
      ...linuxCpuArgs(images, vm, cmd),
      "--nic",
      `switch=lan,mac=${MACS[vm]}`,
    ];
    const cpu = servicePath("cpu");
    await net.spawn("h1", deno(cpu, ...vmArgs("peer", recv)), h1, / ready: /);
    const src = await net.spawn("h1", deno(cpu, ...vmArgs("mig", send)), h1, / ready: /);
    /** `./vmesh migrate mig --to h2`, run against h2's server. */
    const migrateCli = async () => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", CLI, "migrate", "mig", "--to", "h2"],
        env: { NATS_URL: urlOf("h2"), NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
    };
    const got = () => [...peerCon.text.matchAll(/got (\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;
    await until("the stream to reach the peer", () => got() >= 100, 180_000);

    // A target that refuses the last step: the source, already paused and detached from its
    // switch port, control subject and console, takes them back and the stream goes on.
    const refusing = await net.spawn(
      "h2",
      deno(cpu, ...vmArgs("mig", send), "--incoming", "--host", "h2"),
      { NATS_URL: urlOf("h2"), VMESH_MIGRATE_REFUSE_FINISH: "1" },
      /incoming ready: /,
    );
    const failed = await migrateCli();
    assert.equal(failed.code, 1, failed.out);
    assert.match(failed.err, /failed, the VM runs on here: .*finish refused/);
    assert.equal(await refusing.exited, 1, "the refusing target exits after the abort");
    const back = got();
    await until("the stream to go on at the source", () => got() >= back + 50, 60_000);

    const tgt = await net.spawn(
      "h2",
      deno(cpu, ...vmArgs("mig", send), "--incoming", "--host", "h2"),
      { NATS_URL: urlOf("h2") },
      /incoming ready: /,
    );
    const at = got();
    const { code, out, err } = await migrateCli();
    console.log(`./vmesh migrate mig --to h2 (namespaces, routed cluster): ${out.trim()}`);
    assert.equal(code, 0, `${out}\n${err}\n${src.log.join("\n")}\n${tgt.log.join("\n")}`);
    assert.match(out, /mig moved to h2: \d+ rounds/);
    assert.equal(await src.exited, 0, src.log.join("\n"));
    assert.ok(src.log.some((l) => /migrated to host h2/.test(l)));

    // The stream goes on from h2: more numbers, none missing or repeated.
    await until("the stream to go on after the migration", () => got() >= at + 150, 60_000);
    assert.ok(!/GAP/.test(peerCon.text), peerCon.text.slice(-2000));
    assert.ok(
      migCon.text.includes(`sent ${Math.ceil((at + 100) / 50) * 50}`),
      "mig's console goes on",
    );
    assert.ok(tgt.log.some((l) => /vmesh-cpu ready: .*migrated-in/.test(l)), tgt.log.join("\n"));
  } finally {
    for (const c of caps) c.close();
    await bus?.close().catch(() => {});
    await net.close("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
