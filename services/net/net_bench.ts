/**
 * Network benchmark (`deno task bench`), guest level:
 * - VM ↔ VM over a vmesh switch: ping RTT (min/avg/max of 20) and TCP throughput (busybox nc
 *   of N MiB, timed at the receiver), against two `qemu-system-riscv64` guests joined by
 *   `-netdev socket,udp=` (QEMU's own VM-to-VM link, no switch) running the same commands;
 * - guest ↔ host over a TAP interface in a network namespace, vmesh (the net service's TAP
 *   uplink) against `qemu-system-riscv64 -netdev tap` booting the same kernel and initramfs:
 *   host → guest (busybox wget of N MiB from busybox httpd) and guest → host (nc of N MiB),
 *   with the vmesh/QEMU ratio. The TAP part needs root, /dev/net/tun, `ip` and busybox.
 *
 * Runs once at module load, not inside Deno.bench (a VM run takes minutes). Environment:
 * VMESH_BENCH_SKIP_NET (skip), VMESH_NET_BENCH_MIB (transfer size, default 8).
 */

import {
  batchCmdlineParam,
  ensureGuestImages,
  type GuestImages,
  parseBatchOutput,
  qemuArgs,
} from "../../guest/mod.ts";
import { startService, startTestBus } from "../../tests/services_harness.ts";
import {
  BootedVm,
  canRunTap,
  deleteNamespace,
  dhcpCmd,
  expectedAddresses,
  must,
} from "../../tests/net_vm_harness.ts";

const MIB = Number(Deno.env.get("VMESH_NET_BENCH_MIB") ?? "8");
const ID = Deno.pid % 100000;

function log(line: string): void {
  console.log(`net_bench: ${line}`);
}

/** Seconds of each busybox `time` report ("real\t0m 1.23s") in `out`, in order. */
function realTimes(out: string): number[] {
  return [...out.matchAll(/^real\s+(\d+)m\s*([\d.]+)s\r?$/gm)].map((m) =>
    Number(m[1]) * 60 + Number(m[2])
  );
}

/** busybox ping's "round-trip min/avg/max = a/b/c ms". */
function rtt(out: string): string | undefined {
  return /round-trip min\/avg\/max = (\S+) ms/.exec(out)?.[1];
}

const mibps = (s: number | undefined) => s ? `${(MIB / s).toFixed(2)} MiB/s` : "n/a";

/** Waits until `ip` answers ping, in guest shell. */
const waitPing = (ip: string) =>
  `{ n=0; until ping -c 1 -W 1 ${ip} >/dev/null; do n=$((n+1)); if [ $n -gt 300 ]; then exit 9; fi; done; }`;

/** Waits (bounded) in guest shell until `url` can be fetched. */
const waitUrl = (url: string) =>
  `{ n=0; until wget -q -O /dev/null ${url}; do n=$((n+1)); if [ $n -gt 600 ]; then exit 9; fi; sleep 1; done; }`;

/** Ping and transfer figures of one VM ↔ VM run. */
interface VmVmResult {
  rtt?: string;
  seconds?: number;
}

/**
 * The VM ↔ VM guest commands: A pings B 20 times and sends N MiB with nc; B times the receive
 * (first byte to EOF), then takes address `done` so A knows; A stays up until then, B until A
 * is gone. `setup` configures eth0 (DHCP or a static address).
 */
function vmVmCmds(setupA: string, setupB: string, a: string, b: string, done: string) {
  const send = `${setupA} && ${waitPing(b)} && ping -c 20 ${b} && ` +
    `dd if=/dev/zero of=/tmp/f bs=1M count=${MIB} 2>/dev/null && ` +
    `nc ${b} 5000 </tmp/f >/dev/null && ${waitPing(done)}`;
  const recv = `${setupB} && nc -l -p 5000 </dev/null | ` +
    `{ dd bs=1 count=1 of=/dev/null 2>/dev/null; time cat >/dev/null; } && ` +
    `ip addr add ${done}/24 dev eth0 && { while ping -c 1 -W 2 ${a} >/dev/null; do sleep 1; done; }`;
  return { send, recv };
}

