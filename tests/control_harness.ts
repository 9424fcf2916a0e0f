/**
 * Test support for the control plane tests: host agents and the control service as real
 * processes (through services_harness.ts), a client of the control API, VM specs for a
 * bare-metal guest, and the `./vmesh` CLI run against a bus.
 */
import {
  type Bus,
  BusCredentials,
  type BusRole,
  connect,
  control,
  type EmbeddedNats,
  startEmbeddedNats,
} from "@vmesh/bus";
import { type ServiceProcess, startService } from "./services_harness.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

/** What an agent of {@link startAgent} offers, and what else it is given. */
export interface AgentOptions {
  /** RAM it offers, MiB (1024). */
  ramMib?: number;
  /** Cores it offers (8). */
  cores?: number;
  /** More flags, e.g. `--label zone=a`. */
  extra?: string[];
  /** Environment for the process (bus credentials). */
  env?: Record<string, string>;
}

/** A host agent `host` announcing every 300 ms, its VMs' files under `dir/host`. */
export function startAgent(
  host: string,
  dir: string,
  url: string,
  opts: AgentOptions = {},
): Promise<ServiceProcess> {
  return startService(
    "agent",
    [
      "--host",
      host,
      "--ram",
      String(opts.ramMib ?? 1024),
      "--cores",
      String(opts.cores ?? 8),
      "--dir",
      `${dir}/${host}`,
      "--interval",
      "300",
      ...(opts.extra ?? []),
    ],
    url,
    opts.env ? { env: opts.env } : {},
  );
}

/** The control service with its HTTP API on a free port, a host lost after `lostMs` silent. */
export function startControl(url: string, lostMs = 1500): Promise<ServiceProcess> {
  return startService("control", ["--http", "0", "--lost-timeout", String(lostMs)], url);
}

/** A client of the control API (`vmesh.control.*`) that waits long and never retries. */
export function controlClient(bus: Bus, timeoutMs = 120_000) {
  return bus.client({ prefix: control.CONTROL_PREFIX }, control.ops, { timeoutMs, retries: 0 });
}

/** A create request for a one-hart VM of `ramMib` MiB booting `kernel` bare (no firmware). */
export function bareVm(name: string, ramMib: number, kernel: string): control.CreateVm {
  return { name, quota: { harts: 1, ramMib, diskMib: 0 }, boot: { bios: "none", kernel } };
}

/** Runs `./vmesh ARGS` against the bus at `url`: its exit code, stdout and stderr. */
export async function vmeshCli(
  url: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env: { NATS_URL: url, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

/** A nats-server with a login per role (anonymous refused) and a client of its admin login. */
export interface LoginBus {
  creds: BusCredentials;
  nats: EmbeddedNats;
  bus: Bus;
  close(): Promise<void>;
}

/** Starts a {@link LoginBus} with a login for each of `roles`. */
export async function startLoginBus(roles: BusRole[]): Promise<LoginBus> {
  const creds = new BusCredentials();
  for (const r of roles) creds.add(r);
  const nats = await startEmbeddedNats({ credentials: creds });
  const admin = nats.credentials!.users.get("admin")!;
  const bus = await connect({
    url: nats.url,
    name: "vmesh-test",
    auth: { user: admin.user, pass: admin.password },
    log: () => {},
  });
  return {
    creds,
    nats,
    bus,
    close: async () => {
      await bus.close();
      await nats.stop();
    },
  };
}

/** The permission violations in the logs of `procs` (a connection logs each one). */
export function permissionViolations(procs: { log: string[] }[]): string[] {
  return procs.flatMap((p) => p.log).filter((l) => /[Pp]ermissions? [Vv]iolation/.test(l));
}
