/**
 * Issue 14, Faults: when `./vmesh boot` is killed with SIGKILL, or its terminal closes, every
 * process it started (nats-server, console, disk, net and CPU services) notices and exits
 * within moments (bus/lifeline.ts). Real processes throughout: the launcher is killed while
 * its guest spins (a bare-metal loop, or a panicked Linux kernel, as in the issue), and
 * /proc is watched until every pid it reported is gone.
 */
import assert from "node:assert/strict";
import { processGone, startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages } from "../guest/mod.ts";
import { buildBareMetalElf, uartGuest } from "./bare_metal_elf.ts";
import { imageArgs } from "./vmesh_boot.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
/** How long the processes may take to go: "within a second or two" (issue 14). */
const GONE_WITHIN_MS = 3000;

/** A launcher under test: the process to kill, and what it started. */
interface Launched {
  /** The process this test spawned (the launcher, or `script` holding its terminal). */
  victim: Deno.ChildProcess;
  /** The pid to SIGKILL: the launcher, or (terminal closed) `script`. */
  killPid: number;
  /** Everything that must be gone afterwards: label -> pid (the launcher included). */
  pids: Map<string, number>;
  /** Launcher output so far (for failure messages). */
  log: () => string;
}

/** Reads `stream` into `sink` as text until it ends. */
async function collect(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink.push(chunk);
  } catch { /* the process is gone */ }
}

/** Polls `cond` every 100 ms for `ms`; throws `what` on timeout. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: () => string) {
  const until = Date.now() + ms;
  while (!await cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The direct children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    const list = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim();
    if (list) out.push(...list.split(" ").map(Number));
  }
  return out;
}

/**
 * How the launcher runs: directly; on a terminal (inside `script`) that the test closes
 * ("hangup"); or on a terminal kept open, where a shell saves `stty -a` to `dir/stty.before`
 * and, 2 s after the launcher ends, to `dir/stty.after` ({ stay: dir }).
 */
type Terminal = "none" | "hangup" | { stay: string };

/**
 * Starts `vmesh boot --verbose ARGS` as `terminal` says and waits until `consoleLog` holds
 * `marker` and every service reported its pid.
 */
