/**
 * `./vmesh boot`: boots the guest Linux with every device a service on the bus. It ensures
 * the guest images, starts (or joins, with NATS_URL) the bus, spawns the CPU, console, disk
 * and net services as processes at once (so the hot loop never shares an event loop with the
 * launcher, and the console service alone owns the terminal); the CPU service builds its
 * machine and waits (--wait-start) until the others answer `$SRV.PING`, then the launcher
 * starts the guest with `ctl.start`. `poweroff` in the guest ends the run with 0,
 * Ctrl-A x (console service) stops the VM, SIGINT/SIGTERM or a failing service stop every
 * child. With `-- COMMAND` it runs one guest command (the guest's batch mode) instead.
 * Once the VM runs, a disk or net service or the private nats-server that dies is started
 * again (`--restart`, service_supervisor.ts); the CPU's bus clients retry until it is back.
 */

import type { Bus } from "@vmesh/bus";
import {
  BusCredentials,
  type EmbeddedNats,
  PERMISSION_VIOLATION,
  startEmbeddedNats,
  writeAdminLogin,
} from "@vmesh/bus/launch";
import {
  batchCmdlineParam,
  ensureDataDisk,
  ensureGuestImages,
  OPENSBI_FW_JUMP,
  parseBatchOutput,
} from "../guest/mod.ts";
import {
  BOOT_USAGE,
  type BootArgs,
  BootUsageError,
  checkBootFiles,
  parseBootArgs,
} from "./boot_args.ts";
import type { ConsoleCapture } from "./boot_console.ts";
import { ServiceProcess } from "./service_process.ts";
import { type Supervisable, SupervisedService } from "./service_supervisor.ts";
import { type Registration, type ServiceLaunch, vmTopology } from "./vm_topology.ts";

export { DEFAULT_GATEWAY, DEFAULT_SUBNET } from "./vm_topology.ts";

/** Line end on stderr: the console service may have put the terminal in raw mode. */
const EOL = Deno.stdin.isTerminal() ? "\r\n" : "\n";

/** One line on stderr. */
function errorLine(line: string): void {
  const bytes = new TextEncoder().encode(line + EOL);
  let done = 0;
  while (done < bytes.length) done += Deno.stderr.writeSync(bytes.subarray(done));
}

const say = (line: string) => errorLine(`vmesh boot: ${line}`);

/** What `$SRV.PING` answers. */
interface PingReply {
  name: string;
  id: string;
  metadata?: Record<string, string>;
}

/** Runs `./vmesh boot`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.some((a) => a.startsWith("--accel"))) {
    // `--accel kvm`: the x86-64 KVM engine (services/cpu/kvm), loaded only when asked for.
    const kvm = await import("../services/cpu/kvm/main.ts");
    if (kvm.kvmRequested(args)) return await kvm.kvmBoot(args);
  }
  let o: BootArgs;
  try {
    o = parseBootArgs(args);
    if (o.help) {
      console.log(BOOT_USAGE);
      return 0;
    }
    checkBootFiles(o);
  } catch (e) {
    if (e instanceof BootUsageError) {
      console.error(`vmesh boot: ${e.message} (see ./vmesh boot --help)`);
      return 2;
    }
    throw e;
  }
  return await new BootSession(o).run();
}

/** The files the flags leave to the defaults (absent: the flags name their own). */
interface DefaultImages {
  firmware?: string;
  kernel?: string;
  initramfs?: string;
  disk?: string;
}

/**
 * Builds only what the flags leave missing: the whole guest image set without --kernel;
 * with --kernel, no kernel build: OpenSBI straight from the opensbi package, no initramfs
 * unless --initrd, and without --drive the data disk alone (cached apart, about a second).
 */
async function defaultImages(o: BootArgs): Promise<DefaultImages> {
  if (o.kernel === undefined) {
    say("guest images: using the cache (a first run builds them from Debian sources)");
    const images = await ensureGuestImages();
    say(`guest images: ${images.dir}`);
    return {
      firmware: images.firmware,
      kernel: images.kernel,
      initramfs: images.initramfs,
      disk: images.disk,
    };
  }
  const out: DefaultImages = {};
  if (o.bios === undefined) {
    try {
      Deno.statSync(OPENSBI_FW_JUMP);
    } catch {
      throw new Error(`${OPENSBI_FW_JUMP} is missing: apt-get install opensbi, or pass --bios`);
    }
    out.firmware = OPENSBI_FW_JUMP;
  }
  if (o.drives.length === 0) {
    const data = await ensureDataDisk();
    say(`data disk: ${data.disk} (no kernel build: --kernel was given)`);
    out.disk = data.disk;
  }
  return out;
}

