/**
 * Shared parts of the guest-level network tests and the net benchmark: the addresses the
 * switch's DHCP server gives a MAC, `vmesh boot` as a child process whose output can be
 * watched while it runs, network namespaces, and the switch's `$SRV.STATS`.
 */
import { DhcpServer, DhcpType, parseCidr, type SwitchStats } from "../services/net/mod.ts";
import { formatIp, parseIp } from "../services/net/packet.ts";
import { parseMac } from "../services/net/mac.ts";
import type { Bus } from "@vmesh/bus";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** The addresses a switch on `subnet` (e.g. "10.79.0", gateway .1) gives these MACs. */
export function expectedAddresses(subnet: string, macs: string[]): Map<string, string> {
  const server = new DhcpServer({
    ...parseCidr(`${subnet}.0/24`),
    gateway: parseIp(`${subnet}.1`)!,
  });
  const out = new Map<string, string>();
  for (const mac of macs) {
    const r = server.handle({
      op: 1,
      xid: 1,
      flags: 0,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: parseMac(mac),
      options: new Map([[53, new Uint8Array([DhcpType.DISCOVER])]]),
    });
    out.set(mac, formatIp(r!.message.yiaddr));
  }
  return out;
}

/** Guest shell: set the NIC's MAC (every VM's first NIC has the same default) and get a lease. */
export function dhcpCmd(mac: string): string {
  return `ip link set eth0 address ${mac} && udhcpc -i eth0 -q -n -t 20 -T 2`;
}

/** A running `vmesh boot -v` in batch mode. */
export class BootedVm {
  readonly child: Deno.ChildProcess;
  /** stdout: the guest command's output (printed when the guest powers off). */
  stdout = "";
  /** stderr lines: the launcher's and (with -v) the services' log lines. */
  readonly lines: string[] = [];
  /** Resolves with the exit code and all output when the launcher exits. */
  readonly done: Promise<{ code: number; stdout: string; stderr: string }>;
  #waiters: (() => void)[] = [];

  constructor(name: string, natsUrl: string, cmd: string, nics: string[], timeoutS = 600) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "boot",
        "-v",
        "--name",
        name,
        ...nics.flatMap((sw) => ["--nic", `switch=${sw}`]),
        "--timeout",
        String(timeoutS),
        "--",
        cmd,
      ],
      env: { NATS_URL: natsUrl, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const out = (async () => {
      for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.stdout += s;
      }
    })();
    const err = (async () => {
      let rest = "";
      for await (const s of child.stderr.pipeThrough(new TextDecoderStream())) {
        rest += s;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
        for (const w of this.#waiters.splice(0)) w();
      }
      if (rest) this.lines.push(rest);
    })();
    this.done = (async () => {
      const [status] = await Promise.all([child.status, out, err]);
      for (const w of this.#waiters.splice(0)) w();
      return { code: status.code, stdout: this.stdout, stderr: this.lines.join("\n") };
    })();
  }

  /** The pid of this VM's CPU service process (from `-v`'s "started vmesh-cpu (pid N)"). */
  async cpuPid(timeoutMs = 120_000): Promise<number> {
    const re = /started vmesh-cpu \(pid (\d+)\)/;
    await this.waitLine(re, timeoutMs);
    return Number(re.exec(this.lines.find((l) => re.test(l))!)![1]);
  }

  /** Waits (bounded) for a stderr line matching `re`; throws with the log on timeout. */
  async waitLine(re: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.some((l) => re.test(l))) {
      if (Date.now() > deadline) throw new Error(`no line ${re}:\n${this.lines.join("\n")}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  /** Stops the launcher (it stops its services) and waits for it. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    try {
      this.child.kill(signal);
    } catch { /* exited */ }
    await this.done;
  }
}

/** Whether a command runs and succeeds. */
export function has(cmd: string[]): boolean {
  try {
    return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Root, /dev/net/tun, `ip` and busybox: what the TAP tests need. */
export const canRunTap = Deno.build.os === "linux" && Deno.uid() === 0 &&
  (() => {
    try {
      return Deno.statSync("/dev/net/tun") !== null;
    } catch {
      return false;
    }
  })() && has(["busybox", "true"]) && has(["ip", "-V"]);

/** Runs a command; resolves with its exit code and output. */
export async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Runs a command; throws with its output unless it succeeds. */
export async function must(cmd: string[]): Promise<string> {
  const r = await run(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} (exit ${r.code}): ${r.out}`);
  return r.out;
}

/**
 * A network namespace holding TAP `tap` (already created by the net service) with a static
 * address; `close` deletes the namespace (and with it the TAP, if still there).
 */
export async function tapNamespace(ns: string, tap: string, cidr: string) {
  await must(["ip", "netns", "add", ns]);
  const inNs = (...cmd: string[]) => ["ip", "netns", "exec", ns, ...cmd];
  try {
    await must(["ip", "link", "set", tap, "netns", ns]);
    await must(inNs("ip", "link", "set", "lo", "up"));
    await must(inNs("ip", "addr", "add", cidr, "dev", tap));
    await must(inNs("ip", "link", "set", tap, "up"));
  } catch (e) {
    await deleteNamespace(ns);
    throw e;
  }
  return {
    inNs,
    close: () => deleteNamespace(ns),
  };
}

/**
 * Kills what still runs in namespace `ns` (e.g. an httpd child serving a connection of a VM
 * that was stopped), then deletes it.
 */
export async function deleteNamespace(ns: string): Promise<void> {
  const pids = (await run(["ip", "netns", "pids", ns])).out.split(/\s+/).filter((p) =>
    /^\d+$/.test(p)
  );
  for (const pid of pids) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch { /* gone */ }
  }
  await run(["ip", "netns", "del", ns]);
}

/** Pings `ip` through `inNs` (a namespace) until it answers once (bounded). */
export async function pingUntilUp(inNs: (...c: string[]) => string[], ip: string, tries = 300) {
  for (let i = 0; i < tries; i++) {
    if ((await run(inNs("busybox", "ping", "-c", "1", "-W", "1", ip))).code === 0) return;
  }
  throw new Error(`${ip} never answered ping`);
}

/** The first switch's stats from `$SRV.STATS.vmesh-net`. */
export async function switchStats(bus: Bus): Promise<SwitchStats> {
  const msg = await bus.nc.request("$SRV.STATS.vmesh-net", new Uint8Array(), { timeout: 10_000 });
  return msg.json<{ endpoints: { data: SwitchStats }[] }>().endpoints[0].data;
}