async function launch(
  args: string[],
  consoleLog: string,
  marker: string,
  terminal: Terminal,
  waitMs: number,
  env: Record<string, string> = {},
): Promise<Launched> {
  const boot = [Deno.execPath(), "run", "-A", "--quiet", MAIN, "boot", "--verbose", ...args];
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const line = boot.map(quote).join(" ");
  const shell = terminal === "none"
    ? ""
    : terminal === "hangup"
    ? `exec ${line}`
    : `stty -a > ${quote(`${terminal.stay}/stty.before`)}; ${line}; sleep 2; ` +
      `stty -a > ${quote(`${terminal.stay}/stty.after`)}`;
  const pty = terminal !== "none";
  const victim = new Deno.Command(pty ? "script" : boot[0], {
    args: pty ? ["-qfec", shell, "/dev/null"] : boot.slice(1),
    env: { NO_COLOR: "1", ...env },
    // `script` ends the session when its stdin ends: keep it open, write nothing.
    stdin: pty ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: string[] = [];
  void collect(victim.stdout, out);
  void collect(victim.stderr, out);
  const log = () => out.join("");
  let exited = false;
  victim.status.then(() => exited = true);
  await waitFor(
    async () => {
      if (exited) throw new Error(`vmesh boot exited early:\n${log()}`);
      const text = await Deno.readTextFile(consoleLog).catch(() => "");
      return text.includes(marker) && /started vmesh-cpu \(pid \d+\)/.test(log());
    },
    waitMs,
    () => `the guest's "${marker}" on the console\n${log()}`,
  );
  const pids = new Map<string, number>();
  for (const m of log().matchAll(/started (.+?) \(pid (\d+)\)/g)) pids.set(m[1], Number(m[2]));
  // script -> the launcher (exec), or script -> sh -> the launcher.
  let launcher = victim.pid;
  if (pty) launcher = childrenOf(launcher)[0];
  if (typeof terminal === "object") launcher = childrenOf(launcher)[0];
  pids.set("vmesh boot", launcher);
  return { victim, killPid: terminal === "hangup" ? victim.pid : launcher, pids, log };
}

/** The `/tmp/vmesh-<kind>-*` dirs named on the processes' command lines. */
function tempDirsOf(pids: number[], kind: "boot" | "nats"): Set<string> {
  const dirs = new Set<string>();
  for (const pid of pids) {
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
    for (const m of cmd.matchAll(new RegExp(`/tmp/vmesh-${kind}-[0-9a-f]+`, "g"))) dirs.add(m[0]);
  }
  return dirs;
}

/** Kills the victim; asserts every pid is gone in time; returns ms per label until gone. */
async function killAndWatch(l: Launched, expect: string[]): Promise<Map<string, number>> {
  assert.deepEqual([...l.pids.keys()].sort(), [...expect].sort(), l.log());
  const pids = [...l.pids.values()];
  assert.deepEqual(pids.filter(processGone), [], "all running before the kill");
  // A SIGKILLed launcher leaves its boot dir (COW overlays); the next embedded nats-server
  // removes the nats store dir it left (checked in the first test).
  const leftovers = tempDirsOf(pids, "boot");
  const goneAt = new Map<string, number>();
  try {
    const t0 = performance.now();
    Deno.kill(l.killPid, "SIGKILL");
    while (goneAt.size < l.pids.size && performance.now() - t0 < GONE_WITHIN_MS) {
      for (const [label, pid] of l.pids) {
        if (!goneAt.has(label) && processGone(pid)) {
          goneAt.set(label, Math.round(performance.now() - t0));
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const left = [...l.pids].filter(([n]) => !goneAt.has(n)).map(([n, p]) => `${n} ${p}`);
    assert.deepEqual(left, [], `still running ${GONE_WITHIN_MS} ms after the kill`);
    await l.victim.status;
    return goneAt;
  } finally {
    // Whatever outlived a failed check must not outlive the test.
    for (const p of pids) {
      if (!processGone(p)) Deno.kill(p, "SIGKILL");
    }
    for (const d of leftovers) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

/** "label 12 ms, ..." for a test's output. */
const timings = (gone: Map<string, number>) =>
  [...gone].map(([label, ms]) => `${label} ${ms} ms`).join(", ");

const SERVICES = [
  "vmesh boot",
  "nats-server",
  "vmesh-console",
  "vmesh-disk disk0",
  "vmesh-net swdeath",
  "vmesh-cpu",
];

/** A bare-metal boot with a disk and a nic whose guest prints `marker` and spins. */
async function spinningBoot(
  dir: string,
  marker: string,
  terminal: Terminal,
  env: Record<string, string> = {},
): Promise<Launched> {
  const elf = await buildBareMetalElf(dir, "spin", uartGuest(marker, "spin"));
  await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(1 << 20));
  const consoleLog = `${dir}/console.log`;
  return await launch(
    [
      "--bios",
      "none",
      "--kernel",
      elf,
      "--drive",
      `${dir}/disk.img`,
      "--nic",
      "switch=swdeath",
      ...(terminal === "none" ? [] : ["--console", "terminal"]),
      "--console",
      `log:${consoleLog}`,
    ],
    consoleLog,
    marker,
    terminal,
    120_000,
    env,
  );
}

Deno.test("vmesh boot SIGKILLed while its guest spins: nats-server and every service exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  try {
    const l = await spinningBoot(dir, "spinning forever", "none");
    const natsDir = [...tempDirsOf([l.pids.get("nats-server")!], "nats")][0];
    console.log(`launcher SIGKILLed; gone after: ${timings(await killAndWatch(l, SERVICES))}`);
    // The dead launcher's nats store: the next embedded server removes it.
    const next = await startEmbeddedNats({ handleSignals: false });
    await next.stop();
    await assert.rejects(Deno.stat(natsDir), Deno.errors.NotFound, natsDir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot on a shared bus (NATS_URL) SIGKILLed: its services exit, the bus stays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  const shared = await startEmbeddedNats({ handleSignals: false });
  try {
    const l = await spinningBoot(dir, "spinning on a shared bus", "none", { NATS_URL: shared.url });
    const gone = await killAndWatch(l, SERVICES.filter((s) => s !== "nats-server"));
    console.log(`launcher on a shared bus SIGKILLed; gone after: ${timings(gone)}`);
    assert.equal(processGone(shared.pid), false, "a server the launcher did not start stays");
  } finally {
    await shared.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot's terminal closed (its pty hung up): every process exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  try {
    const l = await spinningBoot(dir, "spinning on a terminal", "hangup");
    // SIGKILL of `script` closes the pty master: the kernel hangs up the terminal, which
    // sends SIGHUP to the launcher (the session leader) and its foreground process group.
    console.log(`terminal closed; gone after: ${timings(await killAndWatch(l, SERVICES))}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot SIGKILLed on a terminal that stays open: all exit, the terminal is cooked again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  try {
    const l = await spinningBoot(dir, "spinning on a kept terminal", { stay: dir });
    console.log(
      `launcher on a terminal SIGKILLed; gone after: ${timings(await killAndWatch(l, SERVICES))}`,
    );
    // The console service had the terminal in raw mode; its exit must restore it.
    const modes = (text: string) => text.match(/(?<![\w-])-?(icanon|echo|isig)(?![\w-])/g)?.sort();
    const before = await Deno.readTextFile(`${dir}/stty.before`);
    const after = await Deno.readTextFile(`${dir}/stty.after`);
    assert.deepEqual(modes(before), ["echo", "icanon", "isig"], before);
    assert.deepEqual(modes(after), modes(before), after);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Linux guest panicked, vmesh boot SIGKILLed (the case in issue 14): all exit", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  try {
    const consoleLog = `${dir}/console.log`;
    // No init in the initramfs, no root disk: the kernel panics and spins in panic().
    const l = await launch(
      [
        ...imageArgs(images),
        "--append",
        "console=ttyS0 rdinit=/nonexistent",
        "--drive",
        `${images.disk},ro`,
        "--nic",
        "switch=swdeath",
        "--console",
        `log:${consoleLog}`,
      ],
      consoleLog,
      "end Kernel panic",
      "none",
      300_000,
    );
    const gone = await killAndWatch(l, SERVICES);
    console.log(`guest panicked, launcher SIGKILLed; gone after: ${timings(gone)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh up SIGKILLed: its nats-server and every service it started exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-death-test-" });
  try {
    await Deno.writeFile(`${dir}/data.ext4`, new Uint8Array(1 << 20));
    const env = Deno.env.toObject();
    delete env.NATS_URL;
    const args = ["up", "--skip", "cpu", "--volume", `guest-images=${dir}`];
    const victim = new Deno.Command(new URL("../vmesh", import.meta.url).pathname, {
      args: [...args, "--volume", `disk-data=${dir}/data`],
      env: { ...env, NO_COLOR: "1" },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const out: string[] = [];
    void collect(victim.stderr, out);
    const log = () => out.join("");
    await waitFor(() => log().includes("vmesh up: running: "), 120_000, log);
    const pids = new Map<string, number>([["vmesh up", victim.pid]]);
    for (const m of log().matchAll(/^vmesh up: (\w+): .*\(pid (\d+)\)$/gm)) {
      pids.set(m[1], Number(m[2]));
    }
    const gone = await killAndWatch({ victim, killPid: victim.pid, pids, log }, [
      "vmesh up",
      "nats",
      "console",
      "disk",
      "memory",
      "net",
      // The control plane up runs beside the compose services.
      "control",
      "agent",
    ]);
    console.log(`vmesh up SIGKILLed; gone after: ${timings(gone)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
