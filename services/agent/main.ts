/**
 * vmesh host agent (`deno run -A services/agent/main.ts --host h1 --label zone=a`): announces
 * this host's capacity and load on the bus and runs VMs for the control service.
 * @module
 */

import { connect, ServiceCli, untilSignal, watchLifeline } from "@vmesh/bus";
import { HostAgent } from "./agent.ts";
import { CpuCgroups } from "./cpu_cgroup.ts";

const USAGE = `usage: ./vmesh agent [options]   (or deno run -A services/agent/main.ts)

Announces this host on vmesh.host.<host>.load every interval and serves
vmesh.host.<host>.{start,stop,rm,logs} (VMs as console/disk/cpu service processes).
  --host NAME        host name (default: the machine's hostname)
  --label KEY=VALUE  a host label, for anti-affinity and display (repeatable)
  --cores N          advertise N cores instead of the machine's
  --ram MIB          advertise MIB of RAM instead of the machine's
  --disk MIB         disk space for VMs (default 10240)
  --dir PATH         console logs and disk overlays (default a temp dir)
  --interval MS      announcement interval (default 1000)
  --no-cpu-quota     do not cap each VM's CPU service at its harts (cgroup cpu)
  -h, --help         this text
NATS_URL selects the server.`;

/** Runs the agent until SIGINT/SIGTERM; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  watchLifeline({ name: "vmesh-agent" });
  const cli = new ServiceCli("vmesh-agent", USAGE);
  const flags = cli.parse({
    host: { type: "string" },
    label: { type: "string", multiple: true },
    cores: { type: "string" },
    ram: { type: "string" },
    disk: { type: "string", default: "10240" },
    dir: { type: "string" },
    interval: { type: "string", default: "1000" },
    "no-cpu-quota": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, args);
  if (!flags) return 0;
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) <= 0) {
      cli.fail(`--${name} needs a positive integer, got '${v}'`);
    }
    return Number(v);
  };
  const labels: Record<string, string> = {};
  for (const l of (flags.label ?? []) as string[]) {
    const k = l.indexOf("=");
    if (k <= 0) cli.fail(`--label needs KEY=VALUE, got '${l}'`);
    labels[l.slice(0, k)] = l.slice(k + 1);
  }
  const host = (flags.host as string | undefined) ?? Deno.hostname();
  if (!/^[A-Za-z0-9_-]+$/.test(host)) cli.fail(`--host must be letters, digits, '-' or '_'`);
  const natsUrl = Deno.env.get("NATS_URL") ?? "";
  if (!natsUrl) cli.fail("NATS_URL is not set: the agent joins an existing bus", 2);
  const dir = (flags.dir as string | undefined) ??
    await Deno.makeTempDir({ prefix: `vmesh-agent-${host}-` });
  await Deno.mkdir(dir, { recursive: true });
  const cgroups = flags["no-cpu-quota"] ? "off (--no-cpu-quota)" : await CpuCgroups.open(host);
  const bus = await connect({ url: natsUrl, name: `vmesh-agent.${host}` });
  const agent = new HostAgent(bus, {
    host,
    labels,
    cores: num("cores", flags.cores as string | undefined),
    ramMiB: num("ram", flags.ram as string | undefined),
    diskMiB: num("disk", flags.disk as string)!,
    dir,
    natsUrl,
    intervalMs: num("interval", flags.interval as string)!,
    cgroups: typeof cgroups === "string" ? undefined : cgroups,
  });
  await agent.start();
  const l = agent.load();
  console.error(
    `vmesh-agent ready: host=${host} cores=${l.cores} ram=${l.ramMiB}M dir=${dir} ` +
      `labels=${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",")} ` +
      `cpu-quota=${typeof cgroups === "string" ? cgroups : cgroups.base}`,
  );
  const sig = await untilSignal();
  console.error(`vmesh-agent: ${sig}, stopping ${agent.vms.size} VM(s)`);
  await agent.close();
  await bus.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