/** Ends the wait for the VM: why, and the exit code to return. */
interface Outcome {
  why: "cpu" | "quit" | "service" | "signal" | "timeout" | "start";
  code: number;
  proc?: ServiceProcess;
  /** Why the VM could not be started ("start"). */
  message?: string;
}

/**
 * The bus client (NATS, protobufjs, OpenTelemetry: about 0.1 s of CPU to load), imported once
 * the first service processes are spawned, so that their start-up and this overlap.
 */
type BusLib = typeof import("@vmesh/bus");

/** Milliseconds of one `$SRV.PING` round while waiting for registrations (replies add up). */
const PING_ROUND_MS = 30;
/** Milliseconds between `ctl.start` requests while the CPU service is not serving yet. */
const START_RETRY_MS = 10;

/** One boot: the processes it started and how to stop them. */
class BootSession {
  readonly #children: ServiceProcess[] = [];
  /** Device services and the private nats-server, restarted when they die. */
  readonly #supervised: SupervisedService<Supervisable>[] = [];
  #nats?: EmbeddedNats;
  #creds?: BusCredentials;
  #bus?: Bus;
  #lib?: BusLib;
  #url = "";
  #tmp?: string;
  #closing = false;
  #interrupt: (o: Outcome) => void = () => {};
  readonly #interrupted = new Promise<Outcome>((r) => this.#interrupt = r);
  readonly #onUnload = () => {
    for (const c of this.#children) c.killNow();
  };

  constructor(readonly o: BootArgs) {}