/** Two QEMU guests on one `-netdev socket,udp=` link (QEMU's VM ↔ VM path), same commands. */
async function qemuVmToVm(img: GuestImages): Promise<VmVmResult> {
  const [a, b, done] = ["10.74.0.10", "10.74.0.11", "10.74.0.250"];
  const ports = [41000 + (ID % 1000) * 2, 41001 + (ID % 1000) * 2];
  const setup = (ip: string) => `ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`;
  const { send, recv } = vmVmCmds(setup(a), setup(b), a, b, done);
  const run = async (cmd: string, me: number, peer: number, mac: string) => {
    const args = qemuArgs(img, {
      disk: false,
      net: false,
      append: `quiet ${batchCmdlineParam(cmd)}`,
      extra: [
        "-netdev",
        `socket,id=n0,udp=127.0.0.1:${ports[peer]},localaddr=127.0.0.1:${ports[me]}`,
        "-device",
        `virtio-net-device,netdev=n0,mac=${mac}`,
      ],
    });
    return await qemuBatch("qemu-system-riscv64", args, "QEMU VM");
  };
  const [outA, outB] = await Promise.all([
    run(send, 0, 1, "52:54:00:74:00:0a"),
    run(recv, 1, 0, "52:54:00:74:00:0b"),
  ]);
  return { rtt: rtt(outA), seconds: realTimes(outB)[0] };
}

/** busybox ping's average RTT (ms) out of "min/avg/max". */
const avgRtt = (r?: string) => r ? Number(r.split("/")[1]) : undefined;

async function vmToVm(): Promise<void> {
  const img = await ensureGuestImages();
  let vmesh: VmVmResult | undefined, qemu: VmVmResult | undefined;
  try {
    vmesh = await vmeshVmToVm();
  } catch (e) {
    log(`vmesh VM<->VM run failed: ${(e as Error).message}`);
  }
  try {
    qemu = await qemuVmToVm(img);
  } catch (e) {
    log(`QEMU VM<->VM run failed: ${(e as Error).message}`);
  }
  for (const [name, r] of [["vmesh", vmesh], ["QEMU ", qemu]] as const) {
    if (!r) continue;
    log(`${name} VM->VM: ping RTT min/avg/max ${r.rtt} ms (20 pings)`);
    log(`${name} VM->VM: nc ${MIB} MiB in ${r.seconds?.toFixed(2)} s = ${mibps(r.seconds)}`);
  }
  if (vmesh?.seconds && qemu?.seconds) {
    const pv = avgRtt(vmesh.rtt), pq = avgRtt(qemu.rtt);
    log(
      `ratio vmesh/QEMU VM->VM: throughput ${(qemu.seconds / vmesh.seconds).toFixed(2)}x` +
        (pv && pq ? `, ping avg ${(pv / pq).toFixed(1)}x QEMU's` : ""),
    );
  }
}

async function vmeshVmToVm(): Promise<VmVmResult> {
  const subnet = "10.72.0";
  const macs = ["52:54:00:72:00:0a", "52:54:00:72:00:0b"];
  const addrs = expectedAddresses(subnet, macs);
  const [a, b] = macs.map((m) => addrs.get(m)!);
  const done = `${subnet}.250`;
  const tb = await startTestBus();
  const svc = await startService("net", [
    "--switch",
    "bsw",
    "--subnet",
    `${subnet}.0/24`,
    "--gateway",
    `${subnet}.1`,
  ], tb.nats.url);
  // Timed at the receiver, first byte to EOF (busybox nc may exit before its data is sent).
  const { send, recv } = vmVmCmds(dhcpCmd(macs[0]), dhcpCmd(macs[1]), a, b, done);
  const vms = [
    new BootedVm("bencha", tb.nats.url, send, ["bsw"]),
    new BootedVm("benchb", tb.nats.url, recv, ["bsw"]),
  ];
  try {
    const [ra, rb] = await Promise.all(vms.map((v) => v.done));
    if (ra.code !== 0 || rb.code !== 0) {
      throw new Error(`exit ${ra.code}/${rb.code}: ${ra.stdout.slice(-500)}`);
    }
    return { rtt: rtt(ra.stdout), seconds: realTimes(rb.stdout)[0] };
  } finally {
    await Promise.all(vms.map((v) => v.stop("SIGTERM")));
    await svc.stop("SIGTERM");
    await tb.close();
  }
}

