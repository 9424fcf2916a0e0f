/**
 * One VM on this host as the processes `./vmesh boot` starts: a console service (log file and
 * web terminal backends), a disk service when the VM has a data disk (copy-on-write overlay),
 * then the CPU service, each a {@link ServiceProcess} (cli/service_process.ts) holding a
 * lifeline to the agent. The CPU starts once the device services say ` ready: `.
 * @module
 */

import { ServiceProcess } from "../../cli/service_process.ts";
import type { HostVm, StartVm } from "./messages.ts";

/** A start that could not happen: the reason goes back to the control service. */
export class VmStartError extends Error {}

/** Waits for a ` ready: ` line of `p` (or its exit, or `ms`). */
function readyOrExit(p: ServiceProcess, ready: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    ready,
    p.exited.then((code) => {
      throw new VmStartError(
        `${p.label} exited with code ${code} before it was ready: ${p.tail.slice(-3).join(" | ")}`,
      );
    }),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new VmStartError(`${p.label} not ready after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The processes of one VM. */
export class VmProcesses {
  readonly procs: ServiceProcess[] = [];
  consoleUrl?: string;
  exitCode?: number;
  #cpu?: ServiceProcess;

  private constructor(readonly spec: StartVm, readonly logPath: string) {}

  /** Starts the VM's services; throws {@link VmStartError} (after stopping them) on failure. */
  static async start(
    spec: StartVm,
    natsUrl: string,
    dir: string,
    onExit: (vm: VmProcesses) => void,
  ): Promise<VmProcesses> {
    const vm = new VmProcesses(spec, `${dir}/${spec.name}.console.log`);
    try {
      await vm.#start(natsUrl, dir, onExit);
    } catch (e) {
      await vm.stop();
      throw e instanceof VmStartError ? e : new VmStartError((e as Error).message);
    }
    return vm;
  }

  #spawn(label: string, service: string, args: string[], natsUrl: string) {
    let ready: () => void = () => {};
    const isReady = new Promise<void>((r) => ready = r);
    const p = new ServiceProcess({
      label,
      service,
      args,
      natsUrl,
      stdin: "null",
      stdout: "null",
      onLine: (line) => {
        if (line.includes(" ready: ")) ready();
        const web = / web terminal: (https?:\/\/\S+)/.exec(line);
        if (web) this.consoleUrl = web[1];
      },
    });
    this.procs.push(p);
    return { p, isReady };
  }

  async #start(natsUrl: string, dir: string, onExit: (vm: VmProcesses) => void): Promise<void> {
    const { name, quota, boot } = this.spec;
    const waits: Promise<void>[] = [];
    const con = this.#spawn(`vmesh-console ${name}`, "console", [
      "--vm",
      name,
      "--backend",
      `log:${this.logPath}`,
      "--backend",
      "web:127.0.0.1:0",
    ], natsUrl);
    waits.push(readyOrExit(con.p, con.isReady, 60_000));
    const disks: string[] = [];
    if (boot.disk) {
      const d = this.#spawn(`vmesh-disk ${name}`, "disk", [
        "--vm",
        name,
        "--device",
        "disk0",
        "--image",
        boot.disk,
        "--overlay",
        `${dir}/${name}.disk0.cow`,
      ], natsUrl);
      waits.push(readyOrExit(d.p, d.isReady, 60_000));
      disks.push("disk0");
    }
    await Promise.all(waits);
    const cpu = this.#spawn(`vmesh-cpu ${name}`, "cpu", [
      "--vm",
      name,
      "--memory",
      `${quota.ramMiB}M`,
      "--bios",
      boot.bios,
      "--kernel",
      boot.kernel,
      ...(boot.initrd ? ["--initrd", boot.initrd] : []),
      ...(boot.append !== undefined ? ["--append", boot.append] : []),
      ...disks.flatMap((d) => ["--disk", d]),
    ], natsUrl);
    this.#cpu = cpu.p;
    await readyOrExit(cpu.p, cpu.isReady, 120_000);
    cpu.p.exited.then(async (code) => {
      this.exitCode = code;
      // The guest is gone: its device services have nothing left to serve.
      await Promise.all(this.procs.filter((p) => p !== cpu.p).map((p) => p.stop()));
      onExit(this);
    });
  }

  /** The CPU process has exited. */
  get exited(): boolean {
    return this.exitCode !== undefined;
  }

  /** What the agent announces about this VM. */
  status(): HostVm {
    return {
      name: this.spec.name,
      quota: this.spec.quota,
      labels: this.spec.labels,
      state: this.exited ? "exited" : "running",
      exitCode: this.exitCode,
      consoleUrl: this.consoleUrl,
      pids: this.procs.filter((p) => !p.done).map((p) => p.pid),
    };
  }

  /** Stops the CPU first (SIGTERM, as Ctrl-C in boot), then the device services. */
  async stop(): Promise<void> {
    if (this.#cpu) await this.#cpu.stop();
    await Promise.all(this.procs.map((p) => p.stop()));
  }

  /** The console output so far (the log backend's file). */
  async logs(): Promise<string> {
    try {
      return await Deno.readTextFile(this.logPath);
    } catch {
      return "";
    }
  }
}