  async run(): Promise<number> {
    const o = this.o;
    say(
      `starting VM ${o.name}${o.command ? ` to run '${o.command}'` : ""}: bus, console, ${
        Math.max(1, o.drives.length)
      } disk(s)${o.nics.length ? `, ${o.nics.length} nic(s)` : ""}, cpu (${
        Math.floor(o.memory / 1048576)
      } MiB RAM, ${o.smp} hart${o.smp > 1 ? "s" : ""})`,
    );
    let images: DefaultImages;
    try {
      images = await defaultImages(o);
    } catch (e) {
      say(`cannot build the guest images: ${(e as Error).message}`);
      return 1;
    }
    // A signal (Ctrl-C reaches the children too) ends supervision before they exit.
    const sigint = () => (this.#endSupervision(), this.#interrupt({ why: "signal", code: 130 }));
    const sigterm = () => (this.#endSupervision(), this.#interrupt({ why: "signal", code: 143 }));
    Deno.addSignalListener("SIGINT", sigint);
    Deno.addSignalListener("SIGTERM", sigterm);
    globalThis.addEventListener("unload", this.#onUnload);
    try {
      return await this.#boot(images);
    } catch (e) {
      say(`error: ${(e as Error).message ?? e}`);
      return 1;
    } finally {
      await this.#shutdown();
      Deno.removeSignalListener("SIGINT", sigint);
      Deno.removeSignalListener("SIGTERM", sigterm);
      globalThis.removeEventListener("unload", this.#onUnload);
    }
  }

  #spawn(
    launch: ServiceLaunch,
    io: { stdin?: "inherit" | "null"; stdout?: "inherit" | "null"; show?: (l: string) => boolean },
  ): ServiceProcess {
    const label = launch.label;
    const p = new ServiceProcess({
      label,
      service: launch.service,
      args: launch.args,
      natsUrl: this.#url,
      // Its own role's login only (none on a given NATS_URL: the environment's, if any).
      env: this.#creds?.env(launch.role),
      stdin: io.stdin ?? "null",
      stdout: io.stdout ?? "null",
      onLine: (line) => {
        const refused = line.includes(PERMISSION_VIOLATION);
        if (this.o.verbose || refused || io.show?.(line)) errorLine(`[${label}] ${line}`);
      },
    });
    this.#children.push(p);
    if (this.o.verbose) say(`started ${label} (pid ${p.pid})`);
    return p;
  }

  async #boot(images: DefaultImages): Promise<number> {
    const o = this.o;
    this.#tmp = await Deno.makeTempDir({ prefix: "vmesh-boot-" });
    // The VM's services: console, a disk per drive, the switches not yet on the bus, the CPU.
    const batch = o.command !== undefined;
    const consoles = o.consoles.length
      ? o.consoles
      : batch
      ? [`log:${this.#tmp}/console.log`]
      : ["terminal"];
    const terminal = consoles.includes("terminal");
    const drives = o.drives.length
      ? o.drives.map((d) => ({ ...d, cow: o.diskBackend === "cow" }))
      : [{ path: images.disk!, readOnly: false, cow: true }];
    const bios = o.bios === undefined ? images.firmware : o.bios;
    const kernel = o.kernel ?? images.kernel!;
    const initrd = o.initrd ?? images.initramfs;
    let append = o.append ?? "console=ttyS0";
    if (batch) append += ` ${batchCmdlineParam(o.command!)}`;
    if (o.replay !== undefined) {
      const { bootReplay } = await import("./boot_replay.ts");
      return await bootReplay(o, { bios: bios ?? null, kernel, initrd, append });
    }
    const topology = vmTopology({
      name: o.name,
      consoles,
      drives: drives.map((d, i) => ({
        path: d.path,
        readOnly: d.readOnly,
        format: "format" in d ? d.format : undefined,
        overlay: d.cow ? `${this.#tmp}/disk${i}.cow` : undefined,
      })),
      nics: o.nics,
      memory: `${Math.floor(o.memory / 1024)}K`,
      smp: o.smp,
      smpThreads: o.smpThreads,
      engine: o.engine,
      bios: bios ?? "none",
      kernel,
      initrd,
      append,
      gdb: o.gdb,
      waitGdb: o.waitGdb,
      record: o.record,
      checkpointEvery: o.checkpointEvery,
    });

    const givenUrl = Deno.env.get("NATS_URL");
    let auth: { user: string; pass: string } | undefined;
    if (givenUrl) say(`bus: NATS_URL ${givenUrl}`);
    else {
      // A login per service, allowed only its own subjects; anonymous clients are refused.
      const creds = new BusCredentials();
      for (const l of [topology.console, ...topology.disks, ...topology.switches, topology.cpu]) {
        creds.add(l.role);
      }
      const launcher = creds.add(topology.launcher);
      auth = { user: launcher.user, pass: launcher.password };
      this.#creds = creds;
      this.#nats = await startEmbeddedNats({ handleSignals: false, credentials: creds });
      const login = await writeAdminLogin(`${this.#tmp}/bus.env`, this.#nats);
      say(`bus: private nats-server at ${this.#nats.url} (a login per service)`);
      say(`bus: admin login for tools in ${login} (0600; load it with: set -a; . ${login})`);
      if (o.verbose) say(`started nats-server (pid ${this.#nats.pid})`);
    }
    const url = givenUrl ?? this.#nats!.url;
    this.#url = url;

    // The CPU service first, beside its devices (its start-up is the longest): it builds the
    // machine and then waits (--wait-start) until the launcher starts it, once they answer.
    say(
      `cpu: ${bios ? `firmware ${bios}, ` : ""}kernel ${kernel}${
        initrd ? `, initrd ${initrd}` : ""
      }`,
    );
    const cpu = this.#spawn({
      ...topology.cpu,
      args: [
        ...topology.cpu.args,
        "--wait-start",
        ...(o.blockDeadlineMs === undefined ? [] : ["--block-deadline", String(o.blockDeadlineMs)]),
      ],
    }, { show: (l) => !l.includes(" ready: ") });
    const cpuExit = cpu.exited.then((code): Outcome => ({ why: "cpu", code, proc: cpu }));
    const consoleProc = this.#spawn(topology.console, {
      stdin: terminal && !batch ? "inherit" : "null",
      stdout: terminal ? "inherit" : "null",
    });
    topology.disks.forEach((launch, i) => {
      this.#spawn(launch, {});
      const d = drives[i];
      say(
        `disk disk${i}: ${d.path}${d.readOnly ? " (read-only)" : ""}${
          d.cow ? " with a copy-on-write overlay (changes are discarded)" : ""
        }`,
      );
    });
    // Now this process's own bus client, while they load theirs; the guest runs only after.
    const [lib, { ConsoleCapture }] = await Promise.all([
      import("@vmesh/bus"),
      import("./boot_console.ts"),
    ]);
    this.#lib = lib;
    try {
      this.#bus = await lib.connect({ url, name: `vmesh-boot.${o.name}`, auth });
    } catch (e) {
      throw new Error(`cannot connect to the bus at ${url}: ${(e as Error).message}`);
    }
    const bus = this.#bus;
    const capture = new ConsoleCapture(bus, o.name, (stage) => {
      if (o.command || o.verbose) say(`guest: ${stage}`);
    });
    // Switches: reused when one already serves on a shared bus (a private one has none yet).
    const present = topology.switches.length && givenUrl ? await this.#ping(500) : [];
    const switches = topology.switches.filter((launch) => {
      const sw = launch.registration.value;
      const there = present.some((p) => p.name === "vmesh-net" && p.metadata?.switch === sw);
      if (there) say(`switch ${sw}: already on the bus`);
      return !there;
    });
    for (const launch of switches) this.#spawn(launch, {});
    const expected = [topology.console, ...topology.disks, ...switches].map((l) => l.registration);