/**
 * Guest shell for the TAP runs: static address, host → guest wget (timed in the guest), guest
 * → host nc (timed by the host's sink, which then creates `done` for the guest to see).
 */
function tapGuestCmd(address: string, host: string): string {
  return `ip addr add ${address}/24 dev eth0 && ip link set eth0 up && ${waitPing(host)} && ` +
    `ping -c 20 ${host} && time wget -q -O /dev/null http://${host}:8080/zero && ` +
    `dd if=/dev/zero of=/tmp/f bs=1M count=${MIB} 2>/dev/null && ` +
    `nc ${host} 5001 </tmp/f >/dev/null && ${waitUrl(`http://${host}:8080/done`)}`;
}

interface TapResult {
  rtt?: string;
  wget?: number;
  nc?: number;
}

/** The guest's figures plus the host sink's time (written by sink.sh), then resets the sink. */
async function tapResult(out: string, dir: string): Promise<TapResult> {
  const [wget] = realTimes(out);
  const [start, end] = (await Deno.readTextFile(`${dir}/sink-time`)).trim().split(" ").map(
    Number,
  );
  await Deno.remove(`${dir}/sink-time`);
  await Deno.remove(`${dir}/done`);
  return { rtt: rtt(out), wget, nc: end - start };
}

async function vmeshTap(
  dir: string,
  ns: string,
  inNs: (...c: string[]) => string[],
  tap: string,
): Promise<TapResult> {
  const tb = await startTestBus();
  const svc = await startService(
    "net",
    ["--switch", "btap", "--uplink", `tap:${tap}@btap`],
    tb
      .nats.url,
  );
  let vm: BootedVm | undefined;
  try {
    await must(["ip", "link", "set", tap, "netns", ns]);
    await must(inNs("ip", "addr", "add", "10.71.0.10/24", "dev", tap));
    await must(inNs("ip", "link", "set", tap, "up"));
    vm = new BootedVm("benchtap", tb.nats.url, tapGuestCmd("10.71.0.20", "10.71.0.10"), ["btap"]);
    const r = await vm.done;
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout.slice(-500)}`);
    return await tapResult(r.stdout, dir);
  } finally {
    await vm?.stop("SIGTERM");
    await svc.stop("SIGTERM");
    await tb.close();
  }
}

async function qemuTap(
  dir: string,
  img: GuestImages,
  inNs: (...c: string[]) => string[],
  tap: string,
): Promise<TapResult> {
  await must(inNs("ip", "tuntap", "add", "dev", tap, "mode", "tap"));
  await must(inNs("ip", "addr", "add", "10.71.1.10/24", "dev", tap));
  await must(inNs("ip", "link", "set", tap, "up"));
  const cmd = tapGuestCmd("10.71.1.20", "10.71.1.10");
  const args = qemuArgs(img, {
    disk: false,
    net: false,
    append: `quiet ${batchCmdlineParam(cmd)}`,
    extra: [
      "-netdev",
      `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      "-device",
      "virtio-net-device,netdev=n0,mac=52:54:00:71:01:14",
    ],
  });
  const output = await qemuBatch("ip", inNs("qemu-system-riscv64", ...args).slice(1), "QEMU");
  return await tapResult(output, dir);
}

