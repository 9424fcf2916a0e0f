/**
 * `deno task fresh`: the newcomer check. Makes a minimal Debian 12 root with debootstrap
 * (the mirror from this machine's apt sources), adds only git, nodejs and npm, clones the
 * repository's committed HEAD into it, and inside the chroot (/proc, /sys, /dev bound) runs
 * `./vmesh boot -- uname -a` and then `./vmesh test`, timing each. Every mount is removed on
 * exit, on error and on Ctrl-C. Needs root.
 */

import { fileURLToPath } from "node:url";
import { parseDebSources } from "../guest/debian.ts";
import { formatElapsed } from "../guest/step_runner.ts";
import { mount, processesInside, unmountAllUnder } from "./chroot_mounts.ts";
import { parseVmeshSummary } from "./test_summary.ts";

const HELP = `Usage: deno task fresh [--keep] [--keep-root] [--dir DIR] [--skip-test]

Tries the README's Quick start as a newcomer on a bare Debian 12 machine would:
  1. debootstrap --variant=minbase bookworm ROOT MIRROR   (MIRROR: this machine's apt sources)
  2. apt-get install git nodejs npm                        (nothing else)
  3. git clone of this repository's committed HEAD into ROOT/root/vmesh
  4. chroot ROOT: ./vmesh boot -- uname -a
  5. chroot ROOT: ./vmesh test
and prints the time of each and the test summary. Needs root; takes 20-30 minutes on
2 cores (a full guest build and the whole test suite run inside).

Options:
  --keep        keep the root made by steps 1-2 in /var/cache/vmesh-fresh/ and start
                from a copy of it next time (default: debootstrap every run)
  --keep-root   leave this run's root (after the tests) in DIR/root to look into;
                by default it is removed at the end (the logs stay)
  --dir DIR     work directory (default /var/tmp/vmesh-fresh); ROOT is DIR/root, the
                logs of steps 4 and 5 are DIR/boot.log and DIR/test.log
  --skip-test   stop after step 4
  -h, --help    this text`;

const BASE_CACHE = "/var/cache/vmesh-fresh/bookworm-minbase";
const SUITE = "bookworm";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

const say = (line: string) => console.error(`fresh: ${line}`);

/** One timed phase: its name, how long it took, and whether it succeeded. */
interface Phase {
  name: string;
  ms: number;
  ok: boolean;
  note?: string;
  /** Lines printed under it (the parts the launcher and the guest build timed). */
  details?: string[];
}

/**
 * The launcher's and the guest build's own timings in a first `./vmesh boot` output.
 *
 * @example
 * ```ts
 * bootFigures("vmesh: installed Deno 2.9.6 in 6 s\nvmesh guest: kernel done in 5m13s\n");
 * // ["installed Deno 2.9.6 in 6 s", "kernel done in 5m13s"]
 * ```
 */
export function bootFigures(out: string): string[] {
  return out.split("\n").map((l) =>
    /^vmesh: (installed .* in \d+ s)$/.exec(l)?.[1] ??
      /^vmesh guest: ((?:kernel|busybox|initramfs|data disk) done in \S+)$/.exec(l)?.[1] ??
      /^vmesh guest: (guest images ready in \S+):/.exec(l)?.[1]
  ).filter((l): l is string => l !== undefined);
}

/** Parsed command line of `deno task fresh`. */
export interface FreshArgs {
  keep: boolean;
  keepRoot: boolean;
  dir: string;
  skipTest: boolean;
  help: boolean;
}

/**
 * Parses the arguments of `deno task fresh`.
 *
 * @example
 * ```ts
 * parseFreshArgs(["--keep"]).keep; // true
 * ```
 */