    // Wait until every device service answers $SRV.PING.
    const devices = this.#children.filter((c) => c !== consoleProc && c !== cpu);
    const ready = await Promise.race([
      this.#waitRegistered(expected).then(() => undefined),
      cpuExit,
      this.#firstExit([consoleProc, ...devices]),
      this.#interrupted,
    ]);
    if (ready) return this.#report(ready, capture);
    say(`services registered: ${expected.map((e) => `${e.name}(${e.value})`).join(", ")}`);
    // From here on a device service that dies is restarted (before, it is a failed start).
    if (o.restart.mode === "on-failure") {
      devices.forEach((p, i) => this.#supervise(p, [...topology.disks, ...switches][i]));
      this.#superviseNats();
    }

    // Its devices answer: the guest may run (the CPU service may still be loading).
    const starting = this.#startCpu(cpu).then(
      () => new Promise<never>(() => {}),
      (e): Outcome => ({ why: "start", code: 1, message: (e as Error).message }),
    );
    // Without supervision (--restart no) a device service that exits ends the VM, as before.
    const others = o.restart.mode === "no" ? devices : [];
    const timer = o.timeout === undefined ? undefined : setTimeout(
      () => this.#interrupt({ why: "timeout", code: 124 }),
      o.timeout * 1000,
    );
    let outcome: Outcome;
    try {
      outcome = await Promise.race([
        cpuExit,
        starting,
        consoleProc.exited.then((code): Outcome => ({
          why: code === 0 ? "quit" : "service",
          code: code === 0 ? 0 : 1,
          proc: consoleProc,
        })),
        this.#firstExit(others),
        this.#interrupted,
      ]);
    } finally {
      clearTimeout(timer);
    }
    this.#endSupervision(); // the VM is ending: what exits now is not restarted
    if (outcome.why === "timeout") {
      say(`timeout: stopping the VM after ${o.timeout} s`);
    }
    if (outcome.why !== "cpu") {
      // Ask the VM to stop (publishes its last output), then make sure its process is gone.
      await bus.request({ vm: o.name, device: "ctl" }, lib.vm.ops.stop, {}, {
        timeoutMs: 1000,
        retries: 0,
      }).catch(() => {});
      const t = setTimeout(() => cpu.kill("SIGTERM"), 3000);
      await cpu.exited;
      clearTimeout(t);
    }
    // Let the console service take what the CPU published before it exited.
    await this.#ping(300, "vmesh-console").catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    return this.#report(outcome, capture);
  }

  /** Says what happened; in batch mode prints the command's output. */
  #report(outcome: Outcome, capture: ConsoleCapture): number {
    const o = this.o;
    capture.close();
    const showTail = (p: ServiceProcess) => {
      if (!o.verbose) { for (const l of p.tail.slice(-10)) errorLine(`[${p.label}] ${l}`); }
    };
    let code = outcome.code;
    switch (outcome.why) {
      case "cpu":
        if (code !== 0) showTail(outcome.proc!);
        break;
      case "quit":
        say("console quit (Ctrl-A x): VM stopped");
        break;
      case "service":
        say(`${outcome.proc!.label} exited unexpectedly (code ${outcome.code})`);
        showTail(outcome.proc!);
        code = 1;
        break;
      case "signal":
        say(`interrupted: stopping every service`);
        break;
      case "start":
        say(`cannot start the VM: ${outcome.message}`);
        break;
    }
    say(`the guest got as far as: ${capture.furthest} (${capture.bytes} bytes of console output)`);
    if (o.command === undefined) return code;
    const result = parseBatchOutput(capture.text);
    if (!result) {
      say(`the command did not run to completion in the guest; last console lines:`);
      for (const l of capture.lastLines(15)) errorLine(`  | ${l}`);
      return code === 0 ? 1 : code;
    }
    const out = new TextEncoder().encode(result.output);
    let done = 0;
    while (done < out.length) done += Deno.stdout.writeSync(out.subarray(done));
    if (result.status !== 0) say(`the command exited with status ${result.status}`);
    return result.status;
  }

  /** From now on no service is restarted. */
  #endSupervision(): void {
    for (const s of this.#supervised) s.stopSupervising();
  }

  /** Restarts `first` (a running device service of `launch`) with its command line when it dies. */
  #supervise(first: ServiceProcess, launch: ServiceLaunch): void {
    this.#supervised.push(
      new SupervisedService<Supervisable>(
        first.label,
        first,
        () => this.#spawn(launch, {}),
        this.o.restart,
        say,
      ),
    );
  }

  /** Restarts the private nats-server on its port and config when it dies: clients reconnect. */
  #superviseNats(): void {
    const server = this.#nats;
    if (!server) return;
    const watch = (n: EmbeddedNats): Supervisable => {
      let signal: Deno.Signal | null = null;
      const exited = n.exited.then((s) => (signal = s.signal, s.code));
      return {
        pid: n.pid,
        exited,
        get signal() {
          return signal;
        },
      };
    };
    this.#supervised.push(
      new SupervisedService<Supervisable>(
        "nats-server",
        watch(server),
        async () => {
          const old = this.#nats!;
          await old.stop(); // gone already: this removes its store dir
          this.#nats = await startEmbeddedNats({
            handleSignals: false,
            credentials: this.#creds,
            port: old.port,
          });
          return watch(this.#nats);
        },
        this.o.restart,
        (line) => say(`bus: ${line}`),
      ),
    );
  }

  /** Resolves with an Outcome when the first of `procs` exits. */
  #firstExit(procs: ServiceProcess[]): Promise<Outcome> {
    return Promise.race(
      procs.map((p) => p.exited.then((code): Outcome => ({ why: "service", code, proc: p }))),
    );
  }

  /** `$SRV.PING` answers collected for `waitMs`. */
  async #ping(waitMs: number, name?: string): Promise<PingReply[]> {
    const out: PingReply[] = [];
    const subject = name ? `$SRV.PING.${name}` : "$SRV.PING";
    try {
      const it = await this.#bus!.nc.requestMany(subject, new Uint8Array(), {
        strategy: "timer",
        maxWait: waitMs,
      });
      for await (const m of it) {
        try {
          out.push(m.json<PingReply>());
        } catch { /* not a service answer */ }
      }
    } catch (e) {
      // No service registered yet: nats answers "no responders" at once.
      if (!/no responders/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, Math.min(waitMs, 100)));
    }
    return out;
  }

  /**
   * Resolves once each of `expected` has answered a `$SRV.PING`: short rounds, the answers of
   * all rounds adding up, so a service is seen within a round of its registration.
   */
  async #waitRegistered(expected: Registration[]): Promise<void> {
    let missing = expected;
    while (!this.#closing) {
      let seen: PingReply[];
      try {
        seen = await this.#ping(PING_ROUND_MS);
      } catch {
        continue; // the bus is closing, or a transient error: look again
      }
      missing = missing.filter((e) =>
        !seen.some((p) =>
          p.name === e.name && p.metadata?.[e.key] === e.value &&
          (e.key === "switch" || p.metadata?.vm === this.o.name)
        )
      );
      if (missing.length === 0) return;
    }
  }

  /**
   * Asks the CPU service (held by --wait-start) to run the guest: again every few ms while
   * nothing serves its control subject yet (the process may still be loading), until it
   * answers or exits. Throws on another error.
   */
  async #startCpu(cpu: ServiceProcess): Promise<void> {
    const { BusError, Status, vm } = this.#lib!;
    while (!this.#closing && !cpu.done) {
      try {
        await this.#bus!.request({ vm: this.o.name, device: "ctl" }, vm.ops.start, {}, {
          timeoutMs: 2000,
          retries: 0,
        });
        return;
      } catch (e) {
        const away = e instanceof BusError &&
          (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED);
        if (!away) throw e;
      }
      await new Promise((r) => setTimeout(r, START_RETRY_MS));
    }
  }

  /** Stops every child (SIGTERM, then SIGKILL), the bus and the private nats-server. */
  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#endSupervision();
    await Promise.all(this.#children.map((c) => c.stop()));
    await this.#bus?.close().catch(() => {});
    await this.#nats?.stop().catch(() => {});
    if (this.#tmp) await Deno.remove(this.#tmp, { recursive: true }).catch(() => {});
    if (this.o.verbose) say("every service stopped");
  }
}