async function tapRuns(): Promise<void> {
  if (!canRunTap) {
    log("TAP part skipped: needs root, /dev/net/tun, ip and busybox");
    return;
  }
  const img = await ensureGuestImages();
  const ns = `vmesh-netbench-${ID}`;
  const dir = await Deno.makeTempDir();
  const inNs = (...cmd: string[]) => ["ip", "netns", "exec", ns, ...cmd];
  const servers: Deno.ChildProcess[] = [];
  try {
    await Deno.writeFile(`${dir}/zero`, new Uint8Array(MIB << 20));
    await Deno.writeTextFile(
      `${dir}/sink.sh`,
      `#!/bin/sh\ns=$(date +%s.%N); cat >/dev/null; echo "$s $(date +%s.%N)" >${dir}/sink-time\n` +
        `: >${dir}/done\n`,
    );
    await Deno.chmod(`${dir}/sink.sh`, 0o755);
    await must(["ip", "netns", "add", ns]);
    await must(inNs("ip", "link", "set", "lo", "up"));
    const spawn = (...cmd: string[]) =>
      servers.push(
        new Deno.Command("ip", { args: inNs(...cmd).slice(1), stdout: "null", stderr: "null" })
          .spawn(),
      );
    spawn("busybox", "httpd", "-f", "-p", "8080", "-h", dir);
    spawn("busybox", "nc", "-ll", "-p", "5001", "-e", `${dir}/sink.sh`);
    const results: [string, TapResult | undefined][] = [];
    for (
      const [name, f] of [
        ["vmesh", () => vmeshTap(dir, ns, inNs, `vbv${ID}`)],
        ["QEMU ", () => qemuTap(dir, img, inNs, `vbq${ID}`)],
      ] as const
    ) {
      try {
        results.push([name, await f()]);
      } catch (e) {
        log(`${name} TAP run failed: ${(e as Error).message}`);
        results.push([name, undefined]);
      }
    }
    for (const [name, r] of results) {
      if (!r) continue;
      log(
        `${name} guest<->host TAP: ping RTT min/avg/max ${r.rtt} ms; host->guest wget ${MIB} MiB ` +
          `${r.wget?.toFixed(2)} s = ${mibps(r.wget)}; guest->host nc ${MIB} MiB ` +
          `${r.nc?.toFixed(2)} s = ${mibps(r.nc)}`,
      );
    }
    const [v, q] = results.map(([, r]) => r);
    if (v?.wget && q?.wget && v.nc && q.nc) {
      const pv = avgRtt(v.rtt), pq = avgRtt(q.rtt);
      log(
        `ratio vmesh/QEMU TAP throughput: host->guest ${(q.wget / v.wget).toFixed(2)}x, ` +
          `guest->host ${(q.nc / v.nc).toFixed(2)}x` +
          (pv && pq ? `; ping avg ${(pv / pq).toFixed(1)}x QEMU's` : ""),
      );
    }
  } finally {
    for (const s of servers) {
      try {
        s.kill("SIGTERM");
      } catch { /* exited */ }
      await s.status;
    }
    await deleteNamespace(ns);
    await Deno.remove(dir, { recursive: true });
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_NET") === undefined) {
  log(`transfer size ${MIB} MiB`);
  try {
    await vmToVm();
  } catch (e) {
    log(`VM<->VM part failed: ${(e as Error).message}`);
  }
  await tapRuns();
}

/** Runs a QEMU batch guest (`cmd args`, killed after 10 min); its command's output. */
async function qemuBatch(cmd: string, args: string[], what: string): Promise<string> {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 600_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout);
  const parsed = parseBatchOutput(text);
  if (!parsed || parsed.status !== 0) {
    throw new Error(`${what} status ${parsed?.status}: ${text.slice(-500)}`);
  }
  return parsed.output;
}
