/**
 * Test support for tests whose hosts are network namespaces (needs root and iproute2): a
 * bridge in the root namespace, one namespace per host joined to it by a veth pair, and
 * processes spawned inside them with their stderr kept. `close()` undoes all of it.
 */
import { readLines } from "./services_harness.ts";

/** Runs `cmd args` to completion; throws with its stderr when it fails. */
export async function sh(cmd: string, ...args: string[]): Promise<void> {
  const o = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!o.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(o.stderr).trim()}`);
  }
}

/** A process (in a namespace or not), with its stderr lines. */
export interface NetnsProc {
  log: string[];
  /** Its exit code, once it has exited and its stderr is read. */
  exited: Promise<number>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit. */
  kill(signal?: Deno.Signal): Promise<number>;
}

/** Spawns `cmd` (in namespace `ns` when given) and waits for a stderr line matching `ready`. */
export async function spawnIn(
  ns: string | undefined,
  cmd: string[],
  env: Record<string, string>,
  ready?: RegExp,
): Promise<NetnsProc> {
  const argv = ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  let onReady = () => {};
  const isReady = new Promise<void>((r) => onReady = r);
  const reading = readLines(child.stderr, (l) => {
    log.push(l);
    if (ready?.test(l)) onReady();
  });
  const exited = child.status.then(async (s) => {
    await reading.catch(() => {});
    return s.code;
  });
  if (ready) {
    const first = await Promise.race([isReady.then(() => -1), exited]);
    if (first !== -1) throw new Error(`${argv.join(" ")} exited ${first}:\n${log.join("\n")}`);
  }
  return {
    log,
    exited,
    kill(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      return exited;
    },
  };
}

/** Waits until something accepts TCP connections on `host:port` (10 s at most). */
export async function listening(host: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: host, port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

/** `deno run -A --quiet entry args`, as an argv for {@link spawnIn}. */
export const denoRun = (entry: string, ...args: string[]): string[] => [
  Deno.execPath(),
  "run",
  "-A",
  "--quiet",
  entry,
  ...args,
];

/**
 * Hosts as network namespaces on one bridge `${tag}-br` with address `${net}.1/24`; each host's
 * namespace is `${tag}-${host}`. Keeps what it made and what it spawned, for {@link close}.
 */
export class NetnsHosts {
  /** Processes spawned through {@link spawn}, killed by {@link close} newest first. */
  readonly procs: NetnsProc[] = [];
  readonly bridge: string;
  private namespaces: string[] = [];
  private links: string[] = [];

  constructor(readonly tag: string, readonly net: string) {
    this.bridge = `${tag}-br`;
  }

  /** Makes the bridge, with `${net}.1/24` on the root namespace's side. */
  async addBridge(): Promise<void> {
    await sh("ip", "link", "add", this.bridge, "type", "bridge");
    this.links.push(this.bridge);
    await sh("ip", "addr", "add", `${this.net}.1/24`, "dev", this.bridge);
    await sh("ip", "link", "set", this.bridge, "up");
  }

  /** The namespace of `host`. */
  ns(host: string): string {
    return `${this.tag}-${host}`;
  }

  /** Makes `host`'s namespace with address `ip/24` on a veth to the bridge, and lo up. */
  async addHost(host: string, ip: string): Promise<string> {
    const ns = this.ns(host);
    await sh("ip", "netns", "add", ns);
    this.namespaces.push(ns);
    await sh("ip", "link", "add", `${ns}a`, "type", "veth", "peer", "name", `${ns}b`);
    this.links.push(`${ns}a`);
    await sh("ip", "link", "set", `${ns}b`, "netns", ns);
    await sh("ip", "link", "set", `${ns}a`, "master", this.bridge);
    await sh("ip", "link", "set", `${ns}a`, "up");
    await sh("ip", "netns", "exec", ns, "ip", "addr", "add", `${ip}/24`, "dev", `${ns}b`);
    await sh("ip", "netns", "exec", ns, "ip", "link", "set", `${ns}b`, "up");
    await sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
    return ns;
  }

  /** {@link spawnIn} in `host`'s namespace (the root one when undefined), kept for close. */
  async spawn(
    host: string | undefined,
    cmd: string[],
    env: Record<string, string>,
    ready?: RegExp,
  ): Promise<NetnsProc> {
    const p = await spawnIn(host === undefined ? undefined : this.ns(host), cmd, env, ready);
    this.procs.push(p);
    return p;
  }

  /** Kills the processes with `signal`, newest first, then deletes namespaces and links. */
  async close(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    for (const p of this.procs.reverse()) await p.kill(signal).catch(() => {});
    for (const ns of this.namespaces) await sh("ip", "netns", "del", ns).catch(() => {});
    for (const l of this.links.reverse()) await sh("ip", "link", "del", l).catch(() => {});
  }
}