export function parseFreshArgs(args: string[]): FreshArgs {
  const o: FreshArgs = {
    keep: false,
    keepRoot: false,
    dir: "/var/tmp/vmesh-fresh",
    skipTest: false,
    help: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") o.help = true;
    else if (a === "--keep") o.keep = true;
    else if (a === "--keep-root") o.keepRoot = true;
    else if (a === "--skip-test") o.skipTest = true;
    else if (a === "--dir" && i + 1 < args.length) o.dir = args[++i];
    else if (a.startsWith("--dir=")) o.dir = a.slice(6);
    else throw new Error(`unknown argument '${a}' (see deno task fresh --help)`);
  }
  if (!o.dir.startsWith("/") || o.dir === "/") {
    throw new Error(`--dir ${o.dir}: want an absolute path`);
  }
  return o;
}

/**
 * The Debian mirror this machine's apt uses for bookworm: the first `URIs:` of
 * /etc/apt/sources.list.d/*.sources (deb822), else the first `deb` line of sources.list.
 *
 * @example
 * ```ts
 * mirrorFrom([["x.sources", "Types: deb\nURIs: http://m/debian\nSuites: bookworm\n"]]);
 * // "http://m/debian"
 * ```
 */
export function mirrorFrom(files: [path: string, text: string][]): string | undefined {
  const sources = files.flatMap(([path, text]) => parseDebSources(text, path.endsWith(".sources")));
  const bookworm = sources.filter((s) => s.suites.includes(SUITE));
  return (bookworm[0] ?? sources[0])?.uri;
}

async function aptSourceFiles(): Promise<[string, string][]> {
  const paths = ["/etc/apt/sources.list"];
  try {
    for await (const e of Deno.readDir("/etc/apt/sources.list.d")) {
      if (e.name.endsWith(".sources") || e.name.endsWith(".list")) {
        paths.push(`/etc/apt/sources.list.d/${e.name}`);
      }
    }
  } catch { /* none */ }
  const out: [string, string][] = [];
  // deb822 files first: the brief of this check takes the mirror from their URIs: line.
  for (
    const p of paths.sort((a, b) => Number(b.endsWith(".sources")) - Number(a.endsWith(".sources")))
  ) {
    try {
      out.push([p, await Deno.readTextFile(p)]);
    } catch { /* absent */ }
  }
  return out;
}

/** The machine's variables a process inside the chroot keeps (TLS trust settings, TERM). */
function chrootEnv(): Record<string, string> {
  const env: Record<string, string> = { HOME: "/root", PATH, LANG: "C.UTF-8", USER: "root" };
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (/^(TERM|NO_COLOR|http_proxy|https_proxy|no_proxy)$/i.test(k)) env[k] = v;
    if (/CERT|CA_BUNDLE|CA_CERTS|^SSL_/.test(k)) env[k] = v;
  }
  return env;
}

/** Runs a command, streaming its output to the terminal and to `logPath`; returns its output. */
async function stream(
  cmd: string[],
  opts: { logPath?: string; env?: Record<string, string>; onChild?: (pid: number) => void },
): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
    clearEnv: opts.env !== undefined,
  }).spawn();
  opts.onChild?.(child.pid);
  const log = opts.logPath
    ? await Deno.open(opts.logPath, { create: true, append: true })
    : undefined;
  const chunks: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>, w: typeof Deno.stdout) => {
    const dec = new TextDecoder();
    for await (const b of s) {
      chunks.push(dec.decode(b, { stream: true }));
      await w.write(b);
      await log?.write(b);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  log?.close();
  return { code: status.code, out: chunks.join("") };
}

/** Runs a command quietly; throws with its output's tail when it fails. */
async function quiet(cmd: string[], what: string, env?: Record<string, string>): Promise<string> {
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
    clearEnv: env !== undefined,
  }).output();
  const dec = new TextDecoder();
  const out = dec.decode(r.stdout) + dec.decode(r.stderr);
  if (!r.success) {
    throw new Error(
      `${what} failed (exit ${r.code}):\n${out.trimEnd().split("\n").slice(-20).join("\n")}`,
    );
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Copies this machine's extra TLS trust (as a new machine of this kind has it) into `root`. */
async function copyTrust(root: string): Promise<void> {
  const dir = "/usr/local/share/ca-certificates";
  if (await exists(dir)) {
    await Deno.mkdir(`${root}${dir}`, { recursive: true });
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) await Deno.copyFile(`${dir}/${e.name}`, `${root}${dir}/${e.name}`);
    }
  }
  const bundle = "/etc/ssl/certs/ca-certificates.crt";
  if (await exists(bundle)) {
    await Deno.mkdir(`${root}/etc/ssl/certs`, { recursive: true });
    await Deno.copyFile(bundle, `${root}${bundle}`);
  }
}

