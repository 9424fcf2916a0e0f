/**
 * The service processes `./vmesh boot` starts: `deno run -A services/<x>/main.ts ...` with
 * NATS_URL (and, when given, its bus login) in the environment, stderr collected (kept as a
 * tail, or echoed with --verbose), and a stop that sends SIGTERM, then SIGKILL if the process
 * has not gone after a grace period. Each child
 * holds a lifeline to this process (bus/lifeline.ts: a stdin pipe unless it needs the
 * terminal, and the parent-death signal), so none outlives a launcher killed with SIGKILL.
 */

import { lifelineSpawnOptions } from "@vmesh/bus/launch";

/** How a service process is started. */
export interface SpawnOptions {
  /** Label for messages, e.g. "vmesh-disk disk0". */
  label: string;
  /** services/<service>/main.ts. */
  service: string;
  args: string[];
  natsUrl: string;
  /**
   * More environment, e.g. its bus login (`VMESH_NATS_USER`/`VMESH_NATS_PASSWORD`): secrets go
   * here, never on argv, where every local user could read them in /proc/<pid>/cmdline.
   */
  env?: Record<string, string>;
  /** Give the process the user's terminal for input ("null": its stdin is the lifeline). */
  stdin: "inherit" | "null";
  /** Its stdout goes to the user's stdout (console output) or nowhere. */
  stdout: "inherit" | "null";
  /** Each stderr line as it arrives (default: kept in the tail only). */
  onLine?: (line: string) => void;
}

/** A running service process. */
export class ServiceProcess {
  readonly label: string;
  readonly pid: number;
  /** Last stderr lines. */
  readonly tail: string[] = [];
  /** Resolves with the exit code once the process is gone and its stderr read. */
  readonly exited: Promise<number>;
  /** The signal that ended it (e.g. "SIGKILL"), null if it exited by itself or still runs. */
  signal: Deno.Signal | null = null;
  #child: Deno.ChildProcess;
  #done = false;

  constructor(readonly opts: SpawnOptions) {
    this.label = opts.label;
    const main = new URL(`../services/${opts.service}/main.ts`, import.meta.url).pathname;
    const lifeline = lifelineSpawnOptions(opts.stdin);
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", main, ...opts.args],
      // The rest of the environment (OTEL_* included) is inherited; each exports as itself.
      env: {
        NATS_URL: opts.natsUrl,
        NO_COLOR: "1",
        OTEL_SERVICE_NAME: `vmesh-${opts.service}`,
        ...opts.env,
        ...lifeline.env,
      },
      // A piped stdin is never written: it closes, and the child exits, when this process dies.
      stdin: lifeline.stdin,
      stdout: opts.stdout,
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    const reading = this.#readStderr();
    this.exited = this.#child.status.then(async (s) => {
      this.#done = true;
      this.signal = s.signal;
      if (lifeline.stdin === "piped") await this.#child.stdin.close().catch(() => {});
      await reading;
      return s.code;
    });
  }

  async #readStderr(): Promise<void> {
    let rest = "";
    const keep = (line: string) => {
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
      this.opts.onLine?.(line);
    };
    try {
      for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          keep(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
      }
    } catch { /* the pipe broke: the process is gone */ }
    if (rest) keep(rest);
  }

  /** True once the process has exited. */
  get done(): boolean {
    return this.#done;
  }

  /** Sends a signal (ignored if the process is gone). */
  kill(signal: Deno.Signal): void {
    if (this.#done) return;
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 5000): Promise<number> {
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  /** For exit paths that cannot await: SIGKILL. */
  killNow(): void {
    this.kill("SIGKILL");
  }
}