/** Gives `root` this machine's apt sources and apt settings, as a new machine has them. */
async function copyAptConfig(root: string): Promise<void> {
  // debootstrap's one-line sources.list would duplicate the machine's deb822 entries.
  await Deno.remove(`${root}/etc/apt/sources.list`).catch(() => {});
  for (const [path, text] of await aptSourceFiles()) {
    // vmesh-src.list is written by ./vmesh guest itself: the newcomer does not have it yet.
    if (
      path.endsWith("/vmesh-src.list") || !parseDebSources(text, path.endsWith(".sources")).length
    ) {
      continue;
    }
    await Deno.writeTextFile(`${root}${path}`, text);
  }
  for await (const e of Deno.readDir("/etc/apt/apt.conf.d")) {
    if (e.isFile && e.name.startsWith("99")) {
      await Deno.copyFile(`/etc/apt/apt.conf.d/${e.name}`, `${root}/etc/apt/apt.conf.d/${e.name}`);
    }
  }
}

/** Installs a host package by name when its command is missing. */
async function ensureHostPackage(command: string, pkg: string): Promise<void> {
  const found = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
  })
    .output();
  if (found.success) return;
  say(`installing ${pkg} on this machine (apt-get install --no-install-recommends ${pkg})`);
  await quiet(["apt-get", "update", "-qq"], "apt-get update");
  await quiet(
    [
      "env",
      "DEBIAN_FRONTEND=noninteractive",
      "apt-get",
      "install",
      "-y",
      "-qq",
      "--no-install-recommends",
      pkg,
    ],
    `apt-get install ${pkg}`,
  );
}

/** The committed HEAD the clone will have, e.g. "3adc880 Launcher and …". */
async function headLine(): Promise<string> {
  return (await quiet(["git", "-C", REPO, "log", "-1", "--format=%h %s"], "git log")).trim();
}

class Fresh {
  readonly root: string;
  readonly phases: Phase[] = [];
  #pid?: number;
  #interrupted = false;

  constructor(readonly o: FreshArgs) {
    this.root = `${o.dir}/root`;
  }

  async phase<T>(name: string, f: () => Promise<T>, ok: (r: T) => boolean = () => true) {
    if (this.#interrupted) throw new Error("interrupted");
    say(`== ${name}`);
    const t0 = Date.now();
    let r: T;
    try {
      r = await f();
    } catch (e) {
      this.phases.push({
        name,
        ms: Date.now() - t0,
        ok: false,
        note: (e as Error).message.split("\n")[0],
      });
      say(`== ${name}: FAILED after ${formatElapsed(Date.now() - t0)}`);
      throw e;
    }
    const good = ok(r);
    this.phases.push({ name, ms: Date.now() - t0, ok: good });
    say(`== ${name}: ${good ? "done" : "FAILED"} in ${formatElapsed(Date.now() - t0)}`);
    return r;
  }

  /** Runs `script` with bash inside the chroot, streamed to the terminal and `log`. */
  async inside(script: string, logPath?: string): Promise<{ code: number; out: string }> {
    // setsid: a session of its own, so Ctrl-C here reaches this script, which stops it.
    say(`  chroot ROOT: ${script}`);
    return await stream(["setsid", "chroot", this.root, "/bin/bash", "-c", script], {
      logPath,
      env: chrootEnv(),
      onChild: (pid) => this.#pid = pid,
    });
  }

  interrupt() {
    this.#interrupted = true;
    say("interrupted: stopping what runs inside the root");
    if (this.#pid) {
      try {
        Deno.kill(-this.#pid, "SIGTERM");
      } catch { /* gone */ }
    }
  }

  async makeRoot(): Promise<void> {
    const root = this.root;
    if (this.o.keep && await exists(`${BASE_CACHE}/etc/debian_version`)) {
      await this.phase(
        `copy the kept root ${BASE_CACHE}`,
        () => quiet(["cp", "-a", `${BASE_CACHE}/.`, root], "cp -a"),
      );
      return;
    }
    const mirror = mirrorFrom(await aptSourceFiles()) ?? "http://deb.debian.org/debian";
    await ensureHostPackage("debootstrap", "debootstrap");
    const log = `${this.o.dir}/debootstrap.log`;
    await this.phase(`debootstrap --variant=minbase ${SUITE} ROOT ${mirror}`, async () => {
      say(`  (output in ${log})`);
      const r = await new Deno.Command("debootstrap", {
        args: ["--variant=minbase", SUITE, root, mirror],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      await Deno.writeFile(log, new Uint8Array([...r.stdout, ...r.stderr]));
      if (!r.success) throw new Error(`debootstrap exit ${r.code}; see ${log}`);
    });
    await copyAptConfig(root);
    await copyTrust(root);
    await Deno.copyFile("/etc/resolv.conf", `${root}/etc/resolv.conf`).catch(() => {});
    await this.mountSystem();
    await this.phase("apt-get install git nodejs npm", async () => {
      say(`  (output in ${this.o.dir}/apt.log)`);
      const r = await this.inside(
        "set -e; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git nodejs npm >/dev/null",
        `${this.o.dir}/apt.log`,
      );
      if (r.code !== 0) throw new Error(`apt-get exit ${r.code}; see ${this.o.dir}/apt.log`);
    });
    if (this.o.keep) {
      const left = await unmountAllUnder(root);
      if (left.length) throw new Error(`still mounted: ${left.join(" ")}`);
      await Deno.mkdir(BASE_CACHE, { recursive: true });
      await quiet(["cp", "-a", `${root}/.`, BASE_CACHE], "cp -a (keep)");
      say(`kept the root in ${BASE_CACHE} (--keep)`);
    }
  }

  async mountSystem(): Promise<void> {
    const r = this.root;
    const mounted = (await Deno.readTextFile("/proc/self/mountinfo")).includes(` ${r} `);
    if (mounted) return;
    // The root bound onto itself is a mount point, as / is on a machine: `ip netns exec`
    // runs `mount --make-rslave /`, which fails on a plain directory. Private, so that what
    // is mounted inside shows up once, not also on the directory underneath.
    await mount(["--bind", r, r]);
    await mount(["--make-private", r]);
    await mount(["-t", "proc", "proc", `${r}/proc`]);
    await mount(["--rbind", "/sys", `${r}/sys`]);
    await mount(["--make-rslave", `${r}/sys`]);
    await mount(["--rbind", "/dev", `${r}/dev`]);
    await mount(["--make-rslave", `${r}/dev`]);
  }

  async clone(): Promise<void> {
    const src = `${this.root}/mnt/vmesh-src`;
    await Deno.mkdir(src, { recursive: true });
    await mount(["--bind", "-o", "ro", REPO, src]);
    try {
      const r = await this.inside("git clone -q --no-hardlinks /mnt/vmesh-src /root/vmesh");
      if (r.code !== 0) throw new Error(`git clone exit ${r.code}`);
    } finally {
      await new Deno.Command("umount", { args: [src] }).output();
    }
  }

  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Stops what runs inside, unmounts everything; true when nothing is left mounted. */
  async cleanup(): Promise<boolean> {
    for (const sig of ["SIGTERM", "SIGKILL"] as const) {
      const pids = await processesInside(this.root);
      if (pids.length === 0) break;
      say(`stopping ${pids.length} process(es) left inside the root (${sig})`);
      for (const p of pids) {
        try {
          Deno.kill(p, sig);
        } catch { /* gone */ }
      }
      await new Promise((r) => setTimeout(r, 3000));
    }
    const left = await unmountAllUnder(this.o.dir);
    if (left.length) say(`WARNING: still mounted: ${left.join(" ")}`);
    else say(`nothing left mounted under ${this.o.dir}`);
    return left.length === 0;
  }

  /**
   * Removes `path` (the root or the whole work directory), only once nothing is mounted under
   * the work directory: a recursive delete must never reach the bound /dev, /sys or the
   * repository itself.
   */
  async remove(path: string): Promise<void> {
    if (!(await this.cleanup())) throw new Error(`not removing ${path}: mounts remain under it`);
    await quiet(["rm", "-rf", "--one-file-system", path], `rm -rf ${path}`);
  }

  summary(testSummary: string | undefined, failedTests: string[]): void {
    say("summary:");
    const width = Math.max(...this.phases.map((p) => p.name.length));
    for (const p of this.phases) {
      console.error(
        `  ${p.name.padEnd(width)}  ${formatElapsed(p.ms).padStart(6)}  ${p.ok ? "ok" : "FAILED"}${
          p.note ? ` (${p.note})` : ""
        }`,
      );
      for (const d of p.details ?? []) console.error(`      ${d}`);
    }
    if (testSummary) console.error(`  test summary: ${testSummary}`);
    for (const t of failedTests) console.error(`    failed: ${t}`);
  }
}

/** Runs the newcomer check; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: FreshArgs;
  try {
    o = parseFreshArgs(args);
  } catch (e) {
    console.error(`fresh: ${(e as Error).message}`);
    return 2;
  }
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  if (Deno.uid() !== 0) {
    console.error("fresh: needs root (debootstrap, chroot and mount): run it as root");
    return 1;
  }
  const f = new Fresh(o);
  const onSignal = () => f.interrupt();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let testSummary: string | undefined;
  let failedTests: string[] = [];
  let code = 1;
  try {
    if (await exists(o.dir)) await f.remove(o.dir);
    await Deno.mkdir(f.root, { recursive: true });
    say(`repository: ${REPO} at ${await headLine()}`);
    await f.makeRoot();
    await f.mountSystem();
    await f.phase("git clone (committed HEAD)", () => f.clone());
    const boot = await f.phase(
      "./vmesh boot -- uname -a",
      () => f.inside("cd /root/vmesh && ./vmesh boot -- uname -a", `${o.dir}/boot.log`),
      (r) => r.code === 0 && /Linux .*riscv64/.test(r.out),
    );
    f.phases.at(-1)!.note = boot.out.split("\n").find((l) => /^Linux /.test(l)) ??
      `exit ${boot.code}, see ${o.dir}/boot.log`;
    f.phases.at(-1)!.details = bootFigures(boot.out);
    code = boot.code === 0 ? 0 : 1;
    if (!o.skipTest) {
      const test = await f.phase(
        "./vmesh test",
        () => f.inside("cd /root/vmesh && ./vmesh test", `${o.dir}/test.log`),
        (r) => r.code === 0,
      );
      const s = parseVmeshSummary(test.out);
      testSummary = s?.line ?? `no summary line; see ${o.dir}/test.log`;
      failedTests = s?.failedTests ?? [];
      if (test.code !== 0) code = 1;
    }
  } catch (e) {
    say(`error: ${(e as Error).message}`);
    code = 1;
  } finally {
    if (o.keepRoot) await f.cleanup();
    else await f.remove(f.root).catch((e) => say(`error: ${(e as Error).message}`));
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  f.summary(testSummary, failedTests);
  say(`logs in ${o.dir}${o.keepRoot ? `, the root in ${f.root} (removed by the next run)` : ""}`);
  return f.interrupted ? 130 : code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
